//! The counters the page paths keep whatever the diagnostics say: pages
//! the heap holds, page operations and failures, and the page watermark
//! (highest pages in use, and when). Each update is a relaxed atomic add
//! under the page or heap lock (never on the global allocator's per-hart
//! fast path, whose counters are per hart: `global::stats`), and the
//! watermark is written only when it rises.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

static PAGE_ALLOCS: AtomicU64 = AtomicU64::new(0);
static PAGE_FREES: AtomicU64 = AtomicU64::new(0);
static PAGE_FAILURES: AtomicU64 = AtomicU64::new(0);
static PEAK_PAGES: AtomicUsize = AtomicUsize::new(0);
static PEAK_PAGES_TIME: AtomicU64 = AtomicU64::new(0);

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

/// Page operation counts since boot (through `memory::pages`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Operations {
    pub page_allocs: u64,
    pub page_frees: u64,
    pub page_failures: u64,
}

pub fn operations() -> Operations {
    Operations {
        page_allocs: PAGE_ALLOCS.load(Ordering::Relaxed),
        page_frees: PAGE_FREES.load(Ordering::Relaxed),
        page_failures: PAGE_FAILURES.load(Ordering::Relaxed),
    }
}

/// Highest page use ever, and when (timebase ticks).
#[derive(Clone, Copy, Debug, Default)]
pub struct PagePeak {
    pub pages: usize,
    pub at: u64,
}

pub fn page_peak() -> PagePeak {
    PagePeak {
        pages: PEAK_PAGES.load(Ordering::Relaxed),
        at: PEAK_PAGES_TIME.load(Ordering::Relaxed),
    }
}
