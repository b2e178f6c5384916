//! The physical page allocator: one instance for the whole machine, the
//! algorithm chosen at boot (`pagealloc=buddy|bitmap`), fed with every free
//! range the boot layout computed (all RAM the device tree lists, through
//! the high-half linear map). It is a `kheap::PageCaches`: one
//! `IrqTicketLock` around the allocator, so every hart and every interrupt
//! handler can use it, and per-hart lists of free blocks of 1 to 8 pages
//! in front, so a hart's single-page churn takes no lock.
//!
//! Addresses handed out are linear-map virtual addresses
//! (`arch::phys_to_virt`); the algorithms are in `page_allocator`. Every
//! free that reaches the allocator (from a caller, or a hart's list given
//! back) passes the checks' filter first (pages out of service), and
//! while any page is out of service frees skip the lists.
//!
//! At trace level (`log=pages:trace`) [`alloc_for`] and [`free`] log every
//! operation with its caller; disabled, that is one load and a branch.
//! Callers that may hold an allocator lock (the heap growing, KFENCE,
//! page-table frames) use the `_untraced` variants: nothing may print
//! under such a lock, and the heap reports its page moves itself.

pub use super::page_allocator::{BootPageAllocator, PageAllocatorKind};
use super::{Size, hooks};
use crate::arch::{self, PAGE_SIZE};
use crate::platform::MAX_HARTS;
use crate::sync::KernelArch;
use core::sync::atomic::Ordering;
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator};
use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{AllocResult, BaseAllocator, PageAllocator};
use kheap::{DrainReport, PageCaches, PageState};
use log::{debug, info, trace, warn};

/// The boot-chosen allocator with the checks' filter on every free.
pub struct FilteredPages(BootPageAllocator);

impl BaseAllocator for FilteredPages {
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.add_memory(start, size) }
    }
}

impl PageAllocator for FilteredPages {
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        self.0.alloc_pages(count, align)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        self.0.alloc_pages_at(addr, count, align)
    }

    /// Through the checks' filter (pages out of service), if installed.
    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        match hooks::CHECKS.get() {
            Some(checks) => (checks.free_pages)(&mut self.0, addr, count),
            None => self.0.dealloc_pages(addr, count),
        }
    }

    fn total_pages(&self) -> usize {
        self.0.total_pages()
    }

    fn used_pages(&self) -> usize {
        self.0.used_pages()
    }
}

static PAGES: PageCaches<KernelArch, FilteredPages, MAX_HARTS> = PageCaches::new("pages");

/// Creates the allocator, gives it every free range of the boot layout,
/// then turns the per-hart lists on over all of RAM (their state table,
/// one `PageState`, 8 bytes, per page, taken from the allocator itself).
pub fn init(kind: PageAllocatorKind) {
    let mut allocator = match kind {
        PageAllocatorKind::Buddy => BootPageAllocator::Buddy(BuddyPageAllocator::new()),
        PageAllocatorKind::Bitmap => BootPageAllocator::Bitmap(BitmapPageAllocator::new()),
    };
    let layout = crate::memory::layout::get();
    let (mut lowest, mut highest) = (usize::MAX, 0);
    for free in layout.free.as_slice() {
        let start = arch::phys_to_virt(free.start() as usize);
        // SAFETY: the layout's free ranges are RAM that no reservation
        // covers (firmware, image, device tree), reachable through the
        // linear map, and handed to nobody else.
        match unsafe { allocator.add_memory(start, free.size() as usize) } {
            Ok(()) => {
                lowest = lowest.min(start);
                highest = highest.max(start + free.size() as usize);
            }
            Err(error) => warn!("page allocator refused free range {free}: {error}"),
        }
    }
    info!(
        "{} page allocator managing {} pages ({})",
        kind.name(),
        allocator.total_pages(),
        Size((allocator.total_pages() * PAGE_SIZE) as u64)
    );
    debug!(
        "{} free ranges from {lowest:#x} to {highest:#x}; orders 0 to {}",
        layout.free.len(),
        max_order_of(allocator.total_pages())
    );
    PAGES.init(FilteredPages(allocator));
    if lowest < highest {
        enable_lists(lowest, (highest - lowest) / PAGE_SIZE);
    }
}

