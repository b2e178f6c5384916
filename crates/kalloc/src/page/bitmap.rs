//! The bitmap page allocator (the ArceOS-style alternative): one bit per
//! page plus summary levels, so a first-fit search for N free pages with an
//! alignment skips fully used stretches 64, 4096, 262144... pages at a time.
//!
//! This file is the public type: each request is checked and counted by
//! [`ZonedPages`] and decided by the zone's [`BitmapMeta`] through the
//! [`FirstFit`](super::zoned::FirstFit) trait. `meta` holds a zone's
//! bitmaps and keeps them consistent, `summary` the summary levels,
//! `search` the first-fit search, `occupancy` the page and start bits with
//! the exact checks of `dealloc_pages`.

mod meta;
mod occupancy;
mod search;
mod summary;

use core::ops::Range;

use self::meta::BitmapMeta;
use super::DEFAULT_PAGE_SIZE;
use super::zoned::ZonedPages;
use crate::stats::{PageStats, PageStatsSource};
use crate::{AllocResult, BaseAllocator, PageAllocator};

/// A first-fit bitmap allocator of `PAGE_SIZE`-byte pages with summary
/// levels (no capacity limit: each region's bitmaps are sized to it and
/// stored at its start, about 2.05 bits of metadata per page).
///
/// Allocation finds the next free page (or, for 128 pages or more, the next
/// wholly free word) through the summaries in O(levels), starting at a
/// per-size-class hint, then checks the run word by word; any alignment is
/// honoured (one that no page can meet is `NoMemory`). Errors are those of
/// [`BuddyPageAllocator`](super::BuddyPageAllocator), except that counts
/// and alignments of any size are valid requests.
pub struct BitmapPageAllocator<const PAGE_SIZE: usize = DEFAULT_PAGE_SIZE> {
    pages: ZonedPages<BitmapMeta>,
}

// SAFETY: the zones are memory the allocator owns exclusively (the
// `add_memory` contract); nothing in them is tied to a thread.
unsafe impl<const P: usize> Send for BitmapPageAllocator<P> {}

impl BitmapPageAllocator {
    /// An empty allocator of 4 KiB pages.
    pub const fn new() -> Self {
        Self::with_page_size()
    }
}

impl Default for BitmapPageAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl<const PAGE_SIZE: usize> BitmapPageAllocator<PAGE_SIZE> {
    /// An empty allocator of `PAGE_SIZE`-byte pages.
    pub const fn with_page_size() -> Self {
        const { assert!(PAGE_SIZE.is_power_of_two() && PAGE_SIZE >= 64) };
        Self {
            pages: ZonedPages::new(),
        }
    }

    /// The managed byte ranges, one per region, in address order (each
    /// region minus its metadata and unaligned edges).
    pub fn regions(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.pages.regions(PAGE_SIZE)
    }
}

impl<const PAGE_SIZE: usize> BaseAllocator for BitmapPageAllocator<PAGE_SIZE> {
    /// # Safety
    /// As for [`BaseAllocator::add_memory`]; `start` must also carry exposed
    /// provenance (`ptr.expose_provenance()`), since the metadata is
    /// written through it.
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.pages.add_free(start, size, PAGE_SIZE) }
    }
}

impl<const PAGE_SIZE: usize> PageAllocator for BitmapPageAllocator<PAGE_SIZE> {
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        self.pages.alloc_first_fit(count, align, PAGE_SIZE)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        self.pages.alloc_fixed(addr, count, align, PAGE_SIZE)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        self.pages.dealloc(addr, count, PAGE_SIZE)
    }

    fn total_pages(&self) -> usize {
        self.pages.total_pages
    }

    fn used_pages(&self) -> usize {
        self.pages.used_pages
    }
}

impl<const PAGE_SIZE: usize> PageStatsSource for BitmapPageAllocator<PAGE_SIZE> {
    /// Walks each zone's free runs and reports each as the maximal aligned
    /// blocks a buddy would hold.
    fn page_stats(&self) -> PageStats {
        self.pages.page_stats()
    }
}
