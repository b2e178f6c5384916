//! TLSF block layout (boundary tags) and the size-to-list mapping of
//! Masmano et al. (first level: power-of-two ranges; second level: 2^SLI
//! equal parts of each range).

use core::mem::size_of;

/// Block sizes and payload addresses are multiples of this (16 on 64-bit).
pub const GRANULE: usize = 2 * size_of::<usize>();
const GRANULE_LOG2: u32 = GRANULE.trailing_zeros();
/// Bytes of header in front of every block's payload.
pub const HEADER: usize = size_of::<BlockHeader>();
/// The smallest block: a header plus room for the two free-list links.
pub const MIN_BLOCK: usize = HEADER + size_of::<FreeLinks>();

/// log2 of the number of second-level lists per first-level range.
const SLI: u32 = 5;
pub(super) const SL_COUNT: usize = 1 << SLI;
/// Sizes below `1 << FL_SHIFT` live in first-level list 0, one second-level
/// list per granule (exact fit); above it each power of two is a range.
const FL_SHIFT: u32 = SLI + GRANULE_LOG2;
pub(super) const FL_COUNT: usize = (usize::BITS - FL_SHIFT + 1) as usize;

const FREE: usize = 1;
/// The physically previous block is free (so free need not read it
/// unless it will merge with it).
const PREV_FREE: usize = 2;
const FLAGS: usize = GRANULE - 1;

const _: () = assert!(HEADER == GRANULE && MIN_BLOCK == 2 * GRANULE);
const _: () = assert!(FL_COUNT <= usize::BITS as usize && SL_COUNT <= u32::BITS as usize);

/// The boundary tag at the start of every block (and of each pool's
/// zero-size end sentinel).
#[repr(C)]
pub(super) struct BlockHeader {
    /// The physically previous block, null for the first block of a pool.
    /// Always maintained (not only for free neighbours), so `dealloc` can
    /// check that a header is genuine.
    pub prev_phys: *mut BlockHeader,
    /// Total block size including this header, with `FREE` in bit 0 and
    /// `PREV_FREE` in bit 1.
    size_flags: usize,
}

/// Doubly linked free-list links, stored in a free block's payload.
#[repr(C)]
pub(super) struct FreeLinks {
    pub next: *mut BlockHeader,
    pub prev: *mut BlockHeader,
}

/// Reads a block's total size.
///
/// # Safety
/// `block` points to a block header (or the sentinel) of a live pool.
#[inline]
pub(super) unsafe fn size(block: *mut BlockHeader) -> usize {
    // SAFETY: the caller guarantees `block` is a readable header.
    unsafe { (*block).size_flags & !FLAGS }
}

/// Whether a block is on a free list (or was, for a stale merged header).
///
/// # Safety
/// As for [`size`].
#[inline]
pub(super) unsafe fn is_free(block: *mut BlockHeader) -> bool {
    // SAFETY: the caller guarantees `block` is a readable header.
    unsafe { (*block).size_flags & FREE != 0 }
}

/// The raw size-and-flags word (for validating headers in `dealloc`).
///
/// # Safety
/// As for [`size`].
#[inline]
pub(super) unsafe fn raw_size_flags(block: *mut BlockHeader) -> usize {
    // SAFETY: the caller guarantees `block` is a readable header.
    unsafe { (*block).size_flags }
}

/// Whether the physically previous block is free.
///
/// # Safety
/// As for [`size`].
#[inline]
pub(super) unsafe fn is_prev_free(block: *mut BlockHeader) -> bool {
    // SAFETY: the caller guarantees `block` is a readable header.
    unsafe { (*block).size_flags & PREV_FREE != 0 }
}

/// Rewrites a valid header's size and free flag, keeping `PREV_FREE`.
///
/// # Safety
/// `block` points to a valid header inside a pool.
#[inline]
pub(super) unsafe fn set(block: *mut BlockHeader, size: usize, free: bool) {
    debug_assert_eq!(size & FLAGS, 0);
    // SAFETY: the caller guarantees `block` is a valid, writable header.
    unsafe {
        let prev_free = (*block).size_flags & PREV_FREE;
        (*block).size_flags = size | prev_free | if free { FREE } else { 0 };
    }
}

