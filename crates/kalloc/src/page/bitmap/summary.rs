//! Summary levels over the bitmap allocator's page bits: a hierarchy of
//! "some bit set below" bitmaps, so finding the next marked page word is
//! O(levels) instead of a scan, and keeping them right after an allocation
//! or a free touches one word per level at most, usually only level 1.

use super::super::bits::{self, RawBits};

/// Summary levels above the page bits; 64^11 words cover any address space.
const MAX_LEVELS: usize = 11;

/// A hierarchy of "any bit set below" levels over the words of a base
/// bitmap: level 1 holds one bit per base word (a predicate of the word
/// that the owner maintains), level `l + 1` one bit per level-`l` word (the
/// word is non-zero). The top level is one word.
pub(super) struct Summary {
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
    /// Bytes of storage for the levels over `base_words` words.
    pub fn bytes(base_words: usize) -> usize {
        8 * level_sizes(base_words).map(bits::words_for).sum::<usize>()
    }

    /// Levels over `base_words` words, every bit clear (no word marked).
    ///
    /// # Safety
    /// `*cursor` points to `bytes(base_words)` zeroed bytes owned by the
    /// zone for as long as this value is used; it is advanced past them.
    pub unsafe fn new(cursor: &mut *mut u64, base_words: usize) -> Self {
        let mut levels = [RawBits::EMPTY; MAX_LEVELS + 1];
        let mut count = 0;
        for size in level_sizes(base_words) {
            count += 1;
            // SAFETY: consecutive, disjoint pieces of the caller's storage.
            unsafe {
                levels[count] = RawBits::new(*cursor, size);
                *cursor = cursor.add(bits::words_for(size));
            }
        }
        Self { levels, count }
    }

    /// Marks or unmarks base word `word`, and the levels above it.
    #[inline(always)]
    pub fn set(&mut self, word: usize, marked: bool) {
        self.store(
            word / 64,
            1 << (word % 64),
            u64::from(marked) << (word % 64),
        );
    }

    /// Marks or unmarks base words `first..last`, and the levels above.
    #[inline(always)]
    pub fn set_range(&mut self, first: usize, last: usize, marked: bool) {
        if first < last && first / 64 == (last - 1) / 64 {
            // Within one level-1 word (up to 4096 pages): one store.
            let mask = (u64::MAX >> (64 - (last - first))) << (first % 64);
            self.store(first / 64, mask, if marked { mask } else { 0 });
            return;
        }
        let mut w = first;
        while w < last {
            // Up to the end of the level-1 word holding bit `w`.
            let top = last.min((w | 63) + 1);
            let mask = (u64::MAX << (w % 64)) & (u64::MAX >> ((64 - top % 64) % 64));
            self.store(w / 64, mask, if marked { mask } else { 0 });
            w = top;
        }
    }

    /// Marks base words `first..=last` in one pass: `first` as
    /// `first_marked`, `last` as `last_marked` (when they are the same
    /// word, `first_marked` wins) and every word between as
    /// `inner_marked`. A span within one level-1 word (64 base words,
    /// 4096 pages) is a single store.
    #[inline(always)]
    pub fn set_span(
        &mut self,
        first: usize,
        last: usize,
        first_marked: bool,
        inner_marked: bool,
        last_marked: bool,
    ) {
        if first / 64 != last / 64 {
            self.set(first, first_marked);
            self.set_range(first + 1, last, inner_marked);
            self.set(last, last_marked);
            return;
        }
        let (first_bit, last_bit) = (1 << (first % 64), 1 << (last % 64));
        let mask = (u64::MAX >> (63 - (last - first))) << (first % 64);
        let mut value = if inner_marked { mask } else { 0 };
        value = (value & !last_bit) | (u64::from(last_marked) << (last % 64));
        value = (value & !first_bit) | (u64::from(first_marked) << (first % 64));
        self.store(first / 64, mask, value);
    }

    /// Replaces the `mask` bits of level-1 word `word` by `value`, then
    /// carries the change up while a word turns zero or non-zero.
    #[inline(always)]
    fn store(&mut self, mut word: usize, mut mask: u64, mut value: u64) {
        let mut level = 1;
        loop {
            let words = self.levels[level].words_mut();
            let old = words[word];
            let new = (old & !mask) | value;
            words[word] = new;
            if (old == 0) == (new == 0) || level == self.count {
                return;
            }
            mask = 1 << (word % 64);
            value = u64::from(new != 0) << (word % 64);
            word /= 64;
            level += 1;
        }
    }

    /// The first marked base word at or after `from`: up the levels until
    /// one has a set bit at or after the position, then down its lowest
    /// set bits. O(levels).
    #[inline(always)]
    pub fn next(&self, from: usize) -> Option<usize> {
        let mut level = 1;
        let mut pos = from;
        loop {
            if level > self.count || pos >= self.levels[level].bits() {
                return None;
            }
            let w = pos / 64;
            let here = self.levels[level].words()[w] & (u64::MAX << (pos % 64));
            if here != 0 {
                pos = w * 64 + here.trailing_zeros() as usize;
                break;
            }
            pos = w + 1;
            level += 1;
        }
        while level > 1 {
            level -= 1;
            pos = pos * 64 + self.levels[level].words()[pos].trailing_zeros() as usize;
        }
        Some(pos)
    }
}
