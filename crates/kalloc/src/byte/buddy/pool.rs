//! One buddy pool: its units and the tag array in front of them, one byte
//! per 16-byte unit saying whether a block starts there, free or
//! allocated, and of which order. Every state test of the allocator is
//! one load and one compare of a tag.

use super::{BUDDY_UNIT, FreeNode, UNIT_LOG2};

/// Tag of a unit where no block starts (the inside of a block).
pub(super) const NO_BLOCK: u8 = 0;
/// Tag bit of an allocated block start; the low six bits hold its order.
pub(super) const ALLOCATED: u8 = 0x40;
/// Tag bit of a free block start; the low six bits hold its order.
pub(super) const FREE: u8 = 0x80;

/// One pool: where its units start, how many there are, and their tags.
#[derive(Clone, Copy, Debug)]
pub(super) struct BuddyPool {
    /// Address of unit 0 (a multiple of `BUDDY_UNIT`).
    pub data_start: usize,
    pub units: usize,
    /// `units` tags, one byte per unit, at the start of the pool; derived
    /// from the pointer the pool was given with, so block pointers are
    /// derived from it too.
    pub tags: *mut u8,
}

impl BuddyPool {
    /// A pool with no units: every `unit_of` misses it.
    pub(super) const EMPTY: Self = Self {
        data_start: 0,
        units: 0,
        tags: core::ptr::null_mut(),
    };

    /// The unit starting at `addr`, if `addr` is the first byte of one of
    /// this pool's units. The offset is rotated rather than shifted, so a
    /// misaligned address (low bits set) lands far above `units` and one
    /// compare rejects it together with addresses outside the data area
    /// (below it, the subtraction wraps to a huge offset too). Debug
    /// builds check it against the plain range, alignment and division.
    #[inline(always)]
    pub(super) fn unit_of(&self, addr: usize) -> Option<usize> {
        let unit = addr.wrapping_sub(self.data_start).rotate_right(UNIT_LOG2);
        let found = (unit < self.units).then_some(unit);
        debug_assert_eq!(found, {
            let offset = addr.wrapping_sub(self.data_start);
            let inside = addr >= self.data_start && offset < self.units * BUDDY_UNIT;
            (inside && offset.is_multiple_of(BUDDY_UNIT)).then_some(offset / BUDDY_UNIT)
        });
        found
    }

    /// The tag of `unit`.
    ///
    /// # Safety
    /// `unit < self.units`.
    #[inline(always)]
    pub(super) unsafe fn tag(&self, unit: usize) -> u8 {
        // SAFETY: the caller guarantees the unit, hence its tag, exists.
        unsafe { *self.tags.add(unit) }
    }

    /// Sets the tag of `unit`.
    ///
    /// # Safety
    /// `unit < self.units`.
    #[inline(always)]
    pub(super) unsafe fn set_tag(&self, unit: usize, tag: u8) {
        // SAFETY: as for `tag`; the tags are pool memory only we access.
        unsafe { *self.tags.add(unit) = tag }
    }

    /// The free-list links in the first unit of the block at `addr`.
    #[inline(always)]
    pub(super) fn node(&self, addr: usize) -> *mut FreeNode {
        self.tags.with_addr(addr).cast()
    }
}