/// Turns the per-hart lists on for `pages` pages from `base`.
fn enable_lists(base: usize, pages: usize) {
    let table_pages = (pages * size_of::<PageState>()).div_ceil(PAGE_SIZE);
    let Ok(table) = with(|a| a.alloc_pages(table_pages, PAGE_SIZE)) else {
        warn!("page allocator: no room for the per-hart lists' state table; lists off");
        return;
    };
    // SAFETY: `table_pages` fresh pages, in the linear map, never freed:
    // zeroed here, they hold `pages` `PageState`s (zeroed bytes are one;
    // alignment 8 divides the page size) for the rest of the kernel's
    // life, used only as such.
    let states: &'static [PageState] = unsafe {
        core::ptr::write_bytes(table as *mut u8, 0, table_pages * PAGE_SIZE);
        core::slice::from_raw_parts(table as *const PageState, pages)
    };
    PAGES.enable_lists(states, base);
    debug!(
        "per-hart lists for blocks of 1 to 8 pages ({} of state table)",
        Size((table_pages * PAGE_SIZE) as u64)
    );
}

/// Runs `f` on the page allocator with its lock held (interrupts masked).
pub fn with<R>(f: impl FnOnce(&mut BootPageAllocator) -> R) -> R {
    PAGES
        .with(|pages| f(&mut pages.0))
        .expect("page allocator used before memory::pages::init")
}

/// Allocates `count` contiguous pages aligned to `align` bytes (through
/// the page debug layer when one is plugged in, recording the caller).
#[track_caller]
pub fn alloc(count: usize, align: usize) -> AllocResult<usize> {
    alloc_for("pages", count, align)
}

/// [`alloc`] on behalf of `name` (`heap`, `pagetable`, ...), the name
/// fault injection's filter matches.
#[track_caller]
pub fn alloc_for(name: &str, count: usize, align: usize) -> AllocResult<usize> {
    let result = alloc_untraced(name, count, align);
    if log::log_enabled!(log::Level::Trace) {
        trace_op(
            "alloc",
            name,
            count,
            &result.map(|_| ()),
            result.unwrap_or(0),
        );
    }
    result
}

/// One page operation at trace level, with its caller.
#[track_caller]
#[cold]
fn trace_op(op: &str, name: &str, count: usize, result: &AllocResult, addr: usize) {
    let caller = core::panic::Location::caller();
    match result {
        Ok(()) => trace!(
            "{op} {count} page(s) at {addr:#x} for {name} ({}:{})",
            caller.file(),
            caller.line()
        ),
        Err(error) => trace!(
            "{op} {count} page(s) for {name} failed: {error} ({}:{})",
            caller.file(),
            caller.line()
        ),
    }
}

/// [`alloc_for`] without the trace, for callers that may hold an
/// allocator lock.
#[track_caller]
pub fn alloc_untraced(name: &str, count: usize, align: usize) -> AllocResult<usize> {
    debug_assert!(
        !crate::console::held_by_this_hart(),
        "page allocator: allocation for {name} while printing"
    );
    if hooks::FAIL_PAGE_ALLOC_ARMED.load(Ordering::Relaxed)
        && hooks::CHECKS
            .get()
            .is_some_and(|checks| (checks.fail_page_alloc)(name, count))
    {
        return Err(kalloc::AllocError::NoMemory);
    }
    if let Some(layer) = hooks::PAGE_LAYER.get() {
        return (layer.alloc)(count, align, memdebug::CallSite::caller());
    }
    alloc_plain(count, align)
}

/// The allocation underneath the page debug layer: this hart's list or
/// the allocator, draining every hart's lists before it fails.
pub fn alloc_plain(count: usize, align: usize) -> AllocResult<usize> {
    PAGES.alloc_or_reclaim(count, align)
}

/// Allocates exactly the `count` pages at `addr` (aligned to `align`),
/// asking every hart to give its listed blocks back first if one of them
/// holds a page of the range.
pub fn alloc_at(addr: usize, count: usize, align: usize) -> AllocResult<usize> {
    match with(|a| a.alloc_pages_at(addr, count, align)) {
        Err(kalloc::AllocError::NoMemory) if PAGES.lists_enabled() => {
            PAGES.drain_all();
            with(|a| a.alloc_pages_at(addr, count, align))
        }
        result => result,
    }
}

