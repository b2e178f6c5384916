//! `RangeSet`: a fixed-capacity, sorted set of disjoint physical ranges.
//!
//! Invariant (checked by `debug_assert_invariant` in tests): the first `len`
//! slots are non-empty, sorted by start, and separated by gaps of at least
//! one byte (touching ranges are merged on insertion). Every mutating
//! operation either succeeds or leaves the set unchanged.

use crate::{LayoutError, PhysRange};

/// Up to `N` disjoint, non-adjacent, non-empty ranges in address order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RangeSet<const N: usize> {
    ranges: [PhysRange; N],
    len: usize,
}

impl<const N: usize> Default for RangeSet<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RangeSet<N> {
    pub const fn new() -> Self {
        Self {
            ranges: [PhysRange::EMPTY; N],
            len: 0,
        }
    }

    /// The ranges, in address order.
    pub fn as_slice(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }

    pub const fn len(&self) -> usize {
        self.len
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    /// Bytes covered by all ranges together.
    pub fn total_size(&self) -> u64 {
        self.as_slice().iter().map(|r| r.size()).sum()
    }

    /// True if `addr` lies in one of the ranges.
    pub fn contains(&self, addr: u64) -> bool {
        let index = self.as_slice().partition_point(|r| r.end() <= addr);
        index < self.len && self.ranges[index].contains(addr)
    }

    /// True if some range of the set shares an address with `range`.
    pub fn overlaps(&self, range: PhysRange) -> bool {
        self.as_slice().iter().any(|r| r.overlaps(range))
    }

    /// Adds `range`, merging it with every range it overlaps or touches.
    pub fn insert(&mut self, range: PhysRange) -> Result<(), LayoutError> {
        if range.is_empty() {
            return Ok(());
        }
        let slice = self.as_slice();
        // Ranges [first, last) overlap or touch `range`.
        let first = slice.partition_point(|r| r.end() < range.start());
        let last = slice.partition_point(|r| r.start() <= range.end());
        if first == last {
            if self.len == N {
                return Err(LayoutError::CapacityExceeded { capacity: N });
            }
            self.ranges.copy_within(first..self.len, first + 1);
            self.ranges[first] = range;
            self.len += 1;
            return Ok(());
        }
        let start = range.start().min(self.ranges[first].start());
        let end = range.end().max(self.ranges[last - 1].end());
        self.ranges[first] = PhysRange::new(start, end)?;
        self.ranges.copy_within(last..self.len, first + 1);
        self.len -= last - first - 1;
        Ok(())
    }

    /// Takes `hole` out of the set, splitting a range if the hole lies
    /// strictly inside it (which needs one more slot).
    pub fn remove(&mut self, hole: PhysRange) -> Result<(), LayoutError> {
        if hole.is_empty() {
            return Ok(());
        }
        let slice = self.as_slice();
        // Ranges [first, last) share at least one address with `hole`.
        let first = slice.partition_point(|r| r.end() <= hole.start());
        let last = slice.partition_point(|r| r.start() < hole.end());
        if first >= last {
            return Ok(());
        }
        let head_start = self.ranges[first].start();
        let tail_end = self.ranges[last - 1].end();
        let head = (head_start < hole.start()).then(|| PhysRange::new(head_start, hole.start()));
        let tail = (hole.end() < tail_end).then(|| PhysRange::new(hole.end(), tail_end));
        let kept = usize::from(head.is_some()) + usize::from(tail.is_some());
        let new_len = self.len - (last - first) + kept;
        if new_len > N {
            return Err(LayoutError::CapacityExceeded { capacity: N });
        }
        self.ranges.copy_within(last..self.len, first + kept);
        for (slot, piece) in (first..).zip([head, tail].into_iter().flatten()) {
            self.ranges[slot] = piece?;
        }
        self.len = new_len;
        Ok(())
    }

    /// Shrinks every range to `align` boundaries and drops the ones that
    /// vanish.
    pub fn align_inward(&mut self, align: u64) -> Result<(), LayoutError> {
        if !align.is_power_of_two() {
            return Err(LayoutError::BadAlignment { align });
        }
        let mut kept = 0;
        for index in 0..self.len {
            if let Some(aligned) = self.ranges[index].align_inward(align) {
                self.ranges[kept] = aligned;
                kept += 1;
            }
        }
        self.len = kept;
        Ok(())
    }

    /// Checks the type invariant; used by the tests after every operation.
    #[cfg(test)]
    pub(crate) fn assert_invariant(&self) {
        for range in self.as_slice() {
            assert!(!range.is_empty(), "empty range in {self:?}");
        }
        for pair in self.as_slice().windows(2) {
            assert!(
                pair[0].end() < pair[1].start(),
                "unsorted or touching ranges in {self:?}"
            );
        }
    }
}

impl<'a, const N: usize> IntoIterator for &'a RangeSet<N> {
    type Item = &'a PhysRange;
    type IntoIter = core::slice::Iter<'a, PhysRange>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}
