//! `kalloc`: the memory allocators of RVOS, usable on their own by any
//! `no_std` kernel.
//!
//! The crate separates interfaces ([`BaseAllocator`], [`PageAllocator`],
//! [`ByteAllocator`], [`IdAllocator`]) from algorithms:
//!
//! - page-granular: [`page::BuddyPageAllocator`] (the default),
//!   [`page::BitmapPageAllocator`], [`page::LinearPageAllocator`] (baseline);
//! - byte-granular: [`byte::Tlsf`], [`byte::BuddyByteAllocator`],
//!   [`byte::SlabAllocator`];
//! - IDs: [`id::BitmapIdAllocator`].
//!
//! It knows nothing about any architecture, never allocates for itself
//! (metadata lives in the memory it is given) and is tested on the host.
//! Every free is checked: a double, interior, foreign or wrong-size free
//! is an [`AllocError`] and changes nothing. How each algorithm works and
//! what it costs: the [`design`] notes.
//!
//! # A page allocator over a region
//!
//! A kernel hands its free RAM to a page allocator; on the host, a buffer
//! stands in for it.
//!
//! ```
//! use kalloc::page::BuddyPageAllocator;
//! use kalloc::{AllocError, BaseAllocator, PageAllocator};
//!
//! // 1 MiB of "RAM", page aligned.
//! let ram = std::alloc::Layout::from_size_align(1 << 20, 4096).unwrap();
//! // SAFETY: the layout's size is not zero.
//! let start = unsafe { std::alloc::alloc(ram) };
//! assert!(!start.is_null());
//!
//! let mut pages = BuddyPageAllocator::new();
//! // SAFETY: the buffer is ours and nothing else uses it while `pages`
//! // lives; its address carries exposed provenance.
//! unsafe { pages.add_memory(start.expose_provenance(), 1 << 20)? };
//! // The allocator's metadata took the region's first pages (two, here).
//! assert!((250..256).contains(&pages.total_pages()));
//!
//! let block = pages.alloc_pages(4, 16 * 1024)?; // 4 pages, 16 KiB aligned
//! assert_eq!(block % (16 * 1024), 0);
//! assert_eq!(pages.used_pages(), 4);
//! pages.dealloc_pages(block, 4)?;
//! // A second free is refused and changes nothing.
//! assert_eq!(pages.dealloc_pages(block, 4), Err(AllocError::DoubleFree));
//! assert_eq!(pages.used_pages(), 0);
//! # drop(pages);
//! # // SAFETY: the allocator that used the buffer is gone.
//! # unsafe { std::alloc::dealloc(start, ram) };
//! # Ok::<(), AllocError>(())
//! ```
//!
//! # A byte allocator fed from it
//!
//! The TLSF takes pools of pages from the page allocator and gives a pool
//! back once it is wholly free.
//!
//! ```
//! use core::alloc::Layout;
//! use kalloc::byte::Tlsf;
//! use kalloc::page::BuddyPageAllocator;
//! use kalloc::{AllocError, BaseAllocator, ByteAllocator, PageAllocator};
//! # let ram = Layout::from_size_align(1 << 20, 4096).unwrap();
//! # // SAFETY: the layout's size is not zero.
//! # let start = unsafe { std::alloc::alloc(ram) };
//! # let mut pages = BuddyPageAllocator::new();
//! # // SAFETY: as in the example above.
//! # unsafe { pages.add_memory(start.expose_provenance(), 1 << 20)? };
//!
//! let mut heap = Tlsf::new();
//! let pool = pages.alloc_pages(16, 4096)?;
//! // SAFETY: the 16 pages are ours until we give them back.
//! unsafe { heap.add_memory(pool, 16 * 4096)? };
//!
//! let layout = Layout::from_size_align(100, 8).unwrap();
//! let block = heap.alloc(layout)?;
//! // SAFETY: `block` is 100 writable bytes.
//! unsafe { block.as_ptr().write_bytes(0xab, 100) };
//! // SAFETY: `block` is live, allocated with `layout`.
//! let grown = unsafe { heap.realloc(block, layout, 300)? };
//! // SAFETY: the first 100 bytes moved with the block.
//! assert_eq!(unsafe { grown.as_ptr().add(99).read() }, 0xab);
//! let grown_layout = Layout::from_size_align(300, 8).unwrap();
//! // SAFETY: `grown` is live, allocated with `grown_layout`.
//! unsafe { heap.dealloc(grown, grown_layout)? };
//! assert_eq!(heap.used_bytes(), 0);
//!
//! // The pool is wholly free again: its pages go back.
//! let (taken, size) = heap.take_free_pool().unwrap();
//! assert_eq!((taken.addr().get(), size), (pool, 16 * 4096));
//! pages.dealloc_pages(pool, 16)?;
//! # drop(pages);
//! # // SAFETY: the allocators that used the buffer are done with it.
//! # unsafe { std::alloc::dealloc(start, ram) };
//! # Ok::<(), AllocError>(())
//! ```
//!
//! # A slab allocator on the page allocator
//!
//! [`byte::SlabAllocator`] serves `kmalloc`-style size classes (8 B to
//! 2 KiB) and named caches from slabs of pages; it owns its page source
//! (any [`PageAllocator`] is one) and sends larger requests to it whole.
//!
//! ```
//! use core::alloc::Layout;
//! use kalloc::byte::SlabAllocator;
//! use kalloc::page::BuddyPageAllocator;
//! use kalloc::{AllocError, BaseAllocator, ByteAllocator, PageAllocator};
//! # let ram = Layout::from_size_align(1 << 20, 4096).unwrap();
//! # // SAFETY: the layout's size is not zero.
//! # let start = unsafe { std::alloc::alloc(ram) };
//! # let mut pages = BuddyPageAllocator::new();
//! # // SAFETY: as in the first example.
//! # unsafe { pages.add_memory(start.expose_provenance(), 1 << 20)? };
//!
//! let mut slab = SlabAllocator::new(pages);
//! let small = Layout::new::<[u64; 8]>(); // 64 bytes: class kmalloc-64
//! let a = slab.alloc(small)?;
//! let b = slab.alloc(small)?;
//! assert_ne!(a, b);
//! // SAFETY: `a` is live, allocated with `small`.
//! unsafe { slab.dealloc(a, small)? };
//! // SAFETY: a double free is detected and refused, not undefined.
//! assert_eq!(unsafe { slab.dealloc(a, small) }, Err(AllocError::DoubleFree));
//!
//! // A named cache of 200-byte objects.
//! let tasks = slab.create_cache("task", 200, 16)?;
//! let task = slab.cache_alloc(tasks)?;
//! assert_eq!(task.addr().get() % 16, 0);
//! // SAFETY: `task` is a live object of `tasks`.
//! unsafe { slab.cache_free(tasks, task)? };
//!
//! // Above 2 KiB: whole pages from the page source.
//! let big = Layout::from_size_align(3 * 4096, 4096).unwrap();
//! let pages_block = slab.alloc(big)?;
//! assert_eq!(slab.source().used_pages() >= 3, true);
//! // SAFETY: both blocks are live, with these layouts.
//! unsafe {
//!     slab.dealloc(pages_block, big)?;
//!     slab.dealloc(b, small)?;
//! }
//! assert_eq!(slab.used_bytes(), 0);
//! # drop(slab);
//! # // SAFETY: the allocators that used the buffer are gone.
//! # unsafe { std::alloc::dealloc(start, ram) };
//! # Ok::<(), AllocError>(())
//! ```
//!
//! # A `GlobalAlloc`
//!
//! A one-lock global allocator is a few lines over any [`ByteAllocator`]
//! (a kernel takes its own spin lock where this takes `std`'s mutex). For
//! several CPUs, the `kheap` crate's `CachedHeap` is a drop-in
//! `GlobalAlloc` with per-CPU caches over a [`byte::SlabAllocator`].
//!
//! ```
//! use core::alloc::{GlobalAlloc, Layout};
//! use core::ptr::{self, NonNull};
//! use std::sync::Mutex;
//! use kalloc::byte::Tlsf;
//! use kalloc::{AllocError, BaseAllocator, ByteAllocator};
//!
//! struct LockedHeap(Mutex<Tlsf>);
//!
//! // SAFETY: blocks come from the TLSF, which hands out disjoint blocks
//! // that fit their layout; the lock serialises every operation.
//! unsafe impl GlobalAlloc for LockedHeap {
//!     unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
//!         let mut heap = self.0.lock().unwrap();
//!         heap.alloc(layout).map_or(ptr::null_mut(), NonNull::as_ptr)
//!     }
//!
//!     unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
//!         let ptr = NonNull::new(ptr).expect("free of null");
//!         // SAFETY: `GlobalAlloc::dealloc`'s contract: `ptr` came from
//!         // `alloc` with `layout`.
//!         let freed = unsafe { self.0.lock().unwrap().dealloc(ptr, layout) };
//!         freed.expect("refused free");
//!     }
//! }
//!
//! // `#[global_allocator]` on it makes it the heap of `alloc`.
//! static HEAP: LockedHeap = LockedHeap(Mutex::new(Tlsf::new()));
//!
//! # let pool = Box::leak(vec![0u64; 8192].into_boxed_slice());
//! # let (start, size) = (pool.as_mut_ptr().expose_provenance(), 8192 * 8);
//! // At boot, before the first allocation: give it memory.
//! // SAFETY: `[start, start + size)` is memory nothing else uses.
//! unsafe { HEAP.0.lock().unwrap().add_memory(start, size)? };
//!
//! let layout = Layout::new::<[u32; 16]>();
//! // SAFETY: the layout's size is not zero.
//! let block = unsafe { HEAP.alloc(layout) };
//! assert!(!block.is_null());
//! // SAFETY: `block` came from `HEAP.alloc(layout)`.
//! unsafe { HEAP.dealloc(block, layout) };
//! assert_eq!(HEAP.0.lock().unwrap().used_bytes(), 0);
//! # Ok::<(), AllocError>(())
//! ```
//!
//! # IDs
//!
//! ```
//! use kalloc::id::BitmapIdAllocator;
//! use kalloc::{AllocError, IdAllocator};
//!
//! let mut pids = BitmapIdAllocator::<4>::new(); // up to 256 IDs
//! pids.add_ids(1, 255)?; // PID 0 is never handed out
//! assert_eq!(pids.alloc_id(1, 1)?, 1);
//! pids.alloc_fixed_id(42)?;
//! assert_eq!(pids.alloc_fixed_id(42), Err(AllocError::NoMemory));
//! pids.dealloc_id(42, 1)?;
//! assert!(!pids.is_allocated(42));
//! # Ok::<(), AllocError>(())
//! ```
//!
//! # Features
//!
//! - `axallocator` (off by default): every allocator also implements the
//!   traits of ArceOS's `axallocator` crate, so an ArceOS kernel switches
//!   to them by changing the line that names its allocator type. The
//!   `arceos` module (documented when the feature is on, as on docs.rs)
//!   says how, and how errors map.

#![no_std]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

mod error;
mod traits;

#[cfg(feature = "axallocator")]
pub mod arceos;
pub mod byte;
#[cfg(not(doctest))]
pub mod design;
pub mod id;
pub mod page;
pub mod stats;

pub use error::{AllocError, AllocResult};
pub use traits::{BaseAllocator, ByteAllocator, IdAllocator, PageAllocator};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
