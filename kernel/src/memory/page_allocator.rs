//! The algorithms the page allocator can run (`pagealloc=buddy|bitmap`),
//! behind one type that implements kalloc's `PageAllocator` itself, so a
//! `memdebug::DebugPageAllocator` (and the bad-page filter) can wrap it.

use crate::arch::PAGE_SIZE;
use core::str::FromStr;
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator};
use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{AllocResult, BaseAllocator, PageAllocator};

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
