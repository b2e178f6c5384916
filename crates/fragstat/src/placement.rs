//! The buddy allocator's metadata under other placement policies: which
//! part of the buddy's failures is the natural alignment of its blocks,
//! and which is its choice among the blocks that fit.
//!
//! [`Placed`] wraps a [`BuddyPageAllocator`] and records every live
//! allocation, so it knows the free runs (the buddy exposes no walk of
//! them). A policy other than the buddy's own picks an address from those
//! runs and takes it with `alloc_pages_at`, which carves the range out of
//! whatever free blocks cover it; freeing goes back through the buddy,
//! which merges as usual. Finding the address costs O(live allocations):
//! an experiment, not an allocator.

use std::collections::BTreeMap;

use kalloc::page::BuddyPageAllocator;
use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{AllocError, AllocResult, BaseAllocator, PageAllocator};

const PAGE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The buddy's own; when it fails, the lowest run of `n` free pages,
    /// wherever it lies.
    BuddyThenFirstFit,
    /// The lowest naturally aligned free block of `2^k` pages, `n` pages
    /// of it taken, the tail left free: the buddy's constraint, with
    /// address-ordered choice instead of the head of a free list.
    LowestAligned,
    /// The lowest run of `2^k` free pages at any alignment, `n` pages of
    /// it taken: the buddy's rounding up without its alignment.
    FirstFitRounded,
    /// The lowest run of `n` free pages: first fit on the buddy's metadata.
    FirstFit,
}

pub struct Placed {
    buddy: BuddyPageAllocator,
    policy: Policy,
    /// Live allocations: start address -> pages.
    live: BTreeMap<usize, usize>,
    /// Requests served by a first-fit fallback.
    pub fallbacks: u64,
    /// Requests of `n` pages placed in a free run shorter than `2^k`:
    /// runs no rule that needs a `2^k` block could have used.
    pub below_block: u64,
}

impl Placed {
    pub fn new(policy: Policy) -> Self {
        Self {
            buddy: BuddyPageAllocator::new(),
            policy,
            live: BTreeMap::new(),
            fallbacks: 0,
            below_block: 0,
        }
    }

    /// The lowest address aligned to `align` pages whose next `window`
    /// pages are all free, and the length in pages of the free run it
    /// lies in.
    fn lowest(&self, window: usize, align: usize) -> Option<(usize, usize)> {
        for region in self.buddy.regions() {
            let mut cursor = region.start;
            let used = self
                .live
                .range(region.clone())
                .map(|(&addr, &pages)| (addr, addr + pages * PAGE))
                .chain([(region.end, region.end)]);
            for (used_start, used_end) in used {
                let start = cursor.next_multiple_of(align * PAGE);
                if start + window * PAGE <= used_start {
                    return Some((start, (used_start - cursor) / PAGE));
                }
                cursor = used_end;
            }
        }
        None
    }

    fn take(&mut self, found: Option<(usize, usize)>, count: usize) -> AllocResult<usize> {
        let (addr, run) = found.ok_or(AllocError::NoMemory)?;
        let addr = self.buddy.alloc_pages_at(addr, count, PAGE)?;
        if run < count.next_power_of_two() {
            self.below_block += 1;
        }
        Ok(addr)
    }
}

impl BaseAllocator for Placed {
    /// # Safety
    /// As for [`BuddyPageAllocator::add_memory`].
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.buddy.add_memory(start, size) }
    }
}

impl PageAllocator for Placed {
    const PAGE_SIZE: usize = PAGE;

