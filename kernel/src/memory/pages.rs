//! The physical page allocator: one instance for the whole machine, the
//! algorithm chosen at boot (`pagealloc=buddy|bitmap`), fed with every free
//! range the boot layout computed (all RAM the device tree lists, through
//! the high-half linear map), behind one `IrqTicketLock` so every hart and
//! every interrupt handler can use it.
//!
//! Addresses handed out are linear-map virtual addresses
//! (`arch::phys_to_virt`). [`BootPageAllocator`] implements kalloc's
//! `PageAllocator` itself, so a `memdebug::DebugPageAllocator` can wrap it.

use crate::arch::{self, PAGE_SIZE};
use crate::memory::Size;
use crate::sync::IrqTicketLock;
use core::str::FromStr;
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator};
use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{AllocResult, BaseAllocator, PageAllocator};
use log::{info, warn};

/// `pagealloc=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PageAllocatorKind {
    #[default]
    Buddy,
    Bitmap,
}

impl FromStr for PageAllocatorKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "buddy" => Ok(Self::Buddy),
            "bitmap" => Ok(Self::Bitmap),
            _ => Err(()),
        }
    }
}

impl PageAllocatorKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Buddy => "buddy",
            Self::Bitmap => "bitmap",
        }
    }
}

/// The page allocator the boot argument picked.
pub enum BootPageAllocator {
    Buddy(BuddyPageAllocator),
    Bitmap(BitmapPageAllocator),
}

macro_rules! dispatch {
    ($self:expr, $a:ident => $body:expr) => {
        match $self {
            BootPageAllocator::Buddy($a) => $body,
            BootPageAllocator::Bitmap($a) => $body,
        }
    };
}

impl BaseAllocator for BootPageAllocator {
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        dispatch!(self, a => unsafe { a.init(start, size) })
    }

    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        dispatch!(self, a => unsafe { a.add_memory(start, size) })
    }
}

impl PageAllocator for BootPageAllocator {
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        dispatch!(self, a => a.alloc_pages(count, align))
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        dispatch!(self, a => a.alloc_pages_at(addr, count, align))
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        dispatch!(self, a => a.dealloc_pages(addr, count))
    }

    fn total_pages(&self) -> usize {
        dispatch!(self, a => a.total_pages())
    }

    fn used_pages(&self) -> usize {
        dispatch!(self, a => a.used_pages())
    }
}

impl PageStatsSource for BootPageAllocator {
    fn page_stats(&self) -> PageStats {
        dispatch!(self, a => a.page_stats())
    }
}

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
/// the `memdebug=` page layer when it is on, recording the caller).
#[track_caller]
pub fn alloc(count: usize, align: usize) -> AllocResult<usize> {
    alloc_for("pages", count, align)
}

/// [`alloc`] on behalf of `name` (`heap`, `pagetable`, ...), the name
/// fault injection's filter matches (`memory::faults`).
#[track_caller]
pub fn alloc_for(name: &str, count: usize, align: usize) -> AllocResult<usize> {
    debug_assert!(
        !crate::console::held_by_this_hart(),
        "page allocator: allocation for {name} while printing"
    );
    if super::faults::page_alloc_fails(name, count, PAGE_SIZE) {
        return Err(kalloc::AllocError::NoMemory);
    }
    if super::debug::pages_on() {
        return super::debug::alloc_pages(count, align, memdebug::CallSite::caller());
    }
    alloc_plain(count, align)
}

/// The allocation underneath `memdebug`'s page layer: the allocator itself
/// and the statistics.
pub fn alloc_plain(count: usize, align: usize) -> AllocResult<usize> {
    with(|a| {
        let result = a.alloc_pages(count, align);
        super::stats::note_pages(result.is_ok(), a.used_pages());
        result
    })
}

/// Frees `count` pages at `addr`, a block `alloc` returned.
#[track_caller]
pub fn free(addr: usize, count: usize) -> AllocResult {
    if super::debug::pages_on() {
        return super::debug::dealloc_pages(addr, count, memdebug::CallSite::caller());
    }
    free_plain(addr, count)
}

/// The free underneath `memdebug`'s page layer: a bad page in the block
/// is isolated before the lock is released (`memory::badmem`).
pub fn free_plain(addr: usize, count: usize) -> AllocResult {
    with(|a| super::badmem::free_checked(a, addr, count))
        .inspect(|()| super::stats::note_page_free())
}

/// Pages in use and in total.
pub fn usage() -> (usize, usize) {
    with(|a| (a.used_pages(), a.total_pages()))
}

/// Free-memory snapshot.
pub fn stats() -> PageStats {
    with(|a| a.page_stats())
}
