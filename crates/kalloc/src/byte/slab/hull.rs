//! The hull: the address range of every page a slab allocator took from
//! its source, the first test of every free (`slab.rs`) and the range a
//! free-list link must decode into (`free_list.rs`).

use super::free_list;

/// The address range from the lowest to the highest page the allocator
/// ever took from its source (empty until the first): a pointer outside
/// is `OutOfRange`, and a slab header is only read inside. Exact for a
/// source with one region; with several, a gap between them is inside.
/// Kept as start and length, so that a test is one subtraction and one
/// compare.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hull {
    pub(super) lo: usize,
    pub(super) len: usize,
    /// `lo` as a link word's test subtracts it ([`free_list::link_lo`]),
    /// computed once here rather than in every free.
    pub(super) link_lo: usize,
}

impl Hull {
    pub(super) const EMPTY: Self = Self::new(0, 0);

    /// The range `[lo, lo + len)`.
    pub(super) const fn new(lo: usize, len: usize) -> Self {
        Self {
            lo,
            len,
            link_lo: free_list::link_lo(lo),
        }
    }

    /// Whether `lo <= addr < lo + len`, as one compare: below `lo` the
    /// subtraction wraps to a value above `len`. Debug builds check it
    /// against the two compares.
    #[inline(always)]
    pub(super) fn contains(self, addr: usize) -> bool {
        let inside = addr.wrapping_sub(self.lo) < self.len;
        debug_assert_eq!(inside, self.lo <= addr && addr < self.hi());
        inside
    }

    /// The end of the range.
    pub(super) fn hi(self) -> usize {
        self.lo + self.len
    }

    /// Widens the hull to cover `[start, start + bytes)`.
    pub(super) fn cover(&mut self, start: usize, bytes: usize) {
        let (lo, hi) = if self.len == 0 {
            (start, start + bytes)
        } else {
            (self.lo.min(start), self.hi().max(start + bytes))
        };
        *self = Self::new(lo, hi - lo);
    }
}
