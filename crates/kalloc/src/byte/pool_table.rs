//! A small, sorted, fixed-capacity table of the disjoint pools a byte
//! allocator manages, so `dealloc` finds a pointer's pool by binary search
//! and `add_memory` rejects overlaps without touching pool memory.

use crate::{AllocError, AllocResult};

/// How many pools one allocator can hold. A kernel heap that grows by
/// adding chunks of pages reaches a few dozen pools at most; `add_memory`
/// beyond this is refused with [`AllocError::NoMemory`].
pub const MAX_POOLS: usize = 64;

/// One pool: the byte range the caller handed over and the algorithm's
/// per-pool data (at least the pool's base pointer, for provenance).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolEntry<T: Copy> {
    /// First byte of the range as given to `add_memory`.
    pub start: usize,
    /// One past the last byte of the range as given to `add_memory`.
    pub end: usize,
    pub data: T,
}

/// The pools, sorted by `start`, non-overlapping.
pub(crate) struct PoolTable<T: Copy> {
    entries: [Option<PoolEntry<T>>; MAX_POOLS],
    len: usize,
}

impl<T: Copy> PoolTable<T> {
    pub const fn new() -> Self {
        Self {
            entries: [None; MAX_POOLS],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Index of the first pool whose start is above `addr`.
    #[inline]
    fn upper_bound(&self, addr: usize) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid).start <= addr {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    #[inline(always)]
    fn entry(&self, index: usize) -> &PoolEntry<T> {
        self.entries[index]
            .as_ref()
            .expect("pool table entries below len are Some")
    }

    /// The pool whose range contains `addr`, with its index.
    #[inline(always)]
    pub fn find(&self, addr: usize) -> Option<(usize, &PoolEntry<T>)> {
        if self.len == 1 {
            let only = self.entry(0);
            return (only.start <= addr && addr < only.end).then_some((0, only));
        }
        let index = self.upper_bound(addr).checked_sub(1)?;
        let pool = self.entry(index);
        (addr < pool.end).then_some((index, pool))
    }

    /// Checks that `[start, end)` can be added: no overlap, room left.
    pub fn check_insert(&self, start: usize, end: usize) -> AllocResult {
        let at = self.upper_bound(start);
        let overlaps_prev = at > 0 && self.entry(at - 1).end > start;
        let overlaps_next = at < self.len && self.entry(at).start < end;
        if overlaps_prev || overlaps_next {
            return Err(AllocError::MemoryOverlap);
        }
        if self.len == MAX_POOLS {
            return Err(AllocError::NoMemory);
        }
        Ok(())
    }

    /// Inserts a pool; `check_insert` must have accepted its range.
    pub fn insert(&mut self, entry: PoolEntry<T>) {
        debug_assert!(self.check_insert(entry.start, entry.end).is_ok());
        let at = self.upper_bound(entry.start);
        self.entries.copy_within(at..self.len, at + 1);
        self.entries[at] = Some(entry);
        self.len += 1;
    }

    /// Removes and returns the pool at `index`.
    pub fn remove(&mut self, index: usize) -> PoolEntry<T> {
        let removed = *self.entry(index);
        self.entries.copy_within(index + 1..self.len, index);
        self.len -= 1;
        self.entries[self.len] = None;
        removed
    }

    pub fn iter(&self) -> impl Iterator<Item = &PoolEntry<T>> {
        self.entries[..self.len].iter().flatten()
    }
}
