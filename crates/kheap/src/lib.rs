//! Per-CPU object caches for a kernel heap, and a drop-in `GlobalAlloc`.
//!
//! [`CachedHeap`] composes a [`Depot`] (a kalloc slab allocator over any
//! page allocator, or a kernel's own composition) behind one
//! interrupt-masking ticket lock, and puts per-CPU magazines in front of
//! it for the `kmalloc` classes (8 B to 2 KiB). The fast path, an
//! allocation from or a free into this CPU's magazines, takes no lock and
//! does no atomic read-modify-write: it masks this CPU's interrupts (the
//! heap serves interrupt handlers too) and touches only this CPU's lines.
//! The lock is taken once per magazine's worth of operations of a class.
//! [`PageCaches`] does the same for blocks of 1 to 8 pages over any kalloc
//! page allocator.
//!
//! Exact double-free detection stays on: a parked object carries a
//! free-list mark in its first word, so a second free of it fails the
//! lock-free probe and is settled under the lock by looking through the
//! depot's lists and every CPU's magazines. How the caches, the drain and
//! the reclaim work: the [`design`] note.
//!
//! Nothing here knows the architecture: the CPU index, interrupt masking
//! and the wake-up of another CPU come from a [`Cpu`] implementation,
//! which extends [`ksync::Arch`] (re-exported, so a kernel needs no
//! dependency of its own on `ksync`).
//!
//! # A complete heap
//!
//! A sample [`Cpu`] for one CPU (a kernel reads its hart id and clears
//! its interrupt-enable bit where this returns constants), a page
//! allocator over RAM, a slab allocator over the page allocator, and the
//! heap over the slab. `#[global_allocator]` on the static makes it the
//! heap of `alloc`; the crate's `global_heap` example does so on the host,
//! one CPU per thread.
//!
//! ```
//! use core::alloc::{GlobalAlloc, Layout};
//! use kalloc::byte::SlabAllocator;
//! use kalloc::page::BuddyPageAllocator;
//! use kalloc::{AllocError, BaseAllocator};
//! use kheap::ksync::{Arch, IrqNesting};
//! use kheap::{CachedHeap, Cpu, NoHooks};
//!
//! /// The machine as the heap sees it.
//! struct Machine;
//!
//! impl Arch for Machine {
//!     fn hart_id() -> usize {
//!         0 // a kernel reads its hart id (RISC-V: from `tp`)
//!     }
//!     fn irq_save_disable() -> usize {
//!         0 // a kernel clears its interrupt-enable bit, returns the old one
//!     }
//!     fn irq_restore(_saved: usize) {
//!         // ... and sets it back here
//!     }
//!     fn irq_nesting() -> &'static IrqNesting {
//!         // One record per CPU (a kernel keeps it in per-CPU data).
//!         static NESTING: IrqNesting = IrqNesting::new();
//!         &NESTING
//!     }
//! }
//!
//! impl Cpu for Machine {
//!     fn cpu_index() -> usize {
//!         0 // below the heap's CPUS, unique among running CPUs
//!     }
//! }
//!
//! type Depot = SlabAllocator<BuddyPageAllocator>;
//!
//! // #[global_allocator]
//! static HEAP: CachedHeap<Machine, Depot, NoHooks, 1> = CachedHeap::new("heap");
//!
//! // At boot, before the first allocation.
//! let ram = Layout::from_size_align(4 << 20, 4096).unwrap();
//! // SAFETY: the layout's size is not zero.
//! let start = unsafe { std::alloc::alloc(ram) };
//! assert!(!start.is_null());
//! let mut pages = BuddyPageAllocator::new();
//! // SAFETY: the buffer is memory nothing else uses, for good.
//! unsafe { pages.add_memory(start.expose_provenance(), 4 << 20)? };
//! HEAP.init(SlabAllocator::new(pages));
//! assert!(HEAP.caches_enabled());
//!
//! // What `Box` and `Vec` do.
//! let layout = Layout::new::<[u64; 8]>();
//! // SAFETY: the layout's size is not zero.
//! let block = unsafe { GlobalAlloc::alloc(&HEAP, layout) };
//! assert!(!block.is_null());
//! // SAFETY: `block` came from this heap with `layout`.
//! unsafe { GlobalAlloc::dealloc(&HEAP, block, layout) };
//!
//! // The same through the checked interface: the block freed last is
//! // parked in this CPU's magazine, and a second free is still refused.
//! let block = HEAP.alloc(layout)?;
//! // SAFETY: `block` is live, allocated with `layout`.
//! unsafe { HEAP.dealloc(block, layout)? };
//! // SAFETY: the heap looks a freed block up before touching it.
//! assert_eq!(unsafe { HEAP.dealloc(block, layout) }, Err(AllocError::DoubleFree));
//!
//! let stats = HEAP.stats();
//! assert_eq!((stats.allocs, stats.live_blocks()), (2, 0));
//! assert!(stats.cached_total() > 0); // parked for the next allocation
//! # Ok::<(), AllocError>(())
//! ```

#![no_std]
#![warn(missing_docs)]
#![cfg_attr(loom, allow(clippy::new_without_default, clippy::len_without_is_empty))]

mod drain;
mod magazine;
mod shim;

pub use ksync;

#[cfg(not(doctest))]
pub mod design {
    //! The design note, rendered here so it travels with the crate: the
    //! fast path, the magazines and the shelf, the drain and the reclaim,
    //! the per-CPU page lists, what is measured. Its links to other notes
    //! resolve in the repository, under
    //! <https://github.com/rvos-kernel/rvos/tree/main/docs>.
    #![doc = include_str!("../docs/kheap.md")]
}

#[cfg(not(loom))]
mod caches;
#[cfg(not(loom))]
mod cpu;
#[cfg(not(loom))]
mod depot;
#[cfg(not(loom))]
mod heap;
#[cfg(not(loom))]
mod pages;
#[cfg(not(loom))]
mod remote;
#[cfg(not(loom))]
mod seen;
#[cfg(not(loom))]
mod shelf;
#[cfg(not(loom))]
mod stats;

#[cfg(not(loom))]
pub use caches::magazine_capacity;
#[cfg(not(loom))]
pub use cpu::{Cpu, Hooks, NoHooks};
#[cfg(not(loom))]
pub use depot::Depot;
#[cfg(not(loom))]
pub use heap::CachedHeap;
pub use magazine::MAGAZINE_SLOTS;
#[cfg(not(loom))]
pub use pages::{PAGE_CACHE_ORDERS, PageCaches, PageState, PageStats, page_list_capacity};
#[cfg(not(loom))]
pub use remote::DrainReport;
#[cfg(not(loom))]
pub use shelf::SHELF_MAGAZINES;
#[cfg(not(loom))]
pub use stats::{FOLD_BYTES, HeapStats};

/// The cross-CPU protocols alone, for the model checker.
#[cfg(loom)]
#[doc(hidden)]
pub mod model {
    pub use crate::drain::DrainRequests;
    pub use crate::magazine::Magazine;
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
