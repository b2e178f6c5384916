//! The bitmap page allocator (the ArceOS-style alternative): one bit per
//! page plus summary levels, so a first-fit search for N free pages with an
//! alignment skips fully used stretches 64, 4096, 262144... pages at a time.

use core::ops::Range;

use super::bits::{self, RawBits};
use super::occupancy::Occupancy;
use super::zone::{Zone, ZoneList, ZoneMeta};
use super::{DEFAULT_PAGE_SIZE, check_align};
use crate::stats::{ORDERS, PageStats, PageStatsSource};
use crate::{AllocError, AllocResult, BaseAllocator, PageAllocator};

/// Summary levels above the page bits; 64^11 words cover any address space.
const MAX_LEVELS: usize = 11;

/// Runs at least this long always contain a whole free bitmap word.
const LARGE_RUN: usize = 128;

/// A hierarchy of "any bit set below" levels over the words of a base
/// bitmap: level 1 holds one bit per base word (a predicate of the word),
/// level `l + 1` one bit per level-`l` word (the word is non-zero). The top
/// level is one word, so finding the next marked base word is O(levels).
struct Summary {
    /// `levels[0]` is unused; levels `1..=count`.
    levels: [RawBits; MAX_LEVELS + 1],
    count: usize,
}

/// Bits of each summary level over `base_words` words; the last is one word.
fn level_sizes(base_words: usize) -> impl Iterator<Item = usize> {
    let mut below = base_words;
    let mut done = false;
    core::iter::from_fn(move || {
        if done {
            return None;
        }
        let size = below;
        below = bits::words_for(below);
        done = size <= 64;
        Some(size)
    })
}

impl Summary {
    fn bytes(base_words: usize) -> usize {
        8 * level_sizes(base_words).map(bits::words_for).sum::<usize>()
    }

    /// # Safety
    /// `*cursor` points to `bytes(base_words)` zeroed bytes owned by the
    /// zone; it is advanced past them.
    unsafe fn new(cursor: &mut *mut u64, base_words: usize) -> Self {
        let mut levels = [RawBits::EMPTY; MAX_LEVELS + 1];
        let mut count = 0;
        for size in level_sizes(base_words) {
            count += 1;
            // SAFETY: consecutive pieces of the caller's storage.
            unsafe {
                levels[count] = RawBits::new(*cursor, size);
                *cursor = cursor.add(bits::words_for(size));
            }
        }
        Self { levels, count }
    }

    /// Recomputes the bits above base words `first..=last`, level by
    /// level, stopping at the first level where no bit changed.
    fn update(&mut self, first: usize, last: usize, marked: impl Fn(usize) -> bool) {
        let mut level = self.levels[1];
        if !set_bits_from(level.words_mut(), first, last, marked) {
            return;
        }
        let (mut first, mut last) = (first, last);
        for l in 2..=self.count {
            first /= 64;
            last /= 64;
            // Copies of the handles: the two levels are disjoint storage.
            let below = self.levels[l - 1];
            let mut above = self.levels[l];
            let below = below.words();
            if !set_bits_from(above.words_mut(), first, last, |w| below[w] != 0) {
                return;
            }
        }
    }

    /// The first set bit at or after `from` in `level`.
    fn next_in(&self, level: usize, from: usize) -> Option<usize> {
        if level > self.count || from >= self.levels[level].bits() {
            return None;
        }
        let words = self.levels[level].words();
        let w = from / 64;
        let here = words[w] & (u64::MAX << (from % 64));
        if here != 0 {
            return Some(w * 64 + here.trailing_zeros() as usize);
        }
        let w = self.next_in(level + 1, w + 1)?;
        Some(w * 64 + words[w].trailing_zeros() as usize)
    }

    /// The first marked base word at or after `from`.
    fn next(&self, from: usize) -> Option<usize> {
        self.next_in(1, from)
    }
}