/// Frees `count` pages at `addr`, a block `alloc` returned.
#[track_caller]
pub fn free(addr: usize, count: usize) -> AllocResult {
    let result = free_untraced(addr, count);
    if log::log_enabled!(log::Level::Trace) {
        trace_op("free", "its owner", count, &result, addr);
    }
    result
}

/// [`free`] without the trace, for callers that may hold an allocator
/// lock.
#[track_caller]
pub fn free_untraced(addr: usize, count: usize) -> AllocResult {
    if let Some(layer) = hooks::PAGE_LAYER.get() {
        return (layer.free)(addr, count, memdebug::CallSite::caller());
    }
    free_plain(addr, count)
}

/// The free underneath the page debug layer: into this hart's list, or,
/// while pages are out of service, straight to the allocator through the
/// filter.
pub fn free_plain(addr: usize, count: usize) -> AllocResult {
    if hooks::PAGES_FILTERED.load(Ordering::Relaxed) {
        PAGES.free_locked(addr, count)
    } else {
        PAGES.free(addr, count)
    }
}

/// Every hart's listed blocks back to the allocator (memory pressure,
/// pages taken out of service, the monitor's `caches drain`).
pub fn drain_lists() -> DrainReport {
    PAGES.drain_all()
}

/// The IPI service: answers a drain request to this hart's lists.
pub fn serve_drain_requests() {
    PAGES.serve_drain_requests();
}

/// Page operations and the lists' contents, summed over the harts.
pub fn cache_stats() -> kheap::PageStats {
    PAGES.stats()
}

/// Whether the per-hart lists are on.
pub fn lists_enabled() -> bool {
    PAGES.lists_enabled()
}

/// Pages parked in each hart's lists (index: hart slot).
pub fn parked_per_hart() -> [usize; MAX_HARTS] {
    PAGES.parked_per_cpu()
}

/// Lends `count` fresh pages aligned to their size to `allocator` for its
/// whole life: gives them to it, runs `run`, drops it, then takes the
/// pages back. The pages are the allocator's alone while it exists, which
/// is what `BaseAllocator::add_memory` asks (benchmarks and tests that
/// build private allocators in kernel memory).
pub fn lend<A: BaseAllocator, R>(
    count: usize,
    mut allocator: A,
    run: impl FnOnce(&mut A) -> R,
) -> AllocResult<R> {
    let bytes = count * PAGE_SIZE;
    let start = alloc(count, bytes.next_power_of_two())?;
    // SAFETY: the pages are fresh from the page allocator, mapped through
    // the linear map, and used by nothing but `allocator` until it is
    // dropped below, before they are freed.
    let result = unsafe { allocator.add_memory(start, bytes) }.map(|()| run(&mut allocator));
    drop(allocator);
    free(start, count)?;
    result
}

/// Pages in use (handed out: blocks parked in the harts' lists are free)
/// and in total. The parked pages are counted under the allocator's lock:
/// blocks move between the allocator and the lists only under it, so the
/// two counts agree; what the harts' fast paths take from or give to
/// their own lists meanwhile is a real change of use.
pub fn usage() -> (usize, usize) {
    let (used, parked, total) = with(|a| (a.used_pages(), PAGES.parked_pages(), a.total_pages()));
    (used.saturating_sub(parked), total)
}

/// The highest order a free block can have in this boot: that of the
/// largest power of two of pages the managed memory holds, within the
/// buddy allocator's limit (`buddyinfo` prints orders 0 to this).
pub fn max_order() -> usize {
    max_order_of(with(|a| a.total_pages()))
}

fn max_order_of(total_pages: usize) -> usize {
    (total_pages.max(1).ilog2() as usize).min(kalloc::page::DEFAULT_MAX_ORDER)
}

/// Free-memory snapshot.
pub fn stats() -> PageStats {
    with(|a| a.page_stats())
}

/// [`stats`], and the pages parked in the harts' lists, read under the
/// same lock: refills and give-backs move pages between the allocator and
/// the lists only under it, so the two agree (as in [`usage`]).
pub fn stats_and_listed() -> (PageStats, usize) {
    with(|a| (a.page_stats(), PAGES.parked_pages()))
}

#[cfg(feature = "ktest")]
mod tests;
