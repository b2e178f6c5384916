//! The bitmap allocator's first-fit search: small requests test a word of
//! page starts at a time with shifts from their class's hint, large ones
//! jump between wholly free words through the summary; both move the hint
//! past what they prove too short.

use super::super::bits;
use super::meta::{BitmapMeta, hint_class};

/// Runs at least this long always contain a whole free bitmap word.
const LARGE_RUN: usize = 128;

impl BitmapMeta {
    /// Where a search of hint class `class` starts: its hint, which is at
    /// least every smaller class's (hints never decrease with the class),
    /// so it already holds what their searches walked past.
    #[inline(always)]
    fn search_start(&self, class: usize) -> usize {
        self.hints[class]
    }

    /// The start of the first free run at or after `from` that contains a
    /// wholly free word (every run of `LARGE_RUN` pages does).
    #[inline(always)]
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

    /// Free pages of used word `w` as set bits; none past the last word.
    #[inline(always)]
    fn free_word(&self, w: usize) -> u64 {
        self.occ.used.words().get(w).map_or(0, |&used| !used)
    }

    /// First fit for fewer than `LARGE_RUN` pages, word-parallel: for each
    /// word from the hint of `count`'s class (fully used ones skipped
    /// through `partly_free`), the pages that start `count` free pages are
    /// found with a few shifts over it and the next one or two words, then
    /// masked to the aligned ones. The same shifts for `2^class` pages move
    /// the hint to the first run of the class's size.
    fn find_small(&mut self, base_pfn: usize, count: usize, align_pages: usize) -> Option<usize> {
        let pages = self.occ.pages();
        let words = bits::words_for(pages);
        let class = hint_class(count);
        let from = self.search_start(class);
        // An alignment no page above the hint meets (2^63 bytes, say).
        let first_aligned = align_up(base_pfn + from, align_pages)?;
        if first_aligned - base_pfn >= pages {
            return None;
        }
        let class_len = 1 << class;
        let small_align = small_align_mask(base_pfn, align_pages);
        let mut w = from / 64;
        let mut hint = None;
        let mut found = None;
        // Pages below `from` count as used: no fit reaches below a hint.
        let mut free = self.free_word(w) & (u64::MAX << (from % 64));
        while w < words {
            if free == 0 {
                match self.partly_free.next(w + 1) {
                    Some(next) => w = next,
                    None => break,
                }
                free = self.free_word(w);
                continue;
            }
            let next = self.free_word(w + 1);
            // Pages of word `w` that start a free run of 2^class pages.
            let class_starts = run_starts(free, next, class_len);
            let fits = if count == class_len {
                class_starts
            } else if count <= 64 {
                run_starts(free, next, count)
            } else {
                class_starts & run_starts(next, self.free_word(w + 2), count - 64)
            } & small_align
                .unwrap_or_else(|| aligned_in_word(base_pfn + w * 64, align_pages));
            if hint.is_none() && class_starts != 0 {
                hint = Some(w * 64 + class_starts.trailing_zeros() as usize);
            }
            if fits != 0 {
                found = Some(w * 64 + fits.trailing_zeros() as usize);
                break;
            }
            w += 1;
            free = next;
        }
        // A fit holds a run of the class's size at or below its start.
        self.raise_hint(class, hint.unwrap_or(pages));
        found
    }

    /// First fit: the lowest page index of `count` free pages whose frame
    /// (`base_pfn` + index) is a multiple of `align_pages`. Moves the hint
    /// of `count`'s class past the runs it proves too short for the class.
    #[inline(always)]
    pub(super) fn first_fit(
        &mut self,
        base_pfn: usize,
        count: usize,
        align_pages: usize,
    ) -> Option<usize> {
        if count < LARGE_RUN {
            return self.find_small(base_pfn, count, align_pages);
        }
        let pages = self.occ.pages();
        let class = hint_class(count);
        let mut from = self.search_start(class);
        // Whether every run between the hint and `from` is below the class.
        let mut hint_follows = true;
        loop {
            let Some(free) = self.next_large_run(from) else {
                if hint_follows {
                    self.raise_hint(class, pages);
                }
                return None;
            };
            let start = align_up(base_pfn + free, align_pages)? - base_pfn;
            if start >= pages || count > pages - start {
                return None;
            }
            let used = self.occ.used.words();
            if bits::none_set(used, start, start + count) {
                return Some(start);
            }
            match bits::next_set(used, start, start + count) {
                None => return Some(start),
                Some(used) => {
                    hint_follows &= start == free && used - free < 1 << class;
                    if hint_follows {
                        self.raise_hint(class, used + 1);
                    }
                    from = used + 1;
                }
            }
        }
    }
}