/// Writes a new header's size and both flags (the memory held anything).
///
/// # Safety
/// `block` points to writable header memory inside a pool.
#[inline]
pub(super) unsafe fn init(block: *mut BlockHeader, size: usize, free: bool, prev_free: bool) {
    debug_assert_eq!(size & FLAGS, 0);
    let flags = if free { FREE } else { 0 } | if prev_free { PREV_FREE } else { 0 };
    // SAFETY: the caller guarantees `block` is writable.
    unsafe { (*block).size_flags = size | flags }
}

/// Sets or clears `PREV_FREE` of a valid header.
///
/// # Safety
/// As for [`set`].
#[inline]
pub(super) unsafe fn set_prev_free(block: *mut BlockHeader, prev_free: bool) {
    // SAFETY: the caller guarantees `block` is a valid, writable header.
    unsafe {
        if prev_free {
            (*block).size_flags |= PREV_FREE;
        } else {
            (*block).size_flags &= !PREV_FREE;
        }
    }
}

/// The free-list links of a free block.
///
/// # Safety
/// `block` is a block of at least `MIN_BLOCK` bytes.
#[inline]
pub(super) unsafe fn links(block: *mut BlockHeader) -> *mut FreeLinks {
    // SAFETY: a block of MIN_BLOCK bytes has room for the links after its header.
    unsafe { block.byte_add(HEADER).cast() }
}

/// The block size that serves a payload of `payload` bytes, or `None` if
/// it overflows.
#[inline]
pub(super) fn block_size_for(payload: usize) -> Option<usize> {
    let rounded = payload.checked_add(GRANULE - 1)? & !(GRANULE - 1);
    Some(rounded.checked_add(HEADER)?.max(MIN_BLOCK))
}

/// The list a free block of `size` bytes belongs to.
#[inline]
pub(super) fn mapping_insert(size: usize) -> (usize, usize) {
    if size < 1 << FL_SHIFT {
        (0, size >> GRANULE_LOG2)
    } else {
        let msb = usize::BITS - 1 - size.leading_zeros();
        let fl = (msb - FL_SHIFT + 1) as usize;
        let sl = (size >> (msb - SLI)) - SL_COUNT;
        (fl, sl)
    }
}

/// The first list whose every block holds `size` bytes: `size` rounded up
/// to the next list boundary, so the search never walks a list. `None` if
/// the rounding overflows.
#[inline]
pub(super) fn mapping_search(size: usize) -> Option<(usize, usize)> {
    if size < 1 << FL_SHIFT {
        return Some(mapping_insert(size));
    }
    let msb = usize::BITS - 1 - size.leading_zeros();
    let rounded = size.checked_add((1 << (msb - SLI)) - 1)?;
    Some(mapping_insert(rounded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_monotonic_and_search_rounds_up() {
        let mut last = (0, 0);
        let step = if cfg!(miri) { GRANULE * 7 } else { GRANULE };
        for size in (MIN_BLOCK..1 << 16).step_by(step) {
            let class = mapping_insert(size);
            assert!(class >= last, "size {size}");
            last = class;
            let searched = mapping_search(size).unwrap();
            assert!(searched >= class);
            // Every block in the searched list is at least `size`.
            let (fl, sl) = searched;
            let lower = if fl == 0 {
                sl << GRANULE_LOG2
            } else {
                let base = 1usize << (fl as u32 + FL_SHIFT - 1);
                base + sl * (base >> SLI)
            };
            assert!(lower >= size, "size {size} searched list starts at {lower}");
        }
        assert_eq!(mapping_insert(usize::MAX).0, FL_COUNT - 1);
        assert!(mapping_search(usize::MAX).is_none());
    }
}
