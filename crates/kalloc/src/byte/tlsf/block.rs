//! TLSF block layout and the size-to-list mapping of Masmano et al. (first
//! level: power-of-two ranges; second level: 2^SLI equal parts of each
//! range).
//!
//! A block is addressed by its header word; the payload follows it. A used
//! block carries that one word of overhead. A free block also keeps its
//! two free-list links after the header and, in its last word, a footer
//! pointing back at its header (the original TLSF's `prev_phys`, stored
//! inside the free predecessor), which the next block's `PREV_FREE` flag
//! says is there:
//!
//! ```text
//!  used:  | seal | size | PREV_FREE | USED=1 | payload ...                   |
//!  free:  | size (no flags, no seal)          | next | prev | ... | footer    |
//!          ^ block                             ^ block + WORD      ^ block + size - WORD
//! ```
//!
//! Payloads are granule-aligned, so headers sit one word below a granule
//! boundary and block sizes are whole granules. On 64-bit targets a used
//! header's upper half is its seal, the low half of the block's own
//! address: a header word is valid only in front of the payload it was
//! written for (see `docs/byte-allocators.md`).

use core::mem::size_of;

/// The machine word: a header, a link or a footer.
const WORD: usize = size_of::<usize>();
/// Block sizes and payload addresses are multiples of this (16 on 64-bit).
pub const GRANULE: usize = 2 * WORD;
pub(super) const GRANULE_LOG2: u32 = GRANULE.trailing_zeros();
/// Bytes of header in front of every block's payload: one word.
pub const HEADER: usize = WORD;
/// The smallest block: a header, the two free-list links and the footer
/// it needs once free.
pub const MIN_BLOCK: usize = 4 * WORD;

/// log2 of the number of second-level lists per first-level range.
pub(super) const SLI: u32 = 5;
pub(super) const SL_COUNT: usize = 1 << SLI;
/// Sizes below `1 << FL_SHIFT` live in first-level list 0, one second-level
/// list per granule (exact fit); above it each power of two is a range.
const FL_SHIFT: u32 = SLI + GRANULE_LOG2;
/// First-level rows up to the one of `MAX_BLOCK` (24 on 64-bit targets):
/// no block is larger, so no list beyond would ever be used, and the list
/// heads stay within a few pages.
pub(super) const FL_COUNT: usize = (MAX_BLOCK.ilog2() + 2 - FL_SHIFT) as usize;
/// The number of free lists.
pub(super) const LISTS: usize = FL_COUNT * SL_COUNT;

/// Bit 0 of a used header: the block is allocated. A free block's header
/// is its bare size, so the bit is clear; so is it in every link and
/// footer (block addresses are word multiples).
pub(super) const USED: usize = 1;
/// Bit 1 of a used header: the physically previous block is free, so the
/// word in front of this header is that block's footer.
pub(super) const PREV_FREE: usize = 2;

/// The bits of a header that hold the block size: below the seal, above
/// the flags. Blocks, and so the part of a pool in use, are smaller than 4
/// GiB on 64-bit targets.
#[cfg(target_pointer_width = "64")]
pub(super) const SIZE_MASK: usize = u32::MAX as usize & !(GRANULE - 1);
#[cfg(not(target_pointer_width = "64"))]
pub(super) const SIZE_MASK: usize = !(GRANULE - 1);
/// The largest block, hence the most of one pool that is used.
pub(super) const MAX_BLOCK: usize = SIZE_MASK;

const _: () = assert!(HEADER + WORD == GRANULE && MIN_BLOCK == 2 * GRANULE);
// `FL_COUNT < usize::BITS`: the search's `usize::MAX << (fl + 1)` never
// shifts by the full width.
const _: () = assert!(FL_COUNT < usize::BITS as usize && SL_COUNT <= u32::BITS as usize);

/// A block, addressed by its header word. Only a free block has the links
/// (they overlay the payload).
#[repr(C)]
pub(super) struct Block {
    /// A used block's `size + USED + seal`, maybe with `PREV_FREE`; a free
    /// block's size alone.
    word: usize,
    pub next: *mut Block,
    pub prev: *mut Block,
}

/// The block whose header is at `addr`, with `base`'s provenance (a
/// pool's base pointer).
#[inline(always)]
pub(super) fn block_at(base: *mut u8, addr: usize) -> *mut Block {
    base.with_addr(addr).cast()
}

