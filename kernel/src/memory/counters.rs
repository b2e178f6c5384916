//! The pages the heap holds, counted whatever the diagnostics say: a
//! relaxed atomic add under the heap lock, never on a per-hart fast path
//! (operation counts and watermarks are per hart in kheap:
//! `global::stats`, `pages::cache_stats`).

use core::sync::atomic::AtomicUsize;

/// Pages the heap holds (all harts).
pub struct Counters {
    /// Pages the byte allocators hold (pools, slabs, the large-block table).
    pub heap_pages: AtomicUsize,
    /// Pages handed out directly for large requests.
    pub large_pages: AtomicUsize,
}

pub static COUNTERS: Counters = Counters {
    heap_pages: AtomicUsize::new(0),
    large_pages: AtomicUsize::new(0),
};
