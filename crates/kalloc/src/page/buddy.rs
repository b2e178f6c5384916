//! The buddy system page allocator, the default: per-order free lists,
//! split on allocation, merge with the buddy on free, occupancy in bitmaps
//! (per-order free blocks, live allocation starts).
//! See `docs/page-allocators.md` for the data structures drawn out.

mod lists;

use core::ops::Range;

use self::lists::{BuddyMeta, ORDER_SLOTS, aligned_blocks, aligned_blocks_rev};
use super::zoned::ZonedPages;
use super::{DEFAULT_PAGE_SIZE, check_align};
use crate::stats::{PageStats, PageStatsSource};
use crate::{AllocError, AllocResult, BaseAllocator, PageAllocator};

/// The default largest order: blocks of `2^18` pages, 1 GiB with 4 KiB pages.
pub const DEFAULT_MAX_ORDER: usize = 18;

/// A buddy system allocator of `PAGE_SIZE`-byte pages with blocks of up
/// to `2^MAX_ORDER` pages (`MAX_ORDER <= 31`).
///
/// - Allocation takes the smallest non-empty free list of a large enough
///   order and splits: O(`MAX_ORDER`). A count that is not a power of two
///   takes the covering block and gives the tail back at once (like Linux's
///   `alloc_pages_exact`), so `alloc_pages(3, _)` costs 3 pages.
/// - Freeing merges with the buddy while it is free; whether it is free is
///   one bit test in a per-order bitmap and its removal from its list is
///   O(1) (doubly linked): O(`MAX_ORDER`) per freed block. The arguments
///   are checked in O(1) against the live allocation's recorded start and
///   length (O(`MAX_ORDER`) more on the error path, to tell a double free).
/// - Each region handed to [`add_memory`](BaseAllocator::add_memory) becomes
///   a zone cut into maximal naturally aligned blocks; its metadata (about
///   `2 * size_of::<usize>()` bytes and 3 bits per page, ~0.4% with 4 KiB pages,
///   at least one page) is taken from the start of the region.
///   Blocks are aligned on absolute addresses, so alignment requests up to
///   `PAGE_SIZE << MAX_ORDER` are met.
///
/// Errors: `count == 0`, a bad alignment, an alignment above the largest
/// block or a count above `2^MAX_ORDER` are `InvalidParam`. `dealloc_pages`
/// returns `OutOfRange` for an address outside every region, `DoubleFree`
/// if the page at `addr` is free, `NotAllocated` if it is not the first page
/// of a live allocation of exactly `count` pages; on error nothing changes.
/// The allocator never reads or writes the pages it manages, only its
/// metadata.
pub struct BuddyPageAllocator<
    const PAGE_SIZE: usize = DEFAULT_PAGE_SIZE,
    const MAX_ORDER: usize = DEFAULT_MAX_ORDER,
> {
    pages: ZonedPages<BuddyMeta>,
}

// SAFETY: the zones are memory the allocator owns exclusively (the
// `add_memory` contract); nothing in them is tied to a thread.
unsafe impl<const P: usize, const M: usize> Send for BuddyPageAllocator<P, M> {}

impl BuddyPageAllocator {
    /// An empty allocator of 4 KiB pages with blocks up to 1 GiB.
    pub const fn new() -> Self {
        Self::with_config()
    }
}

impl Default for BuddyPageAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl<const PAGE_SIZE: usize, const MAX_ORDER: usize> BuddyPageAllocator<PAGE_SIZE, MAX_ORDER> {
    /// An empty allocator with this page size and largest order.
    pub const fn with_config() -> Self {
        const {
            assert!(PAGE_SIZE.is_power_of_two() && PAGE_SIZE >= 64);
            assert!(MAX_ORDER < ORDER_SLOTS);
        }
        Self {
            pages: ZonedPages::new(),
        }
    }

    /// The largest order: blocks of `2^MAX_ORDER` pages.
    pub const fn max_order(&self) -> usize {
        MAX_ORDER
    }

    /// The managed byte ranges, one per region, in address order (each
    /// region minus its metadata and unaligned edges).
    pub fn regions(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.pages.regions(PAGE_SIZE)
    }

    /// Free blocks of `2^order` pages across all regions (a `buddyinfo`
    /// column), in O(regions).
    pub fn free_blocks(&self, order: usize) -> usize {
        if order > MAX_ORDER {
            return 0;
        }
        self.pages.zones.iter().map(|z| z.meta.nr_free[order]).sum()
    }

    /// The order that serves `count` pages at `align` bytes.
    fn order_for(count: usize, align: usize) -> AllocResult<usize> {
        let align_order = check_align(align, PAGE_SIZE)?;
        if count == 0 || count > 1 << MAX_ORDER || align_order > MAX_ORDER {
            return Err(AllocError::InvalidParam);
        }
        Ok((count.next_power_of_two().trailing_zeros() as usize).max(align_order))
    }
}