/// Sets bit `w` of `words` to `marked(w)` for `w` in `first..=last`, a
/// word at a time; returns whether any bit changed.
fn set_bits_from(
    words: &mut [u64],
    first: usize,
    last: usize,
    marked: impl Fn(usize) -> bool,
) -> bool {
    let mut changed = false;
    let mut w = first;
    while w <= last {
        let word = w / 64;
        let top = last.min(word * 64 + 63);
        let (mut value, mut mask) = (0u64, 0u64);
        for bit in w..=top {
            value |= u64::from(marked(bit)) << (bit % 64);
            mask |= 1 << (bit % 64);
        }
        let old = words[word];
        words[word] = (old & !mask) | value;
        changed |= words[word] != old;
        w = top + 1;
    }
    changed
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
    occ: Occupancy,
    partly_free: Summary,
    wholly_free: Summary,
    /// `hints[k]`: no page below it lies in a free run of `2^k` pages or
    /// more, so searches for at least `2^k` pages start there (the last
    /// class serves every larger count).
    hints: [usize; HINT_CLASSES],
}

/// Size classes with a search hint: counts `2^k..2^(k+1)` for `k < 15`,
/// and `2^15` or more.
const HINT_CLASSES: usize = 16;

fn hint_class(count: usize) -> usize {
    (count.ilog2() as usize).min(HINT_CLASSES - 1)
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
        // Padding past the last page counts as used so summaries ignore it.
        bits::set_range(occ.used.words_mut(), 0, words * 64);
        let mut meta = Self {
            occ,
            partly_free,
            wholly_free,
            hints: [0; HINT_CLASSES],
        };
        meta.refresh(0, words - 1);
        meta
    }
}

impl BitmapMeta {
    /// Recomputes both summaries above used words `first..=last`.
    fn refresh(&mut self, first: usize, last: usize) {
        let used = self.occ.used.words();
        self.partly_free
            .update(first, last, |w| used[w] != u64::MAX);
        self.wholly_free.update(first, last, |w| used[w] == 0);
    }

    /// The start of the first free run at or after `from` that contains a
    /// wholly free word (every run of `LARGE_RUN` pages does).
    fn next_large_run(&self, from: usize) -> Option<usize> {
        let w = self.wholly_free.next(from.div_ceil(64))?;
        // The word before is not wholly free (or is before `from`, and then
        // holds the used page that ended the previous candidate).
        let free_below = match w {
            0 => 0,
            _ => self.occ.used.words()[w - 1].leading_zeros() as usize,
        };
        Some((w * 64 - free_below).max(from))
    }

