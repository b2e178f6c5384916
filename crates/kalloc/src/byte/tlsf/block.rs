//! TLSF block layout (boundary tags) and the size-to-list mapping of
//! Masmano et al. (first level: power-of-two ranges; second level: 2^SLI
//! equal parts of each range).

use core::mem::size_of;

/// Block sizes and payload addresses are multiples of this (16 on 64-bit).
pub const GRANULE: usize = 2 * size_of::<usize>();
pub(super) const GRANULE_LOG2: u32 = GRANULE.trailing_zeros();
/// Bytes of header in front of every block's payload.
pub const HEADER: usize = size_of::<BlockHeader>();
/// The smallest block: a header plus room for the two free-list links.
pub const MIN_BLOCK: usize = HEADER + size_of::<FreeLinks>();

/// log2 of the number of second-level lists per first-level range.
pub(super) const SLI: u32 = 5;
pub(super) const SL_COUNT: usize = 1 << SLI;
/// Sizes below `1 << FL_SHIFT` live in first-level list 0, one second-level
/// list per granule (exact fit); above it each power of two is a range.
const FL_SHIFT: u32 = SLI + GRANULE_LOG2;
pub(super) const FL_COUNT: usize = (usize::BITS - FL_SHIFT + 1) as usize;

/// Bit 0 of `size_flags`: the block is free (on a list, or a stale header
/// merged into a free block).
pub(super) const FREE: usize = 1;
/// Bit 1 of `size_flags`: the physically previous block is free (so free
/// need not read it unless it will merge with it). A free block never has
/// it (no two free blocks are neighbours), so a free block's `size_flags`
/// is exactly `size | FREE`.
pub(super) const PREV_FREE: usize = 2;
/// The flag bits of `size_flags` (sizes are granule multiples).
pub(super) const FLAGS: usize = GRANULE - 1;

const _: () = assert!(HEADER == GRANULE && MIN_BLOCK == 2 * GRANULE);
// `FL_COUNT < usize::BITS`: the search's `usize::MAX << (fl + 1)` never
// shifts by the full width.
const _: () = assert!(FL_COUNT < usize::BITS as usize && SL_COUNT <= u32::BITS as usize);

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

/// The raw size-and-flags word.
///
/// # Safety
/// As for [`size`].
#[inline]
pub(super) unsafe fn size_flags(block: *mut BlockHeader) -> usize {
    // SAFETY: the caller guarantees `block` is a readable header.
    unsafe { (*block).size_flags }
}

/// Writes a header's size and flags word; `size_flags` is a block size
/// (a granule multiple) or-ed with `FREE` and `PREV_FREE` as they must be.
///
/// # Safety
/// `block` points to writable header memory inside a pool.
#[inline]
pub(super) unsafe fn set_size_flags(block: *mut BlockHeader, size_flags: usize) {
    // SAFETY: the caller guarantees `block` is writable.
    unsafe { (*block).size_flags = size_flags }
}

/// Sets or clears `PREV_FREE` of a valid header.
///
/// # Safety
/// `block` points to a valid header inside a pool.
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

/// `x / GRANULE` if `x` is a whole number of granules, else a number above
/// `usize::MAX / GRANULE`, more granules than any pool holds: the rotation
/// moves the low bits that make `x` misaligned to the top. So
/// `granules(x) <= n` (for `n` a granule count) reads "`x` is a whole
/// number of granules, at most `n`", in a rotate and a compare; and an `x`
/// that wrapped below zero (a negative difference) is huge either way.
/// Debug builds check it against the plain division.
#[inline(always)]
pub(super) fn granules(x: usize) -> usize {
    let rotated = x.rotate_right(GRANULE_LOG2);
    debug_assert!(if x.is_multiple_of(GRANULE) {
        rotated == x / GRANULE
    } else {
        rotated > usize::MAX / GRANULE
    });
    rotated
}

