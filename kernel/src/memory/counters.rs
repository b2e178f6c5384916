//! The counters the allocation paths keep whatever the diagnostics say:
//! live blocks and bytes through the global allocator, pages the heap
//! holds, operations and failures, and the two watermarks (highest bytes
//! live, highest pages in use, and when). Each update is a relaxed atomic
//! add, and a watermark is written only when it rises.

use core::alloc::Layout;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Heap counters (all harts).
pub struct Counters {
    /// Live allocations through the global allocator.
    pub live_blocks: AtomicUsize,
    /// Live bytes requested through the global allocator.
    pub live_bytes: AtomicUsize,
    /// Pages the byte allocators hold (pools, slabs, the large-block table).
    pub heap_pages: AtomicUsize,
    /// Pages handed out directly for large requests.
    pub large_pages: AtomicUsize,
    /// Allocations that failed.
    pub failures: AtomicUsize,
}

pub static COUNTERS: Counters = Counters {
    live_blocks: AtomicUsize::new(0),
    live_bytes: AtomicUsize::new(0),
    heap_pages: AtomicUsize::new(0),
    large_pages: AtomicUsize::new(0),
    failures: AtomicUsize::new(0),
};

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);
static PAGE_ALLOCS: AtomicU64 = AtomicU64::new(0);
static PAGE_FREES: AtomicU64 = AtomicU64::new(0);
static PAGE_FAILURES: AtomicU64 = AtomicU64::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES_TIME: AtomicU64 = AtomicU64::new(0);
static PEAK_PAGES: AtomicUsize = AtomicUsize::new(0);
static PEAK_PAGES_TIME: AtomicU64 = AtomicU64::new(0);

/// A block for `layout` was handed out through the global allocator.
#[inline]
pub fn note_alloc(layout: Layout) {
    COUNTERS.live_blocks.fetch_add(1, Ordering::Relaxed);
    let live = COUNTERS
        .live_bytes
        .fetch_add(layout.size(), Ordering::Relaxed)
        + layout.size();
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    if live > PEAK_BYTES.load(Ordering::Relaxed)
        && PEAK_BYTES.fetch_max(live, Ordering::Relaxed) < live
    {
        PEAK_BYTES_TIME.store(crate::arch::cpu::ticks(), Ordering::Relaxed);
    }
}

/// A block for `layout` came back through the global allocator.
#[inline]
pub fn note_free(layout: Layout) {
    COUNTERS.live_blocks.fetch_sub(1, Ordering::Relaxed);
    COUNTERS
        .live_bytes
        .fetch_sub(layout.size(), Ordering::Relaxed);
    FREES.fetch_add(1, Ordering::Relaxed);
}

/// A page allocation (`ok`) or failure; `used_pages` in use after it.
#[inline]
pub fn note_pages(ok: bool, used_pages: usize) {
    if !ok {
        PAGE_FAILURES.fetch_add(1, Ordering::Relaxed);
        return;
    }
    PAGE_ALLOCS.fetch_add(1, Ordering::Relaxed);
    if used_pages > PEAK_PAGES.load(Ordering::Relaxed)
        && PEAK_PAGES.fetch_max(used_pages, Ordering::Relaxed) < used_pages
    {
        PEAK_PAGES_TIME.store(crate::arch::cpu::ticks(), Ordering::Relaxed);
    }
}

/// A page free succeeded.
#[inline]
pub fn note_page_free() {
    PAGE_FREES.fetch_add(1, Ordering::Relaxed);
}

/// Operation counts since boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Operations {
    /// Through `GlobalAlloc`.
    pub allocs: u64,
    pub frees: u64,
    /// Through `memory::pages`.
    pub page_allocs: u64,
    pub page_frees: u64,
    pub page_failures: u64,
}

pub fn operations() -> Operations {
    Operations {
        allocs: ALLOCS.load(Ordering::Relaxed),
        frees: FREES.load(Ordering::Relaxed),
        page_allocs: PAGE_ALLOCS.load(Ordering::Relaxed),
        page_frees: PAGE_FREES.load(Ordering::Relaxed),
        page_failures: PAGE_FAILURES.load(Ordering::Relaxed),
    }
}

/// Highest use ever, and when (timebase ticks).
#[derive(Clone, Copy, Debug, Default)]
pub struct Peaks {
    pub pages: usize,
    pub pages_at: u64,
    pub bytes: usize,
    pub bytes_at: u64,
}

pub fn peaks() -> Peaks {
    Peaks {
        pages: PEAK_PAGES.load(Ordering::Relaxed),
        pages_at: PEAK_PAGES_TIME.load(Ordering::Relaxed),
        bytes: PEAK_BYTES.load(Ordering::Relaxed),
        bytes_at: PEAK_BYTES_TIME.load(Ordering::Relaxed),
    }
}
