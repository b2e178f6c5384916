//! TLSF free validation: whether a pointer and a layout name a live
//! block, by its sealed header (the hot path) and by its neighbours (every
//! other path), and which error a refusal is.
//!
//! The checks, numbered as `docs/byte-allocators.md` lists them:
//!
//! 1. the pointer is a payload address of a pool (the hot pool's range,
//!    else the pool table);
//! 2. the word in front of it is the sealed used header a block of the
//!    layout's size carries at this address (or one granule larger);
//! 3. the payload meets the layout's alignment, and the block ends inside
//!    the pool;
//! 4. the successor agrees: a used block sealed for its own address with
//!    `PREV_FREE` clear, or a free block that ends inside the pool;
//! 5. with `PREV_FREE`, the footer in front names a free block of the
//!    pool that ends exactly here.

use core::alloc::Layout;

use super::block::{
    Block, GRANULE, HEADER, MIN_BLOCK, PREV_FREE, SIZE_MASK, USED, block_size_for, footer,
    granules, seal, used_word, word,
};
use super::{HotPool, Tlsf};
use crate::{AllocError, AllocResult};

/// A block validated for freeing: its header, size and header word, and
/// its successor's header word (the merge needs both again).
#[derive(Clone, Copy)]
pub(super) struct Live {
    pub block: *mut Block,
    pub size: usize,
    pub word: usize,
    pub next_word: usize,
}

impl Live {
    /// The same block with its own and its successor's words read again,
    /// after an allocation that may have changed a neighbour.
    ///
    /// # Safety
    /// The block is still live and of the same size.
    pub(super) unsafe fn reread(self) -> Self {
        // SAFETY: a live block's header and its successor's are valid.
        unsafe {
            Self {
                word: word(self.block),
                next_word: word(self.block.byte_add(self.size)),
                ..self
            }
        }
    }
}

/// Checks 2 and 3a of a free (see `docs/byte-allocators.md`): the word in
/// front of the payload, minus the used header a block of `need` bytes
/// there would carry, is 0 or one granule (a tail under `MIN_BLOCK` is
/// never split off), `PREV_FREE` aside; and the payload meets `align`.
/// The seal makes the first fail for any word not written for this
/// address as a used header: a free header (the bare size), a merged-away
/// header (`USED` cleared), a header copied from elsewhere, a link, a
/// footer, a small integer. Returns the header word.
///
/// # Safety
/// `block` is a readable word of a pool (check 1).
#[inline(always)]
pub(super) unsafe fn header_ok(block: *mut Block, need: usize, align: usize) -> Option<usize> {
    // SAFETY: the caller's guarantee. What is read may be payload if the
    // pointer is not a block start; it is only compared.
    let word = unsafe { word(block) };
    let slack = word.wrapping_sub(used_word(block.addr(), need));
    let misaligned = (block.addr() + HEADER) & (align - 1);
    (slack & !(GRANULE | PREV_FREE) == 0 && misaligned == 0).then_some(word)
}

/// Checks 3b to 5 of a free, on a block whose header passed
/// [`header_ok`]: the block ends inside the pool; the successor is a used
/// block sealed for its own address with `PREV_FREE` clear (the sentinel
/// is sealed too), or a free block (its word a bare size) that ends
/// inside the pool; if `PREV_FREE` is set, the footer in front names a
/// block of the pool whose word reads exactly "free, ending here" (the
/// word in front of a pool's first block is 0, outside every pool).
/// Nothing outside the pool is read. Returns the successor's word.
///
/// # Safety
/// `block` lies in `pool` (check 1) and `word` is its header word.
#[inline(always)]
pub(super) unsafe fn neighbours_ok(
    pool: &HotPool,
    block: *mut Block,
    word: usize,
) -> Option<usize> {
    let size = word & SIZE_MASK;
    if size > pool.sentinel - block.addr() {
        return None;
    }
    // SAFETY: every word read lies in the pool: the successor's header is
    // at most the sentinel, the predecessor is checked to lie in it.
    unsafe {
        let next = block.byte_add(size);
        let next_word = self::word(next);
        let next_ok = if next_word & USED != 0 {
            (next_word ^ seal(next.addr())) & !(SIZE_MASK | USED) == 0
        } else {
            granules(next_word) <= (pool.sentinel - next.addr()) / GRANULE
        };
        if !next_ok {
            return None;
        }
        if word & PREV_FREE != 0 {
            // Only the footer's address is taken, with the pool's
            // provenance: a forged footer may be any integer.
            let prev = pool.block_at((*footer(block)).addr());
            let span = granules(pool.sentinel - pool.first_block);
            if granules(prev.addr().wrapping_sub(pool.first_block)) > span
                || self::word(prev) != block.addr().wrapping_sub(prev.addr())
            {
                return None;
            }
        }
        Some(next_word)
    }
}

