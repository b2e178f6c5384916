//! Unique-ID allocation over a bitmap: PIDs, ASIDs, IRQ numbers.

use crate::page::bits;
use crate::{AllocError, AllocResult, IdAllocator};

/// An allocator of integer IDs in `0..64 * WORDS`, over two inline bitmaps
/// (`2 * 8 * WORDS` bytes, no heap): which IDs are managed (the ranges
/// given to [`add_ids`](IdAllocator::add_ids)) and which of those are free.
///
/// `alloc_id` is first fit, a word (64 IDs) at a time. Errors: a zero
/// count or a bad alignment is `InvalidParam`, as is a range that does not
/// fit in the capacity; an ID outside every managed range is `OutOfRange`;
/// freeing a free ID is `DoubleFree` (first ID of the range) or
/// `NotAllocated` (a later one); on error nothing changes.
#[derive(Clone, Debug)]
pub struct BitmapIdAllocator<const WORDS: usize = 64> {
    managed: [u64; WORDS],
    free: [u64; WORDS],
    size: usize,
    used: usize,
}

impl<const WORDS: usize> Default for BitmapIdAllocator<WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const WORDS: usize> BitmapIdAllocator<WORDS> {
    /// The largest number of IDs: `64 * WORDS`.
    pub const CAPACITY: usize = 64 * WORDS;

    /// An allocator that manages no IDs yet.
    pub const fn new() -> Self {
        Self {
            managed: [0; WORDS],
            free: [0; WORDS],
            size: 0,
            used: 0,
        }
    }

    /// Checks `[start, start + count)` fits the capacity; returns its end.
    fn range_end(start: usize, count: usize) -> AllocResult<usize> {
        match start.checked_add(count) {
            Some(end) if count > 0 && end <= Self::CAPACITY => Ok(end),
            Some(_) if count == 0 => Err(AllocError::InvalidParam),
            _ => Err(AllocError::OutOfRange),
        }
    }
}

impl<const WORDS: usize> IdAllocator for BitmapIdAllocator<WORDS> {
    /// Adds the IDs `[start, start + count)`: `InvalidParam` if empty or
    /// beyond the capacity, `MemoryOverlap` if any is already managed.
    fn add_ids(&mut self, start: usize, count: usize) -> AllocResult {
        let end = Self::range_end(start, count).map_err(|_| AllocError::InvalidParam)?;
        if !bits::none_set(&self.managed, start, end) {
            return Err(AllocError::MemoryOverlap);
        }
        bits::set_range(&mut self.managed, start, end);
        bits::set_range(&mut self.free, start, end);
        self.size += count;
        Ok(())
    }

    fn alloc_id(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        if count == 0 || !align.is_power_of_two() {
            return Err(AllocError::InvalidParam);
        }
        let mut from = 0;
        while let Some(free) = bits::next_set(&self.free, from, Self::CAPACITY) {
            let Some(start) = free.checked_next_multiple_of(align) else {
                break;
            };
            if start >= Self::CAPACITY || count > Self::CAPACITY - start {
                break;
            }
            match bits::next_clear(&self.free, start, start + count) {
                None => {
                    bits::clear_range(&mut self.free, start, start + count);
                    self.used += count;
                    return Ok(start);
                }
                Some(taken) => from = taken + 1,
            }
        }
        Err(AllocError::NoMemory)
    }

    fn alloc_fixed_id(&mut self, id: usize) -> AllocResult {
        if id >= Self::CAPACITY || !bits::get(&self.managed, id) {
            return Err(AllocError::OutOfRange);
        }
        if !bits::get(&self.free, id) {
            return Err(AllocError::NoMemory);
        }
        bits::clear(&mut self.free, id);
        self.used += 1;
        Ok(())
    }

    fn dealloc_id(&mut self, start_id: usize, count: usize) -> AllocResult {
        let end = Self::range_end(start_id, count)?;
        if !bits::all_set(&self.managed, start_id, end) {
            return Err(AllocError::OutOfRange);
        }
        if bits::get(&self.free, start_id) {
            return Err(AllocError::DoubleFree);
        }
        if !bits::none_set(&self.free, start_id, end) {
            return Err(AllocError::NotAllocated);
        }
        bits::set_range(&mut self.free, start_id, end);
        self.used -= count;
        Ok(())
    }

    fn is_allocated(&self, id: usize) -> bool {
        id < Self::CAPACITY && bits::get(&self.managed, id) && !bits::get(&self.free, id)
    }

    fn size(&self) -> usize {
        self.size
    }

    fn used(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(start: usize, size: usize) -> BitmapIdAllocator<4> {
        let mut a = BitmapIdAllocator::<4>::new();
        a.add_ids(start, size).unwrap();
        a
    }

    #[test]
    fn allocates_first_fit_with_alignment_across_words() {
        let mut a = ids(1, 255);
        assert_eq!(a.alloc_id(1, 1), Ok(1));
        assert_eq!(a.alloc_id(62, 1), Ok(2)); // up to 63
        assert_eq!(a.alloc_id(3, 1), Ok(64));
        assert_eq!(a.alloc_id(70, 64), Ok(128)); // runs over the word boundary
        assert_eq!(a.used(), 136);
        assert!(a.is_allocated(197) && !a.is_allocated(198) && !a.is_allocated(0));
        assert_eq!(a.alloc_id(64, 64), Err(AllocError::NoMemory));
        assert_eq!(a.alloc_id(1, 1 << 63), Err(AllocError::NoMemory));
        assert_eq!(a.alloc_id(0, 1), Err(AllocError::InvalidParam));
        assert_eq!(a.alloc_id(1, 3), Err(AllocError::InvalidParam));
    }

    #[test]
    fn bad_frees_change_nothing() {
        let mut a = ids(10, 100);
        let first = a.alloc_id(5, 1).unwrap();
        let snapshot = a.clone();
        assert_eq!(a.dealloc_id(first + 5, 1), Err(AllocError::DoubleFree));
        assert_eq!(a.dealloc_id(first + 3, 3), Err(AllocError::NotAllocated));
        assert_eq!(a.dealloc_id(0, 1), Err(AllocError::OutOfRange));
        assert_eq!(a.dealloc_id(250, 10), Err(AllocError::OutOfRange));
        assert_eq!(a.dealloc_id(first, 0), Err(AllocError::InvalidParam));
        assert_eq!(
            (a.managed, a.free, a.used),
            (snapshot.managed, snapshot.free, snapshot.used)
        );
        assert_eq!(a.dealloc_id(first, 5), Ok(()));
        assert_eq!(a.used(), 0);
    }

    #[test]
    fn fixed_ids_and_regions() {
        let mut a = ids(0, 8);
        assert_eq!(a.add_ids(4, 8), Err(AllocError::MemoryOverlap));
        assert_eq!(a.add_ids(200, 100), Err(AllocError::InvalidParam));
        assert_eq!(a.add_ids(64, 0), Err(AllocError::InvalidParam));
        a.add_ids(64, 8).unwrap();
        assert_eq!(a.size(), 16);
        assert_eq!(a.alloc_fixed_id(65), Ok(()));
        assert_eq!(a.alloc_fixed_id(65), Err(AllocError::NoMemory));
        assert_eq!(a.alloc_fixed_id(20), Err(AllocError::OutOfRange));
        assert_eq!(a.alloc_id(8, 8), Ok(0));
        assert_eq!(a.alloc_id(8, 1), Err(AllocError::NoMemory));
        assert_eq!(a.alloc_id(2, 1), Ok(66));
        assert_eq!(a.available(), 5);
    }
}
