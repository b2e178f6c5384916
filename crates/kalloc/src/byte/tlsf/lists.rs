//! The TLSF's segregated free lists and their two-level bitmap.
//!
//! The lists are doubly linked through the free blocks. A block's `prev`
//! link is its predecessor on the list or, for the head, a marker naming
//! the list: the list's index times the granule plus half a word, which
//! no block address equals (block addresses are a word off the granule)
//! and no block size either (sizes are whole granules). So unlinking the
//! head of a list finds the list without mapping the block's size again,
//! and a marker left in a payload never reads as a freed header.

use core::ptr;

use super::Tlsf;
use super::block::{
    Block, FL_COUNT, GRANULE, HEADER, LISTS, SL_COUNT, SLI, mapping_insert, mapping_search,
    split_index,
};

/// The `prev` link of the head of list `index`.
#[inline(always)]
fn head_marker(index: usize) -> *mut Block {
    ptr::without_provenance_mut(index * GRANULE + HEADER / 2)
}

/// The list a `prev` link marks as its head, or `None` for a link to a
/// block (whose address is a word off the granule).
#[inline(always)]
pub(super) fn marked_list(prev: *mut Block) -> Option<usize> {
    (prev.addr() & HEADER == 0).then_some(prev.addr() / GRANULE)
}

impl Tlsf {
    /// The head of the list with flat index `index` (`fl * SL_COUNT + sl`),
    /// read without a bounds check.
    ///
    /// # Safety
    /// `index < FL_COUNT * SL_COUNT`: true of every index that
    /// `mapping_insert`/`mapping_search` return (see `block`), that set
    /// bitmap bits name, and that a head marker holds.
    #[inline(always)]
    pub(super) unsafe fn head(&self, index: usize) -> *mut Block {
        debug_assert!(index < LISTS);
        // SAFETY: in bounds (the caller's guarantee).
        unsafe { *self.heads.get_unchecked(index) }
    }

    /// Sets the head of the list with flat index `index`.
    ///
    /// # Safety
    /// As for [`Tlsf::head`].
    #[inline(always)]
    unsafe fn set_head(&mut self, index: usize, block: *mut Block) {
        debug_assert!(index < LISTS);
        // SAFETY: in bounds (the caller's guarantee).
        unsafe { *self.heads.get_unchecked_mut(index) = block }
    }

    /// The second-level bitmap of row `fl`.
    ///
    /// # Safety
    /// `fl < FL_COUNT`.
    #[inline(always)]
    unsafe fn row(&self, fl: usize) -> u32 {
        debug_assert!(fl < FL_COUNT);
        // SAFETY: in bounds (the caller's guarantee).
        unsafe { *self.sl_bitmap.get_unchecked(fl) }
    }

    /// Sets the second-level bitmap of row `fl`.
    ///
    /// # Safety
    /// `fl < FL_COUNT`.
    #[inline(always)]
    unsafe fn set_row(&mut self, fl: usize, row: u32) {
        debug_assert!(fl < FL_COUNT);
        // SAFETY: in bounds (the caller's guarantee).
        unsafe { *self.sl_bitmap.get_unchecked_mut(fl) = row }
    }

    /// Pushes the free block `block` on the free list for `block_size`;
    /// the caller has written its header (the bare size), its footer and
    /// its successor's `PREV_FREE`. The bitmaps change only when the list
    /// was empty.
    ///
    /// # Safety
    /// `block` is a free block of `block_size >= MIN_BLOCK` bytes, not on
    /// a list.
    #[inline(always)]
    pub(super) unsafe fn link_free(&mut self, block: *mut Block, block_size: usize) {
        let index = mapping_insert(block_size);
        // SAFETY: the caller guarantees a free block with room for links;
        // the old head, if any, is a listed free block; `mapping_insert`
        // returns an index in bounds.
        unsafe {
            let head = self.head(index);
            (*block).next = head;
            (*block).prev = head_marker(index);
            if head.is_null() {
                let (fl, sl) = split_index(index);
                self.fl_bitmap |= 1 << fl;
                self.set_row(fl, self.row(fl) | 1 << sl);
            } else {
                (*head).prev = block;
            }
            self.set_head(index, block);
        }
    }