    /// First fit for fewer than `LARGE_RUN` pages: walks the maximal free
    /// runs from the hint of `count`'s class a word at a time (a run is a
    /// couple of bit operations, fully used words are skipped through
    /// `partly_free`) and returns the first whose aligned start fits.
    /// Moves the hint past the runs it proves shorter than the class.
    fn find_small(&mut self, base_pfn: usize, count: usize, align_pages: usize) -> Option<usize> {
        let pages = self.occ.pages();
        let class = hint_class(count);
        let from = self.hints[class];
        if from >= pages {
            return None;
        }
        let used = self.occ.used.words();
        let mut hint = Some(from);
        let mut w = from / 64;
        let mut free = !used[w] & (u64::MAX << (from % 64));
        // The start of a free run that reaches the bottom of word `w`.
        let mut open: Option<usize> = None;
        // `Ok(start)`, or `Err(true)` once every run above the hint was
        // seen, `Err(false)` if no aligned start exists any more.
        let found = 'scan: loop {
            if open.is_none() && free == 0 {
                match self.partly_free.next(w + 1) {
                    Some(next) => w = next,
                    None => break 'scan Err(true),
                }
                free = !used[w];
                continue;
            }
            loop {
                let run_start = match open {
                    Some(start) => start,
                    None if free == 0 => break,
                    None => w * 64 + free.trailing_zeros() as usize,
                };
                // Used bits of word `w` at or after the run's start in it.
                let after = if open.is_some() { 0 } else { run_start % 64 };
                let used_after = !free & (u64::MAX << after);
                let word_end = (w + 1) * 64;
                let run_end = if used_after == 0 {
                    word_end.min(pages)
                } else {
                    w * 64 + used_after.trailing_zeros() as usize
                };
                let Some(start) = (base_pfn + run_start).checked_next_multiple_of(align_pages)
                else {
                    break 'scan Err(false);
                };
                let start = start - base_pfn;
                if start <= run_end && count <= run_end - start {
                    break 'scan Ok(start);
                }
                if used_after == 0 && run_end < pages {
                    // The run goes on into the next word.
                    open = Some(run_start);
                    break;
                }
                open = None;
                if hint.is_some() && start == run_start && run_end - run_start < 1 << class {
                    hint = Some(run_end);
                } else {
                    hint = None;
                }
                if run_end >= word_end.min(pages) {
                    break;
                }
                free &= u64::MAX << (run_end % 64);
            }
            w += 1;
            if w * 64 >= pages {
                break 'scan Err(true);
            }
            free = !used[w];
        };
        if let Some(hint) = hint {
            self.hints[class] = if found == Err(true) { pages } else { hint };
        }
        found.ok()
    }

    /// First fit: the lowest page index of `count` free pages whose frame
    /// (`base_pfn` + index) is a multiple of `align_pages`. Moves the hint
    /// of `count`'s class past the runs it proves too short for the class.
    fn find(&mut self, base_pfn: usize, count: usize, align_pages: usize) -> Option<usize> {
        if count < LARGE_RUN {
            return self.find_small(base_pfn, count, align_pages);
        }
        let pages = self.occ.pages();
        let class = hint_class(count);
        let mut from = self.hints[class];
        // Whether every run between the hint and `from` is below the class.
        let mut hint_follows = true;
        loop {
            let Some(free) = self.next_large_run(from) else {
                if hint_follows {
                    self.hints[class] = pages;
                }
                return None;
            };
            let start = (base_pfn + free).checked_next_multiple_of(align_pages)? - base_pfn;
            if start >= pages || count > pages - start {
                return None;
            }
            match bits::next_set(self.occ.used.words(), start, start + count) {
                None => return Some(start),
                Some(used) => {
                    hint_follows &= start == free && used - free < 1 << class;
                    if hint_follows {
                        self.hints[class] = used + 1;
                    }
                    from = used + 1;
                }
            }
        }
    }

    fn allocate(&mut self, page: usize, count: usize) {
        self.occ.mark_allocated(page, count);
        self.refresh(page / 64, (page + count - 1) / 64);
    }

    fn release(&mut self, page: usize, count: usize) {
        self.occ.mark_free(page, count);
        let used = self.occ.used.words();
        let pages = self.occ.pages();
        match (
            free_below(used, page, RUN_PROBE_WORDS),
            free_from(used, page + count, pages, RUN_PROBE_WORDS),
        ) {
            // The freed pages joined the run `[page - below, ..)` of `len`
            // pages, the only run that changed: only the classes it is long
            // enough for may now find a fit below their hint.
            (Some(below), Some(above)) => {
                let len = below + count + above;
                for (k, hint) in self.hints.iter_mut().enumerate() {
                    if len >= 1 << k {
                        *hint = (*hint).min(page - below);
                    }
                }
            }
            // A long run: the run now holding `page` starts less than `2^k`
            // pages below it, or its part below `page` was already a run of
            // `2^k` above the hint.
            _ => {
                for (k, hint) in self.hints.iter_mut().enumerate() {
                    *hint = (*hint).min(page.saturating_sub((1 << k) - 1));
                }
            }
        }
        self.refresh(page / 64, (page + count - 1) / 64);
    }
}

