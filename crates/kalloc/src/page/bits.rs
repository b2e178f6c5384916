//! Word-at-a-time bit operations over `u64` slices, shared by the page
//! allocators' occupancy, block-start and free-order bitmaps.
//!
//! Bit `i` lives in word `i / 64` at position `i % 64`. Range operations
//! take half-open `[start, end)` bit ranges and touch each word once.

/// Words needed to hold `bits` bits.
pub(crate) const fn words_for(bits: usize) -> usize {
    bits.div_ceil(64)
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

/// The mask of bits `[start % 64, 64)` of `start`'s word.
#[inline]
fn from_mask(start: usize) -> u64 {
    u64::MAX << (start % 64)
}

/// The mask of bits `[0, (end - 1) % 64]` of the word holding bit `end - 1`.
#[inline]
fn up_to_mask(end: usize) -> u64 {
    u64::MAX >> (63 - (end - 1) % 64)
}

/// Sets bits `[start, end)`.
#[inline]
pub(crate) fn set_range(words: &mut [u64], start: usize, end: usize) {
    if start >= end {
        return;
    }
    let (first, last) = (start / 64, (end - 1) / 64);
    if first == last {
        words[first] |= from_mask(start) & up_to_mask(end);
        return;
    }
    words[first] |= from_mask(start);
    for word in &mut words[first + 1..last] {
        *word = u64::MAX;
    }
    words[last] |= up_to_mask(end);
}

/// Clears bits `[start, end)`.
#[inline]
pub(crate) fn clear_range(words: &mut [u64], start: usize, end: usize) {
    if start >= end {
        return;
    }
    let (first, last) = (start / 64, (end - 1) / 64);
    if first == last {
        words[first] &= !(from_mask(start) & up_to_mask(end));
        return;
    }
    words[first] &= !from_mask(start);
    for word in &mut words[first + 1..last] {
        *word = 0;
    }
    words[last] &= !up_to_mask(end);
}

/// Whether every bit of `[start, end)` is set.
#[inline]
pub(crate) fn all_set(words: &[u64], start: usize, end: usize) -> bool {
    if start >= end {
        return true;
    }
    let (first, last) = (start / 64, (end - 1) / 64);
    if first == last {
        let mask = from_mask(start) & up_to_mask(end);
        return words[first] & mask == mask;
    }
    // No early exit in the middle: the AND over whole words vectorises.
    words[first] | !from_mask(start) == u64::MAX
        && words[last] | !up_to_mask(end) == u64::MAX
        && words[first + 1..last]
            .iter()
            .fold(u64::MAX, |all, &w| all & w)
            == u64::MAX
}

/// Whether no bit of `[start, end)` is set.
#[inline]
pub(crate) fn none_set(words: &[u64], start: usize, end: usize) -> bool {
    if start >= end {
        return true;
    }
    let (first, last) = (start / 64, (end - 1) / 64);
    if first == last {
        return words[first] & from_mask(start) & up_to_mask(end) == 0;
    }
    words[first] & from_mask(start) == 0
        && words[last] & up_to_mask(end) == 0
        && words[first + 1..last].iter().fold(0, |any, &w| any | w) == 0
}

/// The first bit in `[start, end)` set in `word(i)`, a word at a time.
#[inline]
fn first_marked(start: usize, end: usize, word: impl Fn(usize) -> u64) -> Option<usize> {
    if start >= end {
        return None;
    }
    let last = (end - 1) / 64;
    let mut w = start / 64;
    let mut hits = word(w) & from_mask(start);
    loop {
        if w == last {
            hits &= up_to_mask(end);
            return (hits != 0).then(|| w * 64 + hits.trailing_zeros() as usize);
        }
        if hits != 0 {
            return Some(w * 64 + hits.trailing_zeros() as usize);
        }
        w += 1;
        hits = word(w);
    }
}

/// The first set bit in `[start, end)`, if any.
#[inline]
pub(crate) fn next_set(words: &[u64], start: usize, end: usize) -> Option<usize> {
    first_marked(start, end, |w| words[w])
}

/// The first clear bit in `[start, end)`, if any.
#[inline]
pub(crate) fn next_clear(words: &[u64], start: usize, end: usize) -> Option<usize> {
    first_marked(start, end, |w| !words[w])
}

/// A bitmap stored in metadata memory the allocator owns: a base pointer
/// and a bit count. The allocator that holds it is its only user.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawBits {
    ptr: *mut u64,
    bits: usize,
}

impl RawBits {
    /// No bits (a dangling, aligned pointer: valid for zero words).
    pub(crate) const EMPTY: Self = Self {
        ptr: core::ptr::NonNull::dangling().as_ptr(),
        bits: 0,
    };

    /// # Safety
    /// `ptr` is non-null and 8-aligned (even for no bits) and points to
    /// `words_for(bits)` zeroed or initialised words that stay valid, and are used through this value only, for as long as
    /// it (or a copy) is used.
    pub(crate) unsafe fn new(ptr: *mut u64, bits: usize) -> Self {
        Self { ptr, bits }
    }

    pub(crate) fn bits(&self) -> usize {
        self.bits
    }

    pub(crate) fn words(&self) -> &[u64] {
        // SAFETY: `new`'s contract (or `EMPTY`'s zero words at an aligned
        // dangling pointer): the words are valid and owned by us; the shared borrow of `self` keeps `words_mut` from running.
        unsafe { core::slice::from_raw_parts(self.ptr, words_for(self.bits)) }
    }

    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
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