/// The seal of the block whose header is at `block`: the low half of the
/// address, in the upper half of the word. It makes a header word valid at
/// one address only (within any 4 GiB), and no integer below 2^32 a valid
/// header anywhere (a header address is a word off the granule, so its
/// low half is never 0).
#[cfg(target_pointer_width = "64")]
#[inline(always)]
pub(super) fn seal(block: usize) -> usize {
    block << 32
}

/// No room for a seal in a 32-bit header: headers are not bound to their
/// address there.
#[cfg(not(target_pointer_width = "64"))]
#[inline(always)]
pub(super) fn seal(_block: usize) -> usize {
    0
}

/// The header word of a used block of `size` bytes at `block`, without
/// `PREV_FREE`. Added, not or-ed: a `size` too large for the size bits
/// (a bogus layout's) then changes the seal instead of hiding in it.
#[inline(always)]
pub(super) fn used_word(block: usize, size: usize) -> usize {
    size.wrapping_add(USED).wrapping_add(seal(block))
}

/// The header word.
///
/// # Safety
/// `block` points to a readable word of a live pool (a header, or for
/// validation any word of a pool).
#[inline(always)]
pub(super) unsafe fn word(block: *mut Block) -> usize {
    // SAFETY: the caller guarantees a readable word.
    unsafe { (*block).word }
}

/// Writes the header word.
///
/// # Safety
/// `block` points to writable header memory inside a pool.
#[inline(always)]
pub(super) unsafe fn set_word(block: *mut Block, word: usize) {
    // SAFETY: the caller guarantees a writable word.
    unsafe { (*block).word = word }
}

/// The footer slot of the block that ends at `end`: the word in front of
/// the header at `end`. Meaningful when that block is free.
///
/// # Safety
/// `end` is a block header (or sentinel) of a pool, not its first block.
#[inline(always)]
pub(super) unsafe fn footer(end: *mut Block) -> *mut *mut Block {
    // SAFETY: the block in front of `end` has at least a word of payload.
    unsafe { end.byte_sub(WORD).cast() }
}