impl<const PAGE_SIZE: usize, const MAX_ORDER: usize> BaseAllocator
    for BuddyPageAllocator<PAGE_SIZE, MAX_ORDER>
{
    /// # Safety
    /// As for [`BaseAllocator::add_memory`]; `start` must also carry exposed
    /// provenance (`ptr.expose_provenance()`), since the metadata is
    /// written through it.
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        let zone = unsafe { self.pages.add(start, size, PAGE_SIZE)? };
        // Pushed top down so the lists hand out low addresses first.
        for (pfn, order) in aligned_blocks_rev(zone.base_pfn, zone.end_pfn(), MAX_ORDER) {
            zone.push(pfn, order);
        }
        Ok(())
    }
}

impl<const PAGE_SIZE: usize, const MAX_ORDER: usize> PageAllocator
    for BuddyPageAllocator<PAGE_SIZE, MAX_ORDER>
{
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        let need = Self::order_for(count, align)?;
        let wanted = u32::MAX << need;
        let pfn = self
            .pages
            .zones
            .find_map_mut(|zone| {
                let fit = zone.meta.nonempty & wanted;
                if fit == 0 {
                    return None;
                }
                let mut order = fit.trailing_zeros() as usize;
                let pfn = zone.pop(order);
                while order > need {
                    order -= 1;
                    zone.push(pfn + (1 << order), order);
                }
                // The tail's blocks have their buddies below them, inside
                // the allocation or the tail itself: no merge is possible.
                for (tail, order) in aligned_blocks(pfn + count, pfn + (1 << need), MAX_ORDER) {
                    zone.push(tail, order);
                }
                zone.meta.mark_live(pfn - zone.base_pfn, count);
                Some(pfn)
            })
            .ok_or(AllocError::NoMemory)?;
        self.pages.used_pages += count;
        Ok(pfn * PAGE_SIZE)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        let (zone, page) = self.pages.fixed_target(addr, count, align, PAGE_SIZE)?;
        let first = zone.base_pfn + page;
        let end = first + count;
        // Check first, change after: every page must lie in a free block.
        let mut pfn = first;
        while pfn < end {
            let (head, order) = zone
                .free_block_containing(pfn, MAX_ORDER)
                .ok_or(AllocError::NoMemory)?;
            pfn = head + (1 << order);
        }
        let mut pfn = first;
        while pfn < end {
            let (head, order) = zone
                .free_block_containing(pfn, MAX_ORDER)
                .expect("a free page lies in exactly one free block");
            zone.unlink(head, order);
            let block_end = head + (1 << order);
            // Leftovers of one free block: their buddies are inside the
            // block, taken or leftover of another order, so no merging.
            for (left, o) in aligned_blocks(head, first.max(head), MAX_ORDER) {
                zone.push(left, o);
            }
            for (right, o) in aligned_blocks(end.min(block_end), block_end, MAX_ORDER) {
                zone.push(right, o);
            }
            pfn = block_end;
        }
        zone.meta.mark_live(page, count);
        self.pages.used_pages += count;
        Ok(addr)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        let (zone, page) = self.pages.free_target(addr, count, PAGE_SIZE)?;
        let pfn = zone.base_pfn + page;
        match zone.meta.live_length(page) {
            Some(length) if length == count => {}
            None if zone.free_block_containing(pfn, MAX_ORDER).is_some() => {
                return Err(AllocError::DoubleFree);
            }
            _ => return Err(AllocError::NotAllocated),
        }
        zone.meta.clear_live(page);
        if count.is_power_of_two() && pfn.trailing_zeros() >= count.trailing_zeros() {
            zone.free_block(pfn, count.trailing_zeros() as usize, MAX_ORDER);
        } else {
            for (block, order) in aligned_blocks(pfn, pfn + count, MAX_ORDER) {
                zone.free_block(block, order, MAX_ORDER);
            }
        }
        self.pages.used_pages -= count;
        Ok(())
    }

    fn total_pages(&self) -> usize {
        self.pages.total_pages
    }

    fn used_pages(&self) -> usize {
        self.pages.used_pages
    }
}

impl<const PAGE_SIZE: usize, const MAX_ORDER: usize> PageStatsSource
    for BuddyPageAllocator<PAGE_SIZE, MAX_ORDER>
{
    /// Free lists per order are exact counters (O(orders)); the largest
    /// free run needs a walk over every block (O(blocks * `MAX_ORDER`)).
    fn page_stats(&self) -> PageStats {
        let mut stats = PageStats::empty(self.pages.total_pages);
        stats.free_pages = self.pages.total_pages - self.pages.used_pages;
        for zone in self.pages.zones.iter() {
            for (order, &n) in zone.meta.nr_free[..=MAX_ORDER].iter().enumerate() {
                stats.free_blocks[order] += n;
            }
            zone.for_each_free_run(MAX_ORDER, |_, len| {
                stats.largest_free_run = stats.largest_free_run.max(len);
            });
        }
        stats
    }
}
