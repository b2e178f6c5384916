//! TLSF free and in-place resizing: coalescing with free physical
//! neighbours, and shrinking or growing a block where it lies. Validation
//! is in `check`.

use core::alloc::Layout;
use core::ptr::NonNull;

use super::Tlsf;
use super::block::{
    Block, HEADER, MIN_BLOCK, PREV_FREE, SIZE_MASK, USED, footer, rounded_size, set_footer,
    set_word, used_word, word,
};
use super::check::{Live, header_ok, neighbours_ok};
use crate::AllocResult;

impl Tlsf {
    /// The free itself: checks 1 to 3a on the hot path, then the merge;
    /// anything else (another pool, a refusal, the one block the hot path
    /// rounds wrongly: a 48-byte block serving 8 bytes or fewer, whose
    /// layout the hot path rounds to 16 bytes instead of the 32 of a
    /// minimum block) goes to [`Tlsf::dealloc_cold`]. A header that passed
    /// check 2 was written by this allocator for this block, and so were
    /// its neighbours, so the neighbour checks (3b to 5) run on the hot
    /// path in debug builds only, where they refuse a sealed forgery whose
    /// neighbours disagree; the cold paths always run them.
    #[inline(always)]
    pub(super) fn dealloc_block(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let addr = ptr.addr().get();
        if self.hot.holds_payload(addr) {
            let block = self.hot.block_at(addr - HEADER);
            // SAFETY: `holds_payload` is check 1.
            let word = unsafe { header_ok(block, rounded_size(layout.size()), layout.align()) };
            if let Some(word) = word {
                let size = word & SIZE_MASK;
                let next_word = if cfg!(debug_assertions) {
                    // SAFETY: as above.
                    unsafe { neighbours_ok(&self.hot, block, word) }
                } else {
                    // SAFETY: a sealed header is the block's own, so its
                    // successor is a header of the pool.
                    Some(unsafe { self::word(block.byte_add(size)) })
                };
                if let Some(next_word) = next_word {
                    // SAFETY: a block that passed the checks is live.
                    unsafe { self.free_block(block, word, next_word) };
                    return Ok(());
                }
            }
        }
        self.dealloc_cold(addr, layout)
    }

    /// [`Tlsf::dealloc_block`] off the hot path.
    #[cold]
    #[inline(never)]
    fn dealloc_cold(&mut self, addr: usize, layout: Layout) -> AllocResult {
        let live = self.live_block(addr, layout)?;
        // SAFETY: `live` passed every check.
        unsafe { self.free_block(live.block, live.word, live.next_word) };
        Ok(())
    }

    /// Frees a validated block, coalescing with free physical neighbours.
    ///
    /// # Safety
    /// `block` is a live block whose header word is `word` and whose
    /// successor's is `next_word`.
    #[inline(always)]
    pub(super) unsafe fn free_block(&mut self, block: *mut Block, word: usize, next_word: usize) {
        let size = word & SIZE_MASK;
        // SAFETY: `block` is live, so its neighbours are valid headers, a
        // free neighbour's word is its size, and a free predecessor's
        // footer is in front of `block`.
        unsafe {
            self.used_size -= size;
            self.used_count -= 1;
            let end = self.absorb_next(block.byte_add(size), next_word);
            let mut start = block;
            if word & PREV_FREE != 0 {
                let prev = *footer(block);
                self.unlink(prev);
                self.block_count -= 1;
                // The merged-away header loses USED, so a second free of
                // the same pointer still reads DoubleFree.
                set_word(block, word & !USED);
                start = prev;
            }
            let merged = end.addr() - start.addr();
            set_word(start, merged);
            set_footer(start, end);
            self.link_free(start, merged);
        }
    }

    /// Resizes the live block to `need` bytes where it lies, if it can:
    /// shrinking always can (a tail of `MIN_BLOCK` or more is freed),
    /// growing can if the successor is free and large enough. Returns
    /// whether it did.
    ///
    /// # Safety
    /// `live` was returned by [`Tlsf::live_block`] and nothing changed
    /// since.
    pub(super) unsafe fn resize_in_place(&mut self, live: Live, need: usize) -> bool {
        let Live {
            block,
            size: old_size,
            word,
            next_word,
        } = live;
        // SAFETY: `block` is live, so its successor is a valid header (a
        // block or the sentinel); a free successor's word is its size.
        unsafe {
            if need <= old_size {
                if old_size - need >= MIN_BLOCK {
                    self.split_off_tail(block, old_size, need, next_word);
                }
                return true;
            }
            if next_word & USED != 0 || old_size + next_word < need {
                return false;
            }
            let next = block.byte_add(old_size);
            let grown = old_size + next_word;
            self.unlink(next);
            self.block_count -= 1;
            self.used_size += grown - old_size;
            let end = block.byte_add(grown);
            let end_word = self::word(end) & !PREV_FREE;
            set_word(end, end_word);
            set_word(block, used_word(block.addr(), grown) | (word & PREV_FREE));
            if grown - need >= MIN_BLOCK {
                self.split_off_tail(block, grown, need, end_word);
            }
            true
        }
    }

    /// Shrinks the allocated `block` of `old_size` bytes to `need` bytes
    /// and frees the tail, merging it with a free successor.
    ///
    /// # Safety
    /// `block` is allocated, of `old_size` bytes, its successor's word is
    /// `next_word`, and `old_size - need >= MIN_BLOCK`.
    unsafe fn split_off_tail(
        &mut self,
        block: *mut Block,
        old_size: usize,
        need: usize,
        next_word: usize,
    ) {
        // SAFETY: the tail and the successor lie inside the pool of `block`.
        unsafe {
            let prev_free = word(block) & PREV_FREE;
            let next = block.byte_add(old_size);
            let tail = block.byte_add(need);
            set_word(block, used_word(block.addr(), need) | prev_free);
            self.used_size -= old_size - need;
            self.block_count += 1;
            let end = self.absorb_next(next, next_word);
            let tail_size = end.addr() - tail.addr();
            set_word(tail, tail_size);
            set_footer(tail, end);
            self.link_free(tail, tail_size);
        }
    }

    /// Joins `next`, the successor of a block being freed, to that block's
    /// free run: unlinks it if it is free, else marks it `PREV_FREE`.
    /// Returns where the free run ends.
    ///
    /// # Safety
    /// `next` is a valid header (a block or the sentinel) whose word is
    /// `next_word`; a free `next` is on its list.
    #[inline(always)]
    unsafe fn absorb_next(&mut self, next: *mut Block, next_word: usize) -> *mut Block {
        // SAFETY: the caller's guarantees; a free successor's word is its
        // size.
        unsafe {
            if next_word & USED == 0 {
                // The block after `next` already has PREV_FREE: only the
                // footer moves.
                self.unlink(next);
                self.block_count -= 1;
                next.byte_add(next_word)
            } else {
                // A plain store of the word already read, not a
                // read-modify-write that would read `next` again.
                set_word(next, next_word | PREV_FREE);
                next
            }
        }
    }
}
