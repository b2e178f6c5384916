//! TLSF free and in-place resizing: validating a freed pointer against its
//! boundary tags, coalescing with free physical neighbours, and shrinking
//! or growing a block where it lies.

use core::alloc::Layout;
use core::ptr::NonNull;

use super::block::{
    BlockHeader, FLAGS, FREE, GRANULE, HEADER, MIN_BLOCK, PREV_FREE, block_size_for, granules,
    set_prev_free, set_size_flags, size_flags,
};
use super::{HotPool, Tlsf};
use crate::{AllocError, AllocResult};

impl Tlsf {
    /// Makes the pool holding `addr` the hot pool. `OutOfRange` if no pool
    /// holds it, `NotAllocated` if it is not a payload address of that
    /// pool (misaligned, in front of the first payload, or too close to
    /// the end for a block).
    #[cold]
    #[inline(never)]
    fn switch_hot_pool(&mut self, addr: usize) -> AllocResult {
        let (_, pool) = self.pools.find(addr).ok_or(AllocError::OutOfRange)?;
        self.hot = HotPool::of(&pool.data);
        if self.hot.holds_payload(addr) {
            Ok(())
        } else {
            Err(AllocError::NotAllocated)
        }
    }

    /// Returns the live block whose payload is `ptr` and that `layout`
    /// describes, with its size, after these checks, in this order:
    ///
    /// 1. `ptr` is a payload address of a pool: inside it, granule-aligned
    ///    and with room for a block before the sentinel (the hot pool,
    ///    else the pool table);
    /// 2. the header word in front of it, `PREV_FREE` aside, is the block
    ///    size the layout rounds to, or one granule more (a tail of
    ///    `MIN_BLOCK` or more would have been split off): this also
    ///    refuses a `FREE` bit or an unknown flag, which make the
    ///    difference misaligned;
    /// 3. the block ends inside the pool, and `ptr` meets the layout's
    ///    alignment;
    /// 4. the successor's `prev_phys` points back at the block;
    /// 5. the predecessor (`prev_phys`) lies in the pool in front of the
    ///    block, a whole number of granules away, or is null for the first
    ///    block; if `PREV_FREE` is set, its word reads exactly "free,
    ///    ending at this block".
    ///
    /// Each check is one branch on the common path; only a failing one
    /// works out which error it is (a `FREE` bit: `DoubleFree`). Nothing
    /// outside the pool is read: a header is dereferenced only at an
    /// address checked to lie in it.
    #[inline(always)]
    pub(super) fn live_block(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
    ) -> AllocResult<(*mut BlockHeader, usize)> {
        let addr = ptr.addr().get();
        // 1.
        if !self.hot.holds_payload(addr) {
            self.switch_hot_pool(addr)?;
        }
        let pool = self.hot;
        let block = pool.header_at(addr - HEADER);
        // `block - first_block`: a whole number of granules below `span`.
        let offset = addr - pool.payload_lo;
        // SAFETY: check 1 puts `block` granule-aligned inside
        // `[first_block, sentinel - MIN_BLOCK]`, so a header's worth of pool
        // memory is readable there. What we read may be payload bytes if
        // `ptr` is not a block start; they are only compared, and only
        // addresses checked to lie in the pool are dereferenced.
        unsafe {
            // 2. and 3.
            let word = size_flags(block);
            let block_size = word & !FLAGS;
            let slack = (word & !PREV_FREE).wrapping_sub(block_size_for(layout.size()));
            if granules(slack) >= MIN_BLOCK / GRANULE
                || block_size > pool.span - offset
                || addr & (layout.align() - 1) != 0
            {
                return Err(if word & FREE != 0 {
                    AllocError::DoubleFree
                } else {
                    AllocError::NotAllocated
                });
            }
            // 4.
            if (*block.byte_add(block_size)).prev_phys != block {
                return Err(AllocError::NotAllocated);
            }
            // 5. `block - prev` is a whole number of granules in
            // `[GRANULE, offset]`; unless this is the first block (offset
            // 0), whose `prev_phys` is null and which has no free
            // predecessor.
            let prev = (*block).prev_phys.addr();
            let distance = block.addr().wrapping_sub(prev);
            if granules(distance.wrapping_sub(GRANULE)) >= granules(offset)
                && (prev != 0 || offset != 0 || word & PREV_FREE != 0)
            {
                return Err(AllocError::NotAllocated);
            }
            // The predecessor's header is read only when it is free, and
            // the merge reads it then anyway.
            if word & PREV_FREE != 0 && size_flags(pool.header_at(prev)) != distance | FREE {
                return Err(AllocError::NotAllocated);
            }
            Ok((block, block_size))
        }
    }

