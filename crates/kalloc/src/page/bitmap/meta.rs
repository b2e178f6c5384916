//! A bitmap zone's metadata: the page bits, their two summaries and the
//! search hints, and how an allocation or a free keeps them consistent.

use super::super::bits;
use super::super::zone::ZoneMeta;
use super::super::zoned::FirstFit;
use super::occupancy::Occupancy;
use super::summary::Summary;
use crate::AllocResult;

/// Size classes with a search hint: counts `2^k..2^(k+1)` for `k < 15`,
/// and `2^15` or more.
pub(super) const HINT_CLASSES: usize = 16;

/// The hint class of a request for `count` pages.
pub(super) fn hint_class(count: usize) -> usize {
    (count.ilog2() as usize).min(HINT_CLASSES - 1)
}

/// A bitmap zone's metadata.
///
/// ```text
/// partly_free[L] .. [1]: bit w of level 1 = used word w has a clear bit
/// wholly_free[L] .. [1]: bit w of level 1 = used word w is zero
/// used (L0):             bit p = page p handed out (padding past the end set)
/// starts:                bit p = page p starts a live allocation
/// ```
pub(crate) struct BitmapMeta {
    pub(super) occ: Occupancy,
    pub(super) partly_free: Summary,
    pub(super) wholly_free: Summary,
    /// `hints[k]`: no page below it lies in a free run of `2^k` pages or
    /// more, so searches for at least `2^k` pages start there (the last
    /// class serves every larger count). Never decreasing in `k` (a bound
    /// for a class holds for every larger one), which lets a search start
    /// at its own class's hint and a free stop at the first class it need
    /// not lower.
    pub(super) hints: [usize; HINT_CLASSES],
}

impl ZoneMeta for BitmapMeta {
    fn trailing_bytes(pages: usize) -> usize {
        Occupancy::bytes(pages) + 2 * Summary::bytes(bits::words_for(pages))
    }

    unsafe fn new(trailing: *mut u8, _base_pfn: usize, pages: usize) -> Self {
        let words = bits::words_for(pages);
        // SAFETY: the occupancy and both summaries are consecutive, disjoint
        // and take exactly `trailing_bytes(pages)` bytes.
        let (mut occ, partly_free, wholly_free) = unsafe {
            let occ = Occupancy::new(trailing, pages);
            let mut cursor = trailing.add(Occupancy::bytes(pages)).cast::<u64>();
            let partly = Summary::new(&mut cursor, words);
            let wholly = Summary::new(&mut cursor, words);
            (occ, partly, wholly)
        };
        // Every page starts out used, padding past the last page for good,
        // so both summaries are right as zeroed: no word has a free bit.
        bits::set_range(occ.used.words_mut(), 0, words * 64);
        Self {
            occ,
            partly_free,
            wholly_free,
            hints: [0; HINT_CLASSES],
        }
    }
}

impl FirstFit for BitmapMeta {
    #[inline(always)]
    fn find(&mut self, base_pfn: usize, count: usize, align_pages: usize) -> Option<usize> {
        self.first_fit(base_pfn, count, align_pages)
    }

    fn all_free(&self, page: usize, count: usize) -> bool {
        !self.occ.any_used(page, count)
    }

    #[inline(always)]
    fn allocate(&mut self, page: usize, count: usize) {
        let (first, last) = (page / 64, (page + count - 1) / 64);
        let old_first = self.occ.used.words()[first];
        self.occ.mark_allocated(page, count);
        let used = self.occ.used.words();
        if first == last {
            // Within one word: a summary bit changes only if the word
            // filled up or stopped being empty, usually neither.
            if used[first] == u64::MAX {
                self.partly_free.set(first, false);
            }
            if old_first == 0 {
                self.wholly_free.set(first, false);
            }
            return;
        }
        // Every word of the span now holds a used page, so none is wholly
        // free; the inner ones are full, an edge word may still have room.
        // Both summaries are rewritten over the span (`Summary::set_span`).
        let (first_open, last_open) = (used[first] != u64::MAX, used[last] != u64::MAX);
        self.partly_free
            .set_span(first, last, first_open, false, last_open);
        self.wholly_free.set_span(first, last, false, false, false);
    }

    #[inline(always)]
    fn check_live(&self, page: usize, count: usize) -> AllocResult {
        self.occ.check_live(page, count)
    }