/// Words `release` looks at on each side of a freed range to measure the
/// run it joins; past that the run is treated as long.
const RUN_PROBE_WORDS: usize = 4;

/// Free pages directly below page `end`, if fewer than `limit` words hold
/// them and the used page that ends them.
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
    zones: ZoneList<BitmapMeta>,
    total_pages: usize,
    used_pages: usize,
}

// SAFETY: the zones are memory the allocator owns exclusively.
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
            zones: ZoneList::new(),
            total_pages: 0,
            used_pages: 0,
        }
    }

    /// The managed byte ranges, one per region, in address order.
    pub fn regions(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.zones
            .iter()
            .map(|z| z.base_pfn * PAGE_SIZE..z.end_pfn() * PAGE_SIZE)
    }
}

impl<const PAGE_SIZE: usize> BaseAllocator for BitmapPageAllocator<PAGE_SIZE> {
    /// # Safety
    /// As for [`BaseAllocator::add_memory`].
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.add_memory(start, size) }
    }

    /// # Safety
    /// As for [`BaseAllocator::add_memory`]; `start` must carry exposed
    /// provenance, since the metadata is written through it.
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        let zone = unsafe { self.zones.add(start, size, PAGE_SIZE)? };
        zone.meta.release(0, zone.pages);
        self.total_pages += zone.pages;
        Ok(())
    }
}

impl<const PAGE_SIZE: usize> PageAllocator for BitmapPageAllocator<PAGE_SIZE> {
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        let align_order = check_align::<PAGE_SIZE>(align)?;
        if count == 0 {
            return Err(AllocError::InvalidParam);
        }
        let align_pages = 1 << align_order;
        let pfn = self
            .zones
            .find_map_mut(|zone: &mut Zone<BitmapMeta>| {
                let page = zone.meta.find(zone.base_pfn, count, align_pages)?;
                zone.meta.allocate(page, count);
                Some(zone.base_pfn + page)
            })
            .ok_or(AllocError::NoMemory)?;
        self.used_pages += count;
        Ok(pfn * PAGE_SIZE)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        check_align::<PAGE_SIZE>(align)?;
        if count == 0 || !addr.is_multiple_of(align.max(PAGE_SIZE)) {
            return Err(AllocError::InvalidParam);
        }
        let pfn = addr / PAGE_SIZE;
        let zone = self
            .zones
            .zone_of_pfns(pfn, count)
            .ok_or(AllocError::OutOfRange)?;
        let page = pfn - zone.base_pfn;
        if zone.meta.occ.any_used(page, count) {
            return Err(AllocError::NoMemory);
        }
        zone.meta.allocate(page, count);
        self.used_pages += count;
        Ok(addr)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        let zone = self
            .zones
            .zone_of_addr(addr)
            .ok_or(AllocError::OutOfRange)?;
        let pfn = addr / PAGE_SIZE;
        if count == 0 || !addr.is_multiple_of(PAGE_SIZE) || !zone.contains_pfns(pfn, 1) {
            return Err(AllocError::NotAllocated);
        }
        let page = pfn - zone.base_pfn;
        zone.meta.occ.check_live(page, count)?;
        zone.meta.release(page, count);
        self.used_pages -= count;
        Ok(())
    }

    fn total_pages(&self) -> usize {
        self.total_pages
    }

    fn used_pages(&self) -> usize {
        self.used_pages
    }
}

impl<const PAGE_SIZE: usize> PageStatsSource for BitmapPageAllocator<PAGE_SIZE> {
    /// Scans the occupancy bitmaps (O(pages / 64) plus the free runs) and
    /// reports each free run as maximal aligned blocks.
    fn page_stats(&self) -> PageStats {
        let mut stats = PageStats::empty(self.total_pages);
        for zone in self.zones.iter() {
            zone.meta
                .occ
                .add_runs_to(&mut stats, zone.base_pfn, ORDERS - 1);
        }
        stats
    }
}
