//! One buddy pool's start marks: two bitmaps (allocated starts, free
//! starts), 1 bit per 16-byte unit each, interleaved as one word pair per
//! 64 units so every test reads one cache line, and the order test they
//! make possible without any list scan.

use core::ptr::NonNull;

use super::{FreeNode, UNIT_LOG2, WORD_BITS};

/// The start marks of 64 consecutive units: bit `i` of `alloc` (of
/// `free`) is set iff an allocated (a free) block starts at unit
/// `64 * word + i`. Keeping both words side by side makes "is a block
/// start" one load from one cache line.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(super) struct StartMarks {
    pub alloc: u64,
    pub free: u64,
}

/// Which start mark of a unit.
#[derive(Clone, Copy)]
pub(super) enum Mark {
    Alloc,
    Free,
}

/// One pool: its units and the start marks in front of them.
#[derive(Clone, Copy, Debug)]
pub(super) struct BuddyPool {
    /// Address of unit 0 (a multiple of `BUDDY_UNIT`).
    pub data_start: usize,
    pub units: usize,
    pub marks: *mut StartMarks,
    /// The pointer the pool was given with, for deriving block pointers.
    pub base: NonNull<u8>,
}

impl BuddyPool {
    #[inline]
    pub(super) fn unit_of(&self, addr: usize) -> usize {
        (addr - self.data_start) >> UNIT_LOG2
    }

    /// The word pair holding `unit`'s marks.
    ///
    /// # Safety
    /// `unit < self.units`.
    #[inline]
    pub(super) unsafe fn marks_of(&self, unit: usize) -> *mut StartMarks {
        // SAFETY: the caller guarantees the unit, hence its word pair, exists.
        unsafe { self.marks.add(unit / WORD_BITS) }
    }

    /// Reads one start mark of `unit`.
    ///
    /// # Safety
    /// `unit < self.units`.
    #[inline]
    pub(super) unsafe fn mark(&self, unit: usize, mark: Mark) -> bool {
        // SAFETY: forwarded.
        let marks = unsafe { *self.marks_of(unit) };
        let word = match mark {
            Mark::Alloc => marks.alloc,
            Mark::Free => marks.free,
        };
        word & (1 << (unit % WORD_BITS)) != 0
    }

    /// Sets or clears one start mark of `unit`.
    ///
    /// # Safety
    /// `unit < self.units`.
    #[inline]
    pub(super) unsafe fn put_mark(&self, unit: usize, mark: Mark, value: bool) {
        // SAFETY: forwarded; the word pair is pool memory only we access.
        let marks = unsafe { &mut *self.marks_of(unit) };
        let word = match mark {
            Mark::Alloc => &mut marks.alloc,
            Mark::Free => &mut marks.free,
        };
        let bit = 1 << (unit % WORD_BITS);
        if value {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Turns the allocated start mark of `unit` into a free one (one word
    /// pair written once).
    ///
    /// # Safety
    /// `unit < self.units`.
    #[inline(always)]
    pub(super) unsafe fn flip_to_free(&self, unit: usize) {
        // SAFETY: forwarded; the word pair is pool memory only we access.
        let marks = unsafe { &mut *self.marks_of(unit) };
        let bit = 1 << (unit % WORD_BITS);
        marks.alloc &= !bit;
        marks.free |= bit;
    }

    /// Turns the free start mark of `unit` into an allocated one.
    ///
    /// # Safety
    /// `unit < self.units`.
    #[inline(always)]
    pub(super) unsafe fn flip_to_alloc(&self, unit: usize) {
        // SAFETY: forwarded; the word pair is pool memory only we access.
        let marks = unsafe { &mut *self.marks_of(unit) };
        let bit = 1 << (unit % WORD_BITS);
        marks.free &= !bit;
        marks.alloc |= bit;
    }

    /// Whether a block (free or allocated) starts at `unit`.
    ///
    /// # Safety
    /// `unit < self.units`.
    #[inline]
    pub(super) unsafe fn is_start(&self, unit: usize) -> bool {
        // SAFETY: forwarded.
        let marks = unsafe { *self.marks_of(unit) };
        (marks.alloc | marks.free) & (1 << (unit % WORD_BITS)) != 0
    }

    /// Whether the block starting at `unit` has exactly `order`. Blocks tile
    /// the pool and are naturally aligned, so a block of lower order at
    /// `unit` makes `unit + 2^(order-1)` a block start, and a block of
    /// higher order makes `unit + 2^order` an interior unit.
    ///
    /// # Safety
    /// A block starts at `unit`.
    #[inline(always)]
    pub(super) unsafe fn has_order(&self, unit: usize, order: usize) -> bool {
        let end = unit + (1 << order);
        // SAFETY: indices are checked against `units` before each test.
        unsafe {
            end <= self.units
                && (order == 0 || !self.is_start(unit + (1 << (order - 1))))
                && (end == self.units || self.is_start(end))
        }
    }

    #[inline]
    pub(super) fn node(&self, addr: usize) -> *mut FreeNode {
        self.base.as_ptr().with_addr(addr).cast()
    }
}