    #[inline(always)]
    fn release(&mut self, page: usize, count: usize) {
        let (first, last) = (page / 64, (page + count - 1) / 64);
        let old_first = self.occ.used.words()[first];
        self.occ.mark_free(page, count);
        self.lower_hints(page, count);
        if first == last {
            // As in `allocate`: only where the word's predicates flip.
            if old_first == u64::MAX {
                self.partly_free.set(first, true);
            }
            if self.occ.used.words()[first] == 0 {
                self.wholly_free.set(first, true);
            }
            return;
        }
        let used = self.occ.used.words();
        // As in `allocate`, over several words: every word of the span
        // now has a free page, the inner ones are empty, an edge word may
        // still hold used ones.
        let (first_empty, last_empty) = (used[first] == 0, used[last] == 0);
        self.partly_free.set_span(first, last, true, true, true);
        self.wholly_free
            .set_span(first, last, first_empty, true, last_empty);
    }

    fn for_each_free_run(&self, f: impl FnMut(usize, usize)) {
        self.occ.for_each_free_run(f);
    }
}

/// Words `release` looks at on each side of a freed range to measure the
/// run it joins; past that the run is treated as long.
const RUN_PROBE_WORDS: usize = 8;

impl BitmapMeta {
    /// Raises the hint of `class` to `to`, a bound the search just proved
    /// (so valid for every larger class too), and those of the larger
    /// classes below it, keeping the hints non-decreasing.
    #[inline(always)]
    pub(super) fn raise_hint(&mut self, class: usize, to: usize) {
        for hint in &mut self.hints[class..] {
            if *hint >= to {
                return;
            }
            *hint = to;
        }
    }

    /// After pages `[page, page + count)` were freed: lowers the hints of
    /// the classes that may now find a fit below their hint. Lowering
    /// keeps them non-decreasing: classes up to some `top` all get the
    /// same bound (or, for a run reaching far below, bounds that fall
    /// with the class, evened out to their running minimum from the top).
    #[inline(always)]
    fn lower_hints(&mut self, page: usize, count: usize) {
        let used = self.occ.used.words();
        let pages = self.occ.pages();
        let Some(below) = free_below(used, page, RUN_PROBE_WORDS) else {
            // A run reaching far below: the run now holding `page` starts
            // less than `2^k` pages below it, or its part below `page` was
            // already a run of `2^k` above the hint. The bound of a class
            // also serves the smaller ones (a lower hint is always valid).
            let mut bound = usize::MAX;
            for k in (0..HINT_CLASSES).rev() {
                bound = bound.min(page.saturating_sub((1 << k) - 1));
                self.hints[k] = self.hints[k].min(bound);
            }
            return;
        };
        // The freed pages joined the run starting at `start`, the only run
        // that changed: a class may now find a fit below its hint only if
        // the run is long enough for it. Of a run reaching far above, its
        // length is not measured, and every class is lowered (a hint may
        // always be lowered: it is a lower bound).
        let start = page - below;
        let top = free_from(used, page + count, pages, RUN_PROBE_WORDS)
            .map_or(HINT_CLASSES - 1, |above| hint_class(below + count + above));
        // Non-decreasing hints: once one is at or below `start`, so are
        // all the smaller classes'.
        for hint in self.hints[..=top].iter_mut().rev() {
            if *hint <= start {
                return;
            }
            *hint = start;
        }
    }
}

/// Free pages directly below page `end`, if fewer than `limit` words hold
/// them and the used page that ends them.
#[inline(always)]
fn free_below(used: &[u64], mut end: usize, limit: usize) -> Option<usize> {
    let start = end;
    for _ in 0..limit {
        if end == 0 {
            return Some(start);
        }
        let w = (end - 1) / 64;
        let below = end - w * 64;
        let mask = if below == 64 {
            u64::MAX
        } else {
            (1 << below) - 1
        };
        let taken = used[w] & mask;
        if taken != 0 {
            let last_used = w * 64 + 63 - taken.leading_zeros() as usize;
            return Some(start - last_used - 1);
        }
        end = w * 64;
    }
    None
}

/// Free pages from page `start` up (at most to `pages`), if fewer than
/// `limit` words hold them and the used page that ends them.
#[inline(always)]
fn free_from(used: &[u64], start: usize, pages: usize, limit: usize) -> Option<usize> {
    let mut at = start;
    for _ in 0..limit {
        if at >= pages {
            return Some(pages - start);
        }
        let w = at / 64;
        let taken = used[w] & (u64::MAX << (at % 64));
        if taken != 0 {
            let first_used = w * 64 + taken.trailing_zeros() as usize;
            return Some(first_used.min(pages) - start);
        }
        at = (w + 1) * 64;
    }
    None
}
