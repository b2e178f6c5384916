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
//!
//! Exact double-free detection stays on: a parked object carries a
//! free-list mark in its first word, so a second free of it fails the
//! lock-free probe and is settled under the lock by looking through the
//! depot's lists and every CPU's magazines. See `docs/kheap.md`.
//!
//! Nothing here knows the architecture: the CPU index, interrupt masking
//! and the wake-up of another CPU come from a [`Cpu`] implementation.
//!
//! ```ignore
//! static HEAP: kheap::CachedHeap<MyCpu, SlabAllocator<MyPages>, NoHooks, 8> =
//!     kheap::CachedHeap::new("heap");
//! // at boot: HEAP.init(SlabAllocator::new(pages));
//! ```

#![no_std]
#![cfg_attr(loom, allow(clippy::new_without_default, clippy::len_without_is_empty))]

mod drain;
mod magazine;
mod shim;

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
pub use pages::{PAGE_CACHE_ORDERS, PageCaches, PageStats, page_list_capacity};
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
