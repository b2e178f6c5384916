//! Word-at-a-time bit operations over `u64` slices, shared by the page
//! allocators' occupancy, block-start and free-order bitmaps.
//!
//! Bit `i` lives in word `i / 64` at position `i % 64`. Range operations
//! take half-open `[start, end)` bit ranges and touch each word once.

/// Words needed to hold `bits` bits.
pub(crate) const fn words_for(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// The mask of bits `[lo, hi)` inside one word (`lo < hi <= 64`).
#[inline]
fn word_mask(lo: usize, hi: usize) -> u64 {
    let upper = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upper & !((1u64 << lo) - 1)
}

#[inline]
pub(crate) fn get(words: &[u64], bit: usize) -> bool {
    words[bit / 64] & (1 << (bit % 64)) != 0
}

#[inline]
pub(crate) fn set(words: &mut [u64], bit: usize) {
    words[bit / 64] |= 1 << (bit % 64);
}

#[inline]
pub(crate) fn clear(words: &mut [u64], bit: usize) {
    words[bit / 64] &= !(1 << (bit % 64));
}

/// Splits `[start, end)` (non-empty) into a masked first word, whole middle
/// words and a masked last word: `(first, first_mask, middle, last, last_mask)`.
/// When the range fits in one word, `last == first` and `last_mask == 0`.
#[inline]
fn split(start: usize, end: usize) -> (usize, u64, core::ops::Range<usize>, usize, u64) {
    let (first, last) = (start / 64, (end - 1) / 64);
    if first == last {
        return (
            first,
            word_mask(start % 64, (end - 1) % 64 + 1),
            first..first,
            first,
            0,
        );
    }
    (
        first,
        word_mask(start % 64, 64),
        first + 1..last,
        last,
        word_mask(0, (end - 1) % 64 + 1),
    )
}

/// Sets bits `[start, end)`.
pub(crate) fn set_range(words: &mut [u64], start: usize, end: usize) {
    if start >= end {
        return;
    }
    let (first, first_mask, middle, last, last_mask) = split(start, end);
    words[first] |= first_mask;
    words[middle].fill(u64::MAX);
    words[last] |= last_mask;
}

/// Clears bits `[start, end)`.
pub(crate) fn clear_range(words: &mut [u64], start: usize, end: usize) {
    if start >= end {
        return;
    }
    let (first, first_mask, middle, last, last_mask) = split(start, end);
    words[first] &= !first_mask;
    words[middle].fill(0);
    words[last] &= !last_mask;
}

/// Whether every bit of `[start, end)` is set.
pub(crate) fn all_set(words: &[u64], start: usize, end: usize) -> bool {
    if start >= end {
        return true;
    }
    let (first, first_mask, middle, last, last_mask) = split(start, end);
    words[first] & first_mask == first_mask
        && words[last] & last_mask == last_mask
        && words[middle].iter().all(|&w| w == u64::MAX)
}

/// Whether no bit of `[start, end)` is set.
pub(crate) fn none_set(words: &[u64], start: usize, end: usize) -> bool {
    if start >= end {
        return true;
    }
    let (first, first_mask, middle, last, last_mask) = split(start, end);
    words[first] & first_mask == 0
        && words[last] & last_mask == 0
        && words[middle].iter().all(|&w| w == 0)
}

/// Calls `f(word_index, mask)` for each word touched by `[start, end)`
/// until it returns `false`.
#[inline]
fn for_each_word(start: usize, end: usize, mut f: impl FnMut(usize, u64) -> bool) -> bool {
    let mut bit = start;
    while bit < end {
        let word = bit / 64;
        let lo = bit % 64;
        let hi = (end - word * 64).min(64);
        if !f(word, word_mask(lo, hi)) {
            return false;
        }
        bit = word * 64 + hi;
    }
    true
}

/// The first set bit in `[start, end)`, if any.
pub(crate) fn next_set(words: &[u64], start: usize, end: usize) -> Option<usize> {
    let mut found = None;
    for_each_word(start, end, |w, m| {
        let hit = words[w] & m;
        if hit != 0 {
            found = Some(w * 64 + hit.trailing_zeros() as usize);
            return false;
        }
        true
    });
    found
}

/// The first clear bit in `[start, end)`, if any.
pub(crate) fn next_clear(words: &[u64], start: usize, end: usize) -> Option<usize> {
    let mut found = None;
    for_each_word(start, end, |w, m| {
        let hit = !words[w] & m;
        if hit != 0 {
            found = Some(w * 64 + hit.trailing_zeros() as usize);
            return false;
        }
        true
    });
    found
}

/// A bitmap stored in metadata memory the allocator owns: a base pointer
/// and a bit count. The allocator that holds it is its only user.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawBits {
    ptr: *mut u64,
    bits: usize,
}

impl RawBits {
    pub(crate) const EMPTY: Self = Self {
        ptr: core::ptr::null_mut(),
        bits: 0,
    };

    /// # Safety
    /// `ptr` points to `words_for(bits)` zeroed or initialised words that
    /// stay valid, and are used through this value only, for as long as
    /// it (or a copy) is used.
    pub(crate) unsafe fn new(ptr: *mut u64, bits: usize) -> Self {
        Self { ptr, bits }
    }

    pub(crate) fn bits(&self) -> usize {
        self.bits
    }

    pub(crate) fn words(&self) -> &[u64] {
        if self.bits == 0 {
            return &[];
        }
        // SAFETY: `new`'s contract: the words are valid and owned by us;
        // the shared borrow of `self` keeps `words_mut` from running.
        unsafe { core::slice::from_raw_parts(self.ptr, words_for(self.bits)) }
    }

    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
        if self.bits == 0 {
            return &mut [];
        }
        // SAFETY: as in `words`; the exclusive borrow of `self` makes this
        // the only live view of the words.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, words_for(self.bits)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_across_word_boundaries() {
        let mut w = [0u64; 3];
        set_range(&mut w, 60, 130);
        assert!(all_set(&w, 60, 130));
        assert!(!get(&w, 59) && !get(&w, 130));
        assert_eq!(next_set(&w, 0, 192), Some(60));
        assert_eq!(next_clear(&w, 60, 192), Some(130));
        clear_range(&mut w, 64, 128);
        assert!(none_set(&w, 64, 128));
        assert!(all_set(&w, 60, 64) && all_set(&w, 128, 130));
        assert_eq!(next_set(&w, 64, 128), None);
        assert_eq!(next_clear(&w, 60, 64), None);
        set_range(&mut w, 0, 192);
        assert_eq!(w, [u64::MAX; 3]);
        clear_range(&mut w, 3, 5);
        assert_eq!(w[0], !0b11000);
        assert!(none_set(&w, 3, 5) && all_set(&w, 5, 192) && !all_set(&w, 2, 4));
        assert!(none_set(&w, 7, 7) && all_set(&w, 4, 4));
    }
}