/// All checks of a free; see [`header_ok`] and [`neighbours_ok`].
///
/// # Safety
/// `block` lies in `pool` no further than a minimum block before its
/// sentinel (check 1).
#[inline(always)]
unsafe fn validate(pool: &HotPool, block: *mut Block, need: usize, align: usize) -> Option<Live> {
    // SAFETY: forwarded from the caller.
    unsafe {
        let word = header_ok(block, need, align)?;
        let next_word = neighbours_ok(pool, block, word)?;
        Some(Live {
            block,
            size: word & SIZE_MASK,
            word,
            next_word,
        })
    }
}

/// Whether `word`, read at `block` of a pool whose sentinel is at
/// `sentinel`, is a header that was freed: a free header (a bare size of
/// at least a minimum block that stays in the pool: a free block's, or one
/// a free predecessor absorbed) or one merged into a free predecessor
/// (this address's seal with `USED` cleared). Links and footers never
/// read so: no address, and no list marker (see `lists`), is a bare size.
pub(super) fn reads_freed(word: usize, block: usize, sentinel: usize) -> bool {
    let flags = word & !SIZE_MASK;
    let merged_away = flags & USED == 0 && flags & !(GRANULE - 1) == seal(block);
    let free_header = flags == 0 && word >= MIN_BLOCK && word <= sentinel - block;
    merged_away || free_header
}

impl Tlsf {
    /// Makes the pool holding `addr` the hot pool. `OutOfRange` if no pool
    /// holds it, `NotAllocated` if it is not a payload address of that
    /// pool (misaligned, in front of the first payload, or too close to
    /// the end for a block).
    fn switch_hot_pool(&mut self, addr: usize) -> AllocResult {
        let (_, pool) = self.pools.find(addr).ok_or(AllocError::OutOfRange)?;
        self.hot = HotPool::of(&pool.data);
        if self.hot.holds_payload(addr) {
            Ok(())
        } else {
            Err(AllocError::NotAllocated)
        }
    }

    /// Returns the live block whose payload is at `addr` and that `layout`
    /// describes, after every check (those of the hot path and the
    /// neighbours'), for the cold free, `realloc` and `check_dealloc`:
    /// finds the pool, validates with the exact block size, and on a
    /// refusal reads `DoubleFree` from a header that was freed
    /// ([`reads_freed`]); every other refusal is `NotAllocated`.
    pub(super) fn live_block(&mut self, addr: usize, layout: Layout) -> AllocResult<Live> {
        if !self.hot.holds_payload(addr) {
            self.switch_hot_pool(addr)?;
        }
        let pool = self.hot;
        let block = pool.block_at(addr - HEADER);
        let need = block_size_for(layout.size());
        // SAFETY: `holds_payload` is check 1; then `block` is a readable
        // word of the pool.
        unsafe {
            if let Some(live) = validate(&pool, block, need, layout.align()) {
                return Ok(live);
            }
            let freed = reads_freed(word(block), block.addr(), pool.sentinel);
            Err(if freed {
                AllocError::DoubleFree
            } else {
                AllocError::NotAllocated
            })
        }
    }
}