    /// Only page alignment is supported (all the churn asks for).
    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        if count == 0 || align > PAGE {
            return Err(AllocError::InvalidParam);
        }
        let block = count.next_power_of_two();
        let addr = match self.policy {
            Policy::BuddyThenFirstFit => match self.buddy.alloc_pages(count, align) {
                Err(AllocError::NoMemory) => {
                    let addr = self.take(self.lowest(count, 1), count)?;
                    self.fallbacks += 1;
                    addr
                }
                other => other?,
            },
            Policy::LowestAligned => self.take(self.lowest(block, block), count)?,
            Policy::FirstFitRounded => self.take(self.lowest(block, 1), count)?,
            Policy::FirstFit => self.take(self.lowest(count, 1), count)?,
        };
        self.live.insert(addr, count);
        Ok(addr)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        let addr = self.buddy.alloc_pages_at(addr, count, align)?;
        self.live.insert(addr, count);
        Ok(addr)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        self.buddy.dealloc_pages(addr, count)?;
        self.live.remove(&addr);
        Ok(())
    }

    fn total_pages(&self) -> usize {
        self.buddy.total_pages()
    }

    fn used_pages(&self) -> usize {
        self.buddy.used_pages()
    }
}

impl PageStatsSource for Placed {
    fn page_stats(&self) -> PageStats {
        self.buddy.page_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::Region;

    /// Fills the allocator with single pages, then frees 48 that straddle
    /// a 64-page boundary: no free aligned block of 32 pages or more.
    /// Returns the pages and the index of the first freed one.
    fn straddle(a: &mut Placed) -> (Vec<usize>, usize) {
        let total = a.total_pages();
        let mut pages: Vec<usize> = (0..total)
            .map(|_| a.alloc_pages(1, PAGE).unwrap())
            .collect();
        pages.sort_unstable();
        let boundary = (pages[0] + 64 * PAGE).next_multiple_of(64 * PAGE);
        let first = (boundary - pages[0]) / PAGE - 24;
        for &page in &pages[first..first + 48] {
            a.dealloc_pages(page, 1).unwrap();
        }
        assert!(a.page_stats().highest_free_order().unwrap() < 5);
        (pages, first)
    }

    fn free_all(a: &mut Placed, pages: &[usize], skip: std::ops::Range<usize>) {
        for (i, &page) in pages.iter().enumerate() {
            if !skip.contains(&i) {
                a.dealloc_pages(page, 1).unwrap();
            }
        }
        assert_eq!(a.used_pages(), 0);
    }

    #[test]
    fn the_fallback_serves_an_unaligned_run_the_buddy_refuses() {
        let region = Region::new(2 << 20);
        let mut a = Placed::new(Policy::BuddyThenFirstFit);
        region.give_to(&mut a);
        let (pages, first) = straddle(&mut a);
        let addr = a.alloc_pages(40, PAGE).unwrap();
        assert_eq!((addr, a.fallbacks), (pages[first], 1));
        assert_eq!(a.alloc_pages(9, PAGE), Err(AllocError::NoMemory));
        a.dealloc_pages(addr, 40).unwrap();
        free_all(&mut a, &pages, first..first + 48);
    }

    #[test]
    fn lowest_aligned_keeps_the_buddy_constraint() {
        let region = Region::new(2 << 20);
        let mut a = Placed::new(Policy::LowestAligned);
        region.give_to(&mut a);
        let (pages, first) = straddle(&mut a);
        // 17 pages need an aligned 32-page block: none.
        assert_eq!(a.alloc_pages(17, PAGE), Err(AllocError::NoMemory));
        // 9 pages take the lowest aligned 16-page block, the tail stays free.
        let addr = a.alloc_pages(9, PAGE).unwrap();
        assert_eq!(addr, pages[first + 8]);
        assert!(addr.is_multiple_of(16 * PAGE));
        a.dealloc_pages(addr, 9).unwrap();
        free_all(&mut a, &pages, first..first + 48);
    }

    #[test]
    fn first_fit_takes_the_lowest_run() {
        let region = Region::new(2 << 20);
        let mut a = Placed::new(Policy::FirstFit);
        region.give_to(&mut a);
        let (pages, first) = straddle(&mut a);
        let addr = a.alloc_pages(48, PAGE).unwrap();
        assert_eq!(addr, pages[first]);
        assert_eq!(a.alloc_pages(1, PAGE), Err(AllocError::NoMemory));
        a.dealloc_pages(addr, 48).unwrap();
        free_all(&mut a, &pages, first..first + 48);
    }
}
