//! Page statistics shared by every page allocator: free blocks per order
//! (the `/proc/buddyinfo` view), the largest free run, and Linux's two
//! fragmentation indices.

/// Orders tracked by [`PageStats`]: `0..ORDERS`. Enough for any block a
/// 64-bit address space can hold.
pub const ORDERS: usize = 64;

/// A snapshot of a page allocator's free memory.
///
/// For the buddy allocator, `free_blocks[k]` is the length of its order-`k`
/// free list, exactly what `/proc/buddyinfo` prints. Allocators without
/// free lists report each maximal free run as the naturally aligned
/// power-of-two blocks a buddy system would hold for it (capped at the
/// order they were told to cap at), so the indices below compare across
/// algorithms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageStats {
    /// Pages under management (metadata excluded).
    pub total_pages: usize,
    /// Pages free.
    pub free_pages: usize,
    /// The longest run of contiguous free pages inside one region.
    pub largest_free_run: usize,
    /// `free_blocks[k]`: free blocks of `2^k` pages.
    pub free_blocks: [usize; ORDERS],
}

/// Something that can describe its free memory as [`PageStats`]; every
/// page allocator of the crate implements it.
pub trait PageStatsSource {
    /// Takes a snapshot. Costs time proportional to the managed memory for
    /// allocators that must scan (see each implementation).
    fn page_stats(&self) -> PageStats;
}

impl PageStats {
    /// Statistics of an allocator with `total_pages` pages and nothing free.
    pub const fn empty(total_pages: usize) -> Self {
        Self {
            total_pages,
            free_pages: 0,
            largest_free_run: 0,
            free_blocks: [0; ORDERS],
        }
    }

    /// The highest order with a free block, if any page is free.
    pub fn highest_free_order(&self) -> Option<usize> {
        self.free_blocks.iter().rposition(|&n| n != 0)
    }

    /// Records the free run of `len` pages starting at page frame `pfn`
    /// as its maximal naturally aligned blocks, none above `max_order`.
    pub fn add_free_run(&mut self, mut pfn: usize, len: usize, max_order: usize) {
        let end = pfn + len;
        self.free_pages += len;
        self.largest_free_run = self.largest_free_run.max(len);
        while pfn < end {
            let align_order = if pfn == 0 {
                usize::BITS
            } else {
                pfn.trailing_zeros()
            };
            let fit_order = (end - pfn).ilog2();
            let order = (align_order.min(fit_order) as usize).min(max_order);
            self.free_blocks[order] += 1;
            pfn += 1 << order;
        }
    }

    /// Gathers `fill_contig_page_info()` of Linux's `mm/vmstat.c`: free
    /// blocks in total, and how many blocks of `2^order` pages the free
    /// blocks could provide.
    fn contig_info(&self, order: usize) -> (u64, u64) {
        let mut total = 0u64;
        let mut suitable = 0u64;
        for (k, &n) in self.free_blocks.iter().enumerate() {
            total += n as u64;
            if k >= order {
                suitable = suitable.saturating_add((n as u64) << (k - order).min(63));
            }
        }
        (total, suitable)
    }

    /// The unusable free space index for allocations of `2^order` pages,
    /// in thousandths (0 = all free memory is usable, 1000 = none is), as
    /// `unusable_free_index()` in Linux's `mm/vmstat.c`
    /// (`/sys/kernel/debug/extfrag/unusable_index`):
    ///
    /// ```text
    /// free_pages == 0 ? 1000
    ///                 : (free_pages - (free_blocks_suitable << order)) * 1000 / free_pages
    /// ```
    /// where `free_blocks_suitable` counts the `2^order`-page blocks the free
    /// blocks of order `>= order` could provide.
    pub fn unusable_free_index(&self, order: usize) -> u32 {
        if self.free_pages == 0 {
            return 1000;
        }
        let free = self.free_pages as u128;
        let (_, suitable) = self.contig_info(order);
        let usable = ((suitable as u128) << order.min(64)).min(free);
        ((free - usable) * 1000 / free) as u32
    }

    /// The external fragmentation index for allocations of `2^order`
    /// pages, in thousandths, as `__fragmentation_index()` in Linux's
    /// `mm/vmstat.c` (`/sys/kernel/debug/extfrag/extfrag_index`):
    ///
    /// ```text
    /// free_blocks_total == 0   ? 0
    /// free_blocks_suitable > 0 ? -1000   (the allocation would succeed)
    /// otherwise                  1000 - (1000 + free_pages * 1000 / 2^order) / free_blocks_total
    /// ```
    /// Towards 0 a failure is due to lack of memory, towards 1000 due to
    /// fragmentation; -1000 means the request can be met.
    pub fn fragmentation_index(&self, order: usize) -> i32 {
        let (total, suitable) = self.contig_info(order);
        if total == 0 {
            return 0;
        }
        if suitable > 0 {
            return -1000;
        }
        let requested = 1u128 << order.min(127);
        let free_scaled = self.free_pages as u128 * 1000 / requested;
        1000 - ((1000 + free_scaled) / total as u128) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_decompose_into_aligned_blocks() {
        let mut s = PageStats::empty(16);
        s.add_free_run(1, 7, 10); // 1, 2-3, 4-7
        assert_eq!(&s.free_blocks[..4], &[1, 1, 1, 0]);
        assert_eq!((s.free_pages, s.largest_free_run), (7, 7));
        s.add_free_run(16, 16, 3); // capped at order 3: two blocks of 8
        assert_eq!(s.free_blocks[3], 2);
        assert_eq!(s.highest_free_order(), Some(3));
    }

    #[test]
    fn indices_match_linux_formulas() {
        // 8 free single pages: order 0 fully usable, order 1 fully unusable.
        let mut s = PageStats::empty(16);
        for pfn in (0..16).step_by(2) {
            s.add_free_run(pfn, 1, 10);
        }
        assert_eq!(s.unusable_free_index(0), 0);
        assert_eq!(s.unusable_free_index(1), 1000);
        assert_eq!(s.fragmentation_index(0), -1000);
        // 1000 - (1000 + 8 * 1000 / 2) / 8 = 1000 - 625 = 375
        assert_eq!(s.fragmentation_index(1), 375);
        // 1000 - (1000 + 8 * 1000 / 8) / 8 = 750
        assert_eq!(s.fragmentation_index(3), 750);
        let none = PageStats::empty(4);
        assert_eq!(none.unusable_free_index(2), 1000);
        assert_eq!(none.fragmentation_index(2), 0);
        // One order-2 block and two single pages: order 2 leaves 2/6 unusable.
        let mut m = PageStats::empty(8);
        m.add_free_run(0, 4, 10);
        m.add_free_run(5, 1, 10);
        m.add_free_run(7, 1, 10);
        assert_eq!(m.unusable_free_index(2), 333);
        assert_eq!(m.unusable_free_index(3), 1000);
    }
}