    /// Frees an allocated block, coalescing with free physical neighbours.
    ///
    /// # Safety
    /// `block` is a live allocated block of `block_size` bytes.
    #[inline(always)]
    pub(super) unsafe fn free_block(&mut self, block: *mut BlockHeader, block_size: usize) {
        // SAFETY: `block` is live, so its neighbours are valid headers, and
        // a free neighbour's word is exactly `size | FREE`.
        unsafe {
            let word = size_flags(block);
            self.used_payload -= block_size - HEADER;
            let mut merged = block_size;
            let next = block.byte_add(block_size);
            let next_word = size_flags(next);
            if next_word & FREE != 0 {
                // The block after `next` already has PREV_FREE (`next` was
                // free): only its `prev_phys` changes below.
                let next_size = next_word & !FLAGS;
                self.remove_free(next, next_size);
                merged += next_size;
                self.block_count -= 1;
            } else {
                // A plain store of the word already read, not a
                // read-modify-write that would read `next` again.
                set_size_flags(next, next_word | PREV_FREE);
            }
            let mut start = block;
            if word & PREV_FREE != 0 {
                let prev = (*block).prev_phys;
                let prev_size = size_flags(prev) & !FLAGS;
                self.remove_free(prev, prev_size);
                merged += prev_size;
                self.block_count -= 1;
                // The merged-away header keeps FREE, so a second free of
                // the same pointer still reads DoubleFree.
                set_size_flags(block, word | FREE);
                start = prev;
            }
            // `start`'s predecessor is allocated: PREV_FREE stays clear.
            set_size_flags(start, merged | FREE);
            (*start.byte_add(merged)).prev_phys = start;
            self.link_free(start, merged);
        }
    }

    /// Resizes the live `block` of `old_size` bytes to `need` bytes where
    /// it lies, if it can: shrinking always can (a tail of `MIN_BLOCK` or
    /// more is freed), growing can if the successor is free and large
    /// enough. Returns whether it did.
    ///
    /// # Safety
    /// `block` is a live allocated block of `old_size` bytes.
    pub(super) unsafe fn resize_in_place(
        &mut self,
        block: *mut BlockHeader,
        old_size: usize,
        need: usize,
    ) -> bool {
        // SAFETY: `block` is live, so its successor is a valid header (a
        // block or the sentinel); a free successor's word is `size | FREE`.
        unsafe {
            if need <= old_size {
                if old_size - need >= MIN_BLOCK {
                    self.split_off_tail(block, old_size, need);
                }
                return true;
            }
            let next = block.byte_add(old_size);
            let next_word = size_flags(next);
            if next_word & FREE == 0 || old_size + (next_word - FREE) < need {
                return false;
            }
            let grown = old_size + (next_word - FREE);
            self.remove_free(next, next_word - FREE);
            self.block_count -= 1;
            let word = size_flags(block);
            set_size_flags(block, grown | (word & PREV_FREE));
            let end = block.byte_add(grown);
            (*end).prev_phys = block;
            set_prev_free(end, false);
            self.used_payload += grown - old_size;
            if grown - need >= MIN_BLOCK {
                self.split_off_tail(block, grown, need);
            }
            true
        }
    }

    /// Shrinks the allocated `block` of `old_size` bytes to `need` bytes
    /// and frees the tail, merging it with a free successor.
    ///
    /// # Safety
    /// `block` is allocated, of `old_size` bytes, and
    /// `old_size - need >= MIN_BLOCK`.
    unsafe fn split_off_tail(&mut self, block: *mut BlockHeader, old_size: usize, need: usize) {
        // SAFETY: the tail and the successor lie inside the pool of `block`.
        unsafe {
            let word = size_flags(block);
            let next = block.byte_add(old_size);
            let tail = block.byte_add(need);
            let mut tail_size = old_size - need;
            set_size_flags(block, need | (word & PREV_FREE));
            self.used_payload -= tail_size;
            self.block_count += 1;
            let next_word = size_flags(next);
            if next_word & FREE != 0 {
                self.remove_free(next, next_word - FREE);
                self.block_count -= 1;
                tail_size += next_word - FREE;
            }
            (*tail).prev_phys = block;
            set_size_flags(tail, tail_size | FREE);
            let end = tail.byte_add(tail_size);
            (*end).prev_phys = tail;
            set_prev_free(end, true);
            self.link_free(tail, tail_size);
        }
    }
}
