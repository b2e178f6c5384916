//! Occupancy of a bitmap zone's pages as two bitmaps: `used` (one bit per
//! page, set while handed out) and `starts` (set on the first page of each
//! live allocation). Together they let `dealloc_pages` check its arguments
//! exactly before changing anything.

use super::super::bits::{self, RawBits};
use crate::{AllocError, AllocResult};

pub(crate) struct Occupancy {
    pub used: RawBits,
    starts: RawBits,
}

impl Occupancy {
    /// Bytes of storage for `pages` pages.
    pub const fn bytes(pages: usize) -> usize {
        2 * 8 * bits::words_for(pages)
    }

    /// # Safety
    /// `storage` holds `bytes(pages)` zeroed, 8-aligned bytes owned by the
    /// caller's zone for as long as this value is used.
    pub unsafe fn new(storage: *mut u8, pages: usize) -> Self {
        let words = bits::words_for(pages);
        let storage = storage.cast::<u64>();
        // SAFETY: the two halves of `storage`, disjoint, per the contract.
        unsafe {
            Self {
                used: RawBits::new(storage, pages),
                starts: RawBits::new(storage.add(words), pages),
            }
        }
    }

    pub fn pages(&self) -> usize {
        self.used.bits()
    }

    pub fn any_used(&self, page: usize, count: usize) -> bool {
        !bits::none_set(self.used.words(), page, page + count)
    }

    /// Checks that `[page, page + count)` is exactly one live allocation:
    /// `page` starts one, every page up to `page + count` is used with no
    /// other start among them, and the allocation does not go on past.
    #[inline(always)]
    pub fn check_live(&self, page: usize, count: usize) -> AllocResult {
        let used = self.used.words();
        let starts = self.starts.words();
        let first = page / 64;
        // The first word of each bitmap is read once for both checks.
        let (used_first, page_bit) = (used[first], 1 << (page % 64));
        if used_first & page_bit == 0 {
            return Err(AllocError::DoubleFree);
        }
        if starts[first] & page_bit == 0 || count > self.pages() - page {
            return Err(AllocError::NotAllocated);
        }
        // In range now: `end` cannot overflow.
        let end = page + count;
        let last = (end - 1) / 64;
        // Every page used, no start after the first: the start bit is
        // cleared from a copy of its word so one test covers both.
        let (head, tail) = (u64::MAX << (page % 64), u64::MAX >> (63 - (end - 1) % 64));
        let starts_first = starts[first] & !page_bit;
        let bad = if first == last {
            (!used_first | starts_first) & head & tail
        } else {
            let middle = used[first + 1..last]
                .iter()
                .zip(&starts[first + 1..last])
                .fold(0, |bad, (&u, &s)| bad | !u | s);
            ((!used_first | starts_first) & head) | ((!used[last] | starts[last]) & tail) | middle
        };
        if bad != 0 {
            return Err(AllocError::NotAllocated);
        }
        if end < self.pages() && bits::get(used, end) && !bits::get(starts, end) {
            return Err(AllocError::NotAllocated);
        }
        Ok(())
    }

    #[inline(always)]
    pub fn mark_allocated(&mut self, page: usize, count: usize) {
        bits::set_range(self.used.words_mut(), page, page + count);
        bits::set(self.starts.words_mut(), page);
    }

    #[inline(always)]
    pub fn mark_free(&mut self, page: usize, count: usize) {
        bits::clear_range(self.used.words_mut(), page, page + count);
        bits::clear(self.starts.words_mut(), page);
    }

    /// Calls `f(first_page, len)` for every maximal free run.
    pub fn for_each_free_run(&self, mut f: impl FnMut(usize, usize)) {
        let used = self.used.words();
        let mut at = 0;
        while let Some(start) = bits::next_clear(used, at, self.pages()) {
            let end = bits::next_set(used, start, self.pages()).unwrap_or(self.pages());
            f(start, end - start);
            at = end;
        }
    }
}
