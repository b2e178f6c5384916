//! The physical page allocator: one instance for the whole machine, the
//! algorithm chosen at boot (`pagealloc=buddy|bitmap`), fed with every free
//! range the boot layout computed (all RAM the device tree lists, through
//! the high-half linear map), behind one `IrqTicketLock` so every hart and
//! every interrupt handler can use it.
//!
//! Addresses handed out are linear-map virtual addresses
//! (`arch::phys_to_virt`); the algorithms are in `page_allocator`.

pub use super::page_allocator::{BootPageAllocator, PageAllocatorKind};
use super::{Size, counters, hooks};
use crate::arch::{self, PAGE_SIZE};
use crate::sync::IrqTicketLock;
use core::sync::atomic::Ordering;
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator};
use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{AllocResult, BaseAllocator, PageAllocator};
use log::{info, warn};

static PAGES: IrqTicketLock<Option<BootPageAllocator>> = IrqTicketLock::new("pages", None);

/// Creates the allocator and gives it every free range of the boot layout.
pub fn init(kind: PageAllocatorKind) {
    let mut allocator = match kind {
        PageAllocatorKind::Buddy => BootPageAllocator::Buddy(BuddyPageAllocator::new()),
        PageAllocatorKind::Bitmap => BootPageAllocator::Bitmap(BitmapPageAllocator::new()),
    };
    let layout = crate::memory::layout::get();
    for free in layout.free.as_slice() {
        let start = arch::phys_to_virt(free.start() as usize);
        // SAFETY: the layout's free ranges are RAM that no reservation
        // covers (firmware, image, device tree), reachable through the
        // linear map, and handed to nobody else.
        match unsafe { allocator.add_memory(start, free.size() as usize) } {
            Ok(()) => {}
            Err(error) => warn!("page allocator refused free range {free}: {error}"),
        }
    }
    info!(
        "page allocator: {} managing {} pages ({})",
        kind.name(),
        allocator.total_pages(),
        Size((allocator.total_pages() * PAGE_SIZE) as u64)
    );
    let mut slot = PAGES.lock();
    assert!(slot.is_none(), "page allocator initialised twice");
    *slot = Some(allocator);
}

/// Runs `f` on the page allocator with its lock held (interrupts masked).
pub fn with<R>(f: impl FnOnce(&mut BootPageAllocator) -> R) -> R {
    let mut guard = PAGES.lock();
    f(guard
        .as_mut()
        .expect("page allocator used before memory::pages::init"))
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

/// The allocation underneath the page debug layer: the allocator itself
/// and the counters.
pub fn alloc_plain(count: usize, align: usize) -> AllocResult<usize> {
    with(|a| {
        let result = a.alloc_pages(count, align);
        counters::note_pages(result.is_ok(), a.used_pages());
        result
    })
}

/// Frees `count` pages at `addr`, a block `alloc` returned.
#[track_caller]
pub fn free(addr: usize, count: usize) -> AllocResult {
    if let Some(layer) = hooks::PAGE_LAYER.get() {
        return (layer.free)(addr, count, memdebug::CallSite::caller());
    }
    free_plain(addr, count)
}

/// The free underneath the page debug layer: the checks' page filter
/// (pages out of service) runs under the allocator's lock.
pub fn free_plain(addr: usize, count: usize) -> AllocResult {
    with(|a| match hooks::CHECKS.get() {
        Some(checks) => (checks.free_pages)(a, addr, count),
        None => a.dealloc_pages(addr, count),
    })
    .inspect(|()| counters::note_page_free())
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

/// Pages in use and in total.
pub fn usage() -> (usize, usize) {
    with(|a| (a.used_pages(), a.total_pages()))
}

/// Free-memory snapshot.
pub fn stats() -> PageStats {
    with(|a| a.page_stats())
}