    /// Pops `block`, the head of list `index` as `find_suitable` returned
    /// it, without recomputing its list.
    ///
    /// # Safety
    /// `block` heads the list `heads[index]` (so the index is in bounds).
    #[inline(always)]
    pub(super) unsafe fn pop_head(&mut self, block: *mut Block, index: usize) {
        // SAFETY: the caller guarantees a listed head; its successor, if
        // any, is a listed free block.
        unsafe {
            let next = (*block).next;
            self.set_head(index, next);
            if next.is_null() {
                self.clear_list_bit(index);
            } else {
                (*next).prev = head_marker(index);
            }
        }
    }

    /// Marks list `index` empty in both bitmaps.
    ///
    /// # Safety
    /// As for [`Tlsf::head`].
    #[inline(always)]
    unsafe fn clear_list_bit(&mut self, index: usize) {
        let (fl, sl) = split_index(index);
        // SAFETY: forwarded from the caller.
        let row = unsafe { self.row(fl) } & !(1 << sl);
        // SAFETY: forwarded from the caller.
        unsafe { self.set_row(fl, row) };
        if row == 0 {
            self.fl_bitmap &= !(1 << fl);
        }
    }

    /// Unlinks the listed free block `block`; its header is left for the
    /// caller to rewrite.
    ///
    /// # Safety
    /// `block` is on a free list.
    #[inline(always)]
    pub(super) unsafe fn unlink(&mut self, block: *mut Block) {
        // SAFETY: the caller guarantees `block` is a listed free block, so
        // its links and its neighbours' links are valid, and a head marker
        // names a list in bounds.
        unsafe {
            let (next, prev) = ((*block).next, (*block).prev);
            if !next.is_null() {
                (*next).prev = prev;
            }
            match marked_list(prev) {
                Some(index) => {
                    self.set_head(index, next);
                    if next.is_null() {
                        self.clear_list_bit(index);
                    }
                }
                None => (*prev).next = next,
            }
        }
    }

    /// The head of the first non-empty list whose blocks all hold
    /// `search` bytes (a granule multiple), with that list's flat index and
    /// the other non-empty lists of its row above it: two find-first-set
    /// operations.
    #[inline(always)]
    pub(super) fn find_suitable(&self, search: usize) -> Option<Found> {
        let (fl, sl) = split_index(mapping_search(search)?);
        // SAFETY: `mapping_search` returns indices in bounds; a set bit of
        // `fl_bitmap` names a row in bounds, and a non-zero row's lowest
        // set bit a column in bounds.
        unsafe {
            let sl_map = self.row(fl) & (u32::MAX << sl);
            let (fl, sl_map) = if sl_map != 0 {
                (fl, sl_map)
            } else {
                // `fl + 1 <= FL_COUNT < usize::BITS` (asserted in `block`).
                let above = self.fl_bitmap & (usize::MAX << (fl + 1));
                if above == 0 {
                    return None;
                }
                let fl = above.trailing_zeros() as usize;
                (fl, self.row(fl))
            };
            let index = fl << SLI | sl_map.trailing_zeros() as usize;
            Some(Found {
                block: self.head(index),
                index,
                row_above: sl_map & (sl_map - 1),
            })
        }
    }
}

/// What `find_suitable` found: the head of list `index`, and the bitmap
/// of the non-empty lists after it in its row.
pub(super) struct Found {
    pub block: *mut Block,
    pub index: usize,
    pub row_above: u32,
}

impl Found {
    /// The head of the next non-empty list of the same row, if any: a
    /// block at least one list larger.
    ///
    /// # Safety
    /// `self` was just returned by `find_suitable` of `tlsf`.
    #[inline(always)]
    pub(super) unsafe fn next_in_row(&self, tlsf: &Tlsf) -> Option<Found> {
        if self.row_above == 0 {
            return None;
        }
        let index = self.index & !(SL_COUNT - 1) | self.row_above.trailing_zeros() as usize;
        Some(Found {
            // SAFETY: a set bit of a row names a list in bounds.
            block: unsafe { tlsf.head(index) },
            index,
            row_above: self.row_above & (self.row_above - 1),
        })
    }
}
