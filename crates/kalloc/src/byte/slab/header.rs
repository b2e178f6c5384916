//! The header at the start of every slab: what a free's fast test reads
//! (`stamp`, `carved`; `shape.rs`, also without the allocator's lock
//! through `probe.rs`) and what the cache keeps of the slab (`cache.rs`:
//! its free list, its count of objects off that list, its list links).

use core::sync::atomic::AtomicUsize;

use super::free_list::FreeList;

/// The header at the start of every slab.
#[repr(C)]
pub(super) struct SlabHeader {
    /// [`Shape::stamp`](super::shape::Shape::stamp) while the slab is in service, that `^ RETIRED`
    /// once retired, 0 once given back to the page source. Atomic (relaxed,
    /// plain loads and stores) because a per-CPU cache in front of the
    /// allocator reads it without the allocator's lock (`probe.rs`).
    pub(super) stamp: AtomicUsize,
    /// Objects freed back to this slab (not those parked in the magazine).
    pub(super) free: FreeList,
    /// Objects handed out from the bump, in address order: those with an
    /// index at or above it have never been handed out. Atomic for the
    /// same reason as `stamp`; it only grows while in service.
    pub(super) carved: AtomicUsize,
    /// Objects not on this slab's free list: live, parked in the
    /// magazine, or (retired slabs) freed but kept off the free list.
    pub(super) in_use: usize,
    pub(super) prev: *mut SlabHeader,
    pub(super) next: *mut SlabHeader,
}