/// The bits `s` of `free` where `len` free pages start (`1 <= len <= 64`),
/// the run possibly going on into `next`, the following word.
#[inline(always)]
fn run_starts(free: u64, next: u64, len: usize) -> u64 {
    if len == 1 {
        return free;
    }
    // Inside the word: `runs` bit s = `have` free pages from s. Doubling,
    // then one last overlapping step for the remainder (at most `have`).
    let mut runs = free;
    let mut have = 1;
    while have * 2 <= len {
        runs &= runs >> have;
        have *= 2;
    }
    if have < len {
        runs &= runs >> (len - have);
    }
    // Across the boundary: starts in the word's top free stretch whose
    // run, continued by the free pages at the bottom of `next`, is long
    // enough. `reach` is the first used page after it (from the word's start).
    let top = free.leading_ones() as usize;
    let reach = 64 + next.trailing_ones() as usize;
    if top > 0 && reach >= len + 64 - top {
        let last = (reach - len).min(63);
        runs |= (u64::MAX << (64 - top)) & (u64::MAX >> (63 - last));
    }
    runs
}

/// `pfn` rounded up to a multiple of `align_pages`, a power of two: a mask
/// where `checked_next_multiple_of` would divide; `None` on overflow.
#[inline(always)]
fn align_up(pfn: usize, align_pages: usize) -> Option<usize> {
    let low = align_pages - 1;
    Some(pfn.checked_add(low)? & !low)
}

/// For an alignment below 64 pages, the aligned pages of every word (the
/// same in each, since 64 is a multiple of it); `None` for larger ones.
#[inline(always)]
fn small_align_mask(base_pfn: usize, align_pages: usize) -> Option<u64> {
    if align_pages == 1 {
        return Some(u64::MAX);
    }
    if align_pages >= 64 {
        return None;
    }
    // One bit every `align_pages` bits, shifted to the first aligned frame.
    let mut pattern = 1u64;
    let mut period = align_pages;
    while period < 64 {
        pattern |= pattern << period;
        period *= 2;
    }
    Some(pattern << (base_pfn.wrapping_neg() & (align_pages - 1)))
}

/// The pages of the word whose first frame is `first_pfn` that are
/// multiples of `align_pages` (a power of two, at least 64): one or none.
#[inline(always)]
fn aligned_in_word(first_pfn: usize, align_pages: usize) -> u64 {
    // Pages from the word's start to the next aligned frame.
    let offset = first_pfn.wrapping_neg() & (align_pages - 1);
    if offset < 64 { 1 << offset } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words with long and short runs of free bits, from a fixed seed.
    fn words() -> impl Iterator<Item = u64> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..if cfg!(miri) { 16 } else { 400 }).map(move |i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match i % 4 {
                0 => x,
                1 => x | x.rotate_left(1) | x.rotate_left(2), // longer runs
                2 => !(x & x.rotate_left(9) & x.rotate_left(21)), // mostly free
                _ => u64::MAX << (x % 64),                    // one run at the top
            }
        })
    }

    /// Every run length of a small search.
    const LENS: [usize; 64] = {
        let mut lens = [0; 64];
        let mut i = 0;
        while i < 64 {
            lens[i] = i + 1;
            i += 1;
        }
        lens
    };

    #[test]
    fn run_starts_matches_a_bit_by_bit_scan() {
        let all: std::vec::Vec<u64> = words().collect();
        for pair in all.windows(2) {
            let (free, next) = (pair[0], pair[1]);
            let page_free = |p: usize| match p {
                0..64 => free >> p & 1 == 1,
                _ => next >> (p - 64) & 1 == 1,
            };
            let lens: &[usize] = if cfg!(miri) {
                &[1, 3, 8, 33, 64]
            } else {
                &LENS
            };
            for &len in lens {
                let expected = (0..64)
                    .filter(|&s| (s..s + len).all(page_free))
                    .fold(0u64, |m, s| m | 1 << s);
                assert_eq!(
                    run_starts(free, next, len),
                    expected,
                    "{free:#x} {next:#x} {len}"
                );
            }
        }
    }

    #[test]
    fn alignment_masks_match_the_frames() {
        for base in [0usize, 1, 5, 63, 64, 100, 4097] {
            for align in (0..9).map(|k| 1usize << k) {
                for w in 0..3 {
                    let first = base + w * 64;
                    let expected = (0..64)
                        .filter(|&s| (first + s).is_multiple_of(align))
                        .fold(0u64, |m, s| m | 1 << s);
                    let got = small_align_mask(base, align)
                        .unwrap_or_else(|| aligned_in_word(first, align));
                    assert_eq!(got, expected, "base {base}, align {align}, word {w}");
                }
            }
        }
    }
}