/// The block size that serves a payload of `payload` bytes: the payload
/// rounded up to the granule plus the header. For `payload >= 1` that is
/// at least `MIN_BLOCK` without a `max` (the rounded payload is at least
/// one granule); a 0-byte layout maps to `HEADER`, which no block matches.
/// `payload <= isize::MAX` (a `Layout` size), so nothing overflows.
#[inline(always)]
pub(super) fn block_size_for(payload: usize) -> usize {
    debug_assert!(payload <= isize::MAX as usize);
    (payload + GRANULE - 1 + HEADER) & !(GRANULE - 1)
}

/// The flat list index `fl * SL_COUNT + sl` of `size` under the mapping
/// whose first level is `msb`, the index of the highest set bit of
/// `size | 1 << FL_SHIFT` (so every size below `1 << FL_SHIFT` shares row
/// 0 with one list per granule). A `size` of up to twice that range
/// (rounded up by `mapping_search`) carries into the next row naturally.
#[inline(always)]
fn flat_index(size: usize, msb: u32) -> usize {
    (((msb - FL_SHIFT) as usize) << SLI) + (size >> (msb - SLI))
}

#[inline(always)]
fn split_index(index: usize) -> (usize, usize) {
    (index >> SLI, index & (SL_COUNT - 1))
}

/// The list a free block of `size` bytes belongs to: one leading-zero
/// count, a shift and an add, with no branch for the exact-fit row.
#[inline(always)]
pub(super) fn mapping_insert(size: usize) -> (usize, usize) {
    let msb = (size | 1 << FL_SHIFT).ilog2();
    split_index(flat_index(size, msb))
}

/// The first list whose every block holds `size` bytes: `size` rounded up
/// to the next list boundary, so the search never walks a list. `None` if
/// the rounding overflows. Requests below `1 << FL_SHIFT` (the exact-fit
/// row, most requests of a kernel heap) take a shift instead of the bit
/// scan: the search starts the allocation's dependency chain, and a shift
/// has a shorter latency than a bit scan. `mapping_insert` has no such
/// branch: it runs on the sizes of split and merged blocks, which are
/// mixed, so the branch would mispredict often.
#[inline(always)]
pub(super) fn mapping_search(size: usize) -> Option<(usize, usize)> {
    if size < 1 << FL_SHIFT {
        // A size just below `1 << FL_SHIFT` rounds into row 1, list 0.
        return Some(split_index((size + GRANULE - 1) >> GRANULE_LOG2));
    }
    let msb = (size | 1 << FL_SHIFT).ilog2();
    let rounded = size.checked_add((1 << (msb - SLI)) - 1)?;
    Some(split_index(flat_index(rounded, msb)))
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

    /// The textbook mapping (Masmano et al.), with a branch for row 0.
    fn reference_insert(size: usize) -> (usize, usize) {
        if size < 1 << FL_SHIFT {
            (0, size >> GRANULE_LOG2)
        } else {
            let msb = usize::BITS - 1 - size.leading_zeros();
            (
                (msb - FL_SHIFT + 1) as usize,
                (size >> (msb - SLI)) - SL_COUNT,
            )
        }
    }

    #[test]
    fn branch_free_mapping_matches_the_textbook_one_at_every_scale() {
        let mut sizes = std::vec![0, 1, usize::MAX, usize::MAX - GRANULE];
        for shift in 0..usize::BITS {
            let power = 1usize << shift;
            for delta in [0, 1, GRANULE, power / 2, power / 3] {
                sizes.extend([power.wrapping_sub(delta), power.wrapping_add(delta)]);
            }
        }
        for size in sizes {
            let (fl, sl) = mapping_insert(size);
            assert_eq!((fl, sl), reference_insert(size), "size {size:#x}");
            assert!(fl < FL_COUNT && sl < SL_COUNT);
            if let Some((fl, sl)) = mapping_search(size) {
                assert!(fl < FL_COUNT && sl < SL_COUNT, "size {size:#x}");
                assert!((fl, sl) >= mapping_insert(size));
            }
        }
    }
}
