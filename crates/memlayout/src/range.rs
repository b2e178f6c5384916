//! `PhysRange`: a half-open interval of physical addresses.

use crate::LayoutError;
use core::fmt;

/// The physical addresses `start..end` (end exclusive). Constructors reject
/// inverted and overflowing ranges, so every value of this type is valid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PhysRange {
    start: u64,
    end: u64,
}

impl PhysRange {
    /// The empty range at address 0.
    pub const EMPTY: Self = Self { start: 0, end: 0 };

    /// `start..end`; an error if `end < start`.
    pub const fn new(start: u64, end: u64) -> Result<Self, LayoutError> {
        if end < start {
            return Err(LayoutError::Inverted { start, end });
        }
        Ok(Self { start, end })
    }

    /// `base..base + size`; an error if the end does not fit in 64 bits.
    pub const fn from_base_size(base: u64, size: u64) -> Result<Self, LayoutError> {
        match base.checked_add(size) {
            Some(end) => Ok(Self { start: base, end }),
            None => Err(LayoutError::Overflow { base, size }),
        }
    }

    pub const fn start(self) -> u64 {
        self.start
    }

    pub const fn end(self) -> u64 {
        self.end
    }

    pub const fn size(self) -> u64 {
        self.end - self.start
    }

    pub const fn is_empty(self) -> bool {
        self.start == self.end
    }

    pub const fn contains(self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// True if every address of `other` lies in `self` (an empty `other`
    /// is contained anywhere).
    pub const fn covers(self, other: PhysRange) -> bool {
        other.is_empty() || (self.start <= other.start && other.end <= self.end)
    }

    /// True if the two ranges share at least one address.
    pub const fn overlaps(self, other: PhysRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The range shrunk to `align` boundaries (start rounded up, end rounded
    /// down), or `None` if nothing aligned is left. `align` must be a power
    /// of two; callers check that.
    pub(crate) const fn align_inward(self, align: u64) -> Option<Self> {
        let mask = align - 1;
        let Some(start) = self.start.checked_add(mask) else {
            return None;
        };
        let start = start & !mask;
        let end = self.end & !mask;
        if start < end {
            Some(Self { start, end })
        } else {
            None
        }
    }
}

impl fmt::Debug for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start, self.end)
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