/// Writes the footer of the free block `[block, end)`.
///
/// # Safety
/// As for [`footer`]; `block` starts the free block that ends at `end`.
#[inline(always)]
pub(super) unsafe fn set_footer(block: *mut Block, end: *mut Block) {
    // SAFETY: forwarded from the caller.
    unsafe { *footer(end) = block }
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

/// The block size a payload of `payload` bytes rounds to, without the
/// minimum: the payload plus the header, rounded up to the granule (16
/// for 1..=8 bytes, which no block has; `block_size_for` lifts it).
/// `payload <= isize::MAX` (a `Layout` size), so nothing overflows.
#[inline(always)]
pub(super) fn rounded_size(payload: usize) -> usize {
    debug_assert!(payload <= isize::MAX as usize);
    (payload + HEADER + GRANULE - 1) & !(GRANULE - 1)
}

/// The block size that serves a payload of `payload` bytes: at least
/// `MIN_BLOCK`. A 0-byte layout maps to `MIN_BLOCK` too; `alloc` refuses
/// it before.
#[inline(always)]
pub(super) fn block_size_for(payload: usize) -> usize {
    rounded_size(payload).max(MIN_BLOCK)
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
pub(super) fn split_index(index: usize) -> (usize, usize) {
    (index >> SLI, index & (SL_COUNT - 1))
}

/// The flat index of the list a free block of `size` bytes belongs to
/// (`size <= MAX_BLOCK`, so the index is below `LISTS`): a shift below
/// `1 << FL_SHIFT`, else a bit scan, a shift and an add.
#[inline(always)]
pub(super) fn mapping_insert(size: usize) -> usize {
    debug_assert!(size <= MAX_BLOCK);
    if size < 1 << FL_SHIFT {
        return size >> GRANULE_LOG2;
    }
    flat_index(size, size.ilog2())
}

/// The flat index of the first list whose every block holds `size` bytes
/// (a granule multiple): `size` rounded up to the next list boundary, so
/// the search never walks a list. `None` beyond the last list (no block
/// is that large). Requests below `1 << FL_SHIFT` (the exact-fit row, most
/// requests of a kernel heap) take a shift instead of the bit scan.
#[inline(always)]
pub(super) fn mapping_search(size: usize) -> Option<usize> {
    debug_assert!(size.is_multiple_of(GRANULE));
    if size < 1 << FL_SHIFT {
        return Some(size >> GRANULE_LOG2);
    }
    let msb = size.ilog2();
    let rounded = size.checked_add((1 << (msb - SLI)) - 1)?;
    let index = flat_index(rounded, msb);
    (index < LISTS).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_monotonic_and_search_rounds_up() {
        let mut last = 0;
        let step = if cfg!(miri) { GRANULE * 7 } else { GRANULE };
        for size in (MIN_BLOCK..1 << 16).step_by(step) {
            let class = mapping_insert(size);
            assert!(class >= last, "size {size}");
            last = class;
            let searched = mapping_search(size).unwrap();
            assert!(searched >= class);
            // Every block in the searched list is at least `size`.
            let (fl, sl) = split_index(searched);
            let lower = if fl == 0 {
                sl << GRANULE_LOG2
            } else {
                let base = 1usize << (fl as u32 + FL_SHIFT - 1);
                base + sl * (base >> SLI)
            };
            assert!(lower >= size, "size {size} searched list starts at {lower}");
        }
        assert_eq!(split_index(mapping_insert(MAX_BLOCK)).0, FL_COUNT - 1);
        assert!(mapping_search(MAX_BLOCK).is_none());
        assert!(mapping_search(usize::MAX & !(GRANULE - 1)).is_none());
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
    fn mapping_matches_the_textbook_one_at_every_scale() {
        let mut sizes = std::vec![0, 1, usize::MAX, usize::MAX - GRANULE];
        for shift in 0..usize::BITS {
            let power = 1usize << shift;
            for delta in [0, 1, GRANULE, power / 2, power / 3] {
                sizes.extend([power.wrapping_sub(delta), power.wrapping_add(delta)]);
            }
        }
        for size in sizes {
            if size > MAX_BLOCK {
                assert!(mapping_search(size & !(GRANULE - 1)).is_none());
                continue;
            }
            let (fl, sl) = split_index(mapping_insert(size));
            assert_eq!((fl, sl), reference_insert(size), "size {size:#x}");
            assert!(fl < FL_COUNT && sl < SL_COUNT);
            let granular = size & !(GRANULE - 1);
            if let Some(index) = mapping_search(granular) {
                let (fl, sl) = split_index(index);
                assert!(fl < FL_COUNT && sl < SL_COUNT, "size {size:#x}");
                assert!(index >= mapping_insert(granular));
            }
        }
    }

    #[test]
    fn block_sizes_round_the_payload_and_the_header() {
        assert_eq!(block_size_for(1), MIN_BLOCK);
        assert_eq!(block_size_for(MIN_BLOCK - HEADER), MIN_BLOCK);
        assert_eq!(block_size_for(MIN_BLOCK - HEADER + 1), MIN_BLOCK + GRANULE);
        assert_eq!(rounded_size(1), GRANULE);
        for payload in 1..200 {
            let size = block_size_for(payload);
            assert!(size.is_multiple_of(GRANULE) && size - HEADER >= payload);
            assert!(size == MIN_BLOCK || size - HEADER - payload < GRANULE);
        }
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_sealed_word_is_valid_at_its_own_address_only() {
        let block = 0x8020_1238usize;
        let word = used_word(block, 96);
        assert_eq!(word & SIZE_MASK, 96);
        assert_eq!(word & (GRANULE - 1), USED);
        for other in [block + GRANULE, block - GRANULE, block + (1 << 20)] {
            assert_ne!(used_word(other, 96), word);
        }
        // Small integers, null and aligned pointers are never used headers.
        for plain in [0, 1, 97, u32::MAX as usize, block, block + 8] {
            assert!(plain & USED == 0 || plain >> 32 != seal(block) >> 32);
            assert_eq!(plain >> 32, 0, "{plain:#x}");
        }
        // Every header address (a word off the granule) seals to a nonzero
        // upper half, which no integer below 2^32 has.
        for header in [
            HEADER,
            GRANULE + HEADER,
            block,
            0xffff_fff8,
            (1 << 40) + HEADER,
        ] {
            assert_ne!(seal(header) >> 32, 0, "{header:#x}");
        }
        // A size beyond the size bits changes the seal rather than hiding.
        assert_ne!(used_word(block, 96 + (1 << 36)) >> 32, word >> 32);
    }
}
