//! The TLSF's exhaustive checks, which trust no single header: the verdict
//! on a free decided by walking the pool's blocks from its first, and a
//! consistency check of the whole heap. Both are O(blocks): for tests,
//! debugging layers and post-mortems, never on the allocation paths.

use core::alloc::Layout;
use core::ptr::NonNull;

use super::block::{
    Block, GRANULE, HEADER, MIN_BLOCK, PREV_FREE, SIZE_MASK, USED, block_size_for, footer,
    mapping_insert, seal, split_index, word,
};
use super::check::reads_freed;
use super::lists::marked_list;
use super::{Tlsf, TlsfPool};
use crate::{AllocError, AllocResult};

/// What the physical walk found at one block.
struct Step {
    block: *mut Block,
    word: usize,
    size: usize,
    used: bool,
}

/// The blocks of `pool` from the first to the sentinel (excluded), each
/// header read once. Stops early at a size that would leave the pool (a
/// corrupted heap), which `check_consistency` then reports.
fn walk(pool: &TlsfPool) -> impl Iterator<Item = Step> + '_ {
    let mut at = pool.first_block;
    core::iter::from_fn(move || {
        if at >= pool.sentinel {
            return None;
        }
        let block = pool.block(at);
        // SAFETY: `at` is the first block or the end of a block whose size
        // kept it inside the pool: a header of the pool.
        let word = unsafe { word(block) };
        let used = word & USED != 0;
        let size = if used { word & SIZE_MASK } else { word };
        if size < MIN_BLOCK || size > pool.sentinel - at {
            at = pool.sentinel;
            return Some(Step {
                block,
                word,
                size: 0,
                used,
            });
        }
        at += size;
        Some(Step {
            block,
            word,
            size,
            used,
        })
    })
}

impl Tlsf {
    /// The exact verdict on freeing `ptr` as `layout`, decided by walking
    /// the blocks of `ptr`'s pool from the first one, so that no word in
    /// front of `ptr` is trusted: `Ok` iff a used block's payload starts
    /// at `ptr`, its size is the one `layout` rounds to (or one granule
    /// more, an unsplit tail) and `ptr` meets `layout`'s alignment;
    /// `DoubleFree` if a free block starts there, or if `ptr` was a block
    /// start that merged into a free block (its old header reads freed);
    /// `OutOfRange` outside every pool; else `NotAllocated`. O(blocks in
    /// the pool). [`dealloc`](crate::ByteAllocator::dealloc) gives the
    /// same verdict unless something other than this allocator wrote, in
    /// front of `ptr`, exactly the header a live block there would carry.
    pub fn verify_dealloc(&self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let addr = ptr.addr().get();
        let (_, entry) = self.pools.find(addr).ok_or(AllocError::OutOfRange)?;
        let pool = &entry.data;
        // The word in front of `addr`, if a block of the pool holds it.
        let Some(at) = addr.checked_sub(HEADER) else {
            return Err(AllocError::NotAllocated);
        };
        for step in walk(pool) {
            let (start, end) = (step.block.addr(), step.block.addr() + step.size);
            if start == at {
                let need = block_size_for(layout.size());
                let fits = (step.size == need || step.size == need + GRANULE)
                    && addr & (layout.align() - 1) == 0;
                return match (step.used, fits) {
                    (true, true) => Ok(()),
                    (true, false) => Err(AllocError::NotAllocated),
                    (false, _) => Err(AllocError::DoubleFree),
                };
            }
            if start < at && at < end {
                // Inside a block: a freed pointer lands there once its
                // block merged into a free neighbour, and its old header
                // may still read as freed (read as `dealloc` reads it).
                let freed = !step.used
                    && addr.is_multiple_of(GRANULE)
                    // SAFETY: `at` lies inside the free block `step`: a
                    // readable word of the pool.
                    && reads_freed(unsafe { word(pool.block(at)) }, at, pool.sentinel);
                return Err(if freed {
                    AllocError::DoubleFree
                } else {
                    AllocError::NotAllocated
                });
            }
            if start > at {
                break;
            }
        }
        Err(AllocError::NotAllocated)
    }

    /// Checks every invariant of the heap by walking every pool and every
    /// free list: the blocks tile each pool from its first block to its
    /// sentinel; used headers carry their seal and no unknown flag;
    /// `PREV_FREE` is set exactly after a free block, whose footer points
    /// at it; no two free blocks are neighbours; every free block is on
    /// the list its size maps to, the lists are well linked and the
    /// bitmaps mirror them; the counters match. Returns the first broken
    /// invariant. O(blocks); for tests and debugging.
    pub fn check_consistency(&self) -> Result<(), &'static str> {
        let (mut used_size, mut used_count, mut blocks, mut free_blocks, mut span) =
            (0, 0, 0, 0, 0);
        for entry in self.pools.iter() {
            let pool = &entry.data;
            let mut prev_free = false;
            let mut end = pool.first_block;
            for step in walk(pool) {
                if step.size == 0 {
                    return Err("a block size leaves its pool");
                }
                let flags = step.word & !SIZE_MASK & !(GRANULE - 1);
                if step.used {
                    if flags != seal(step.block.addr())
                        || step.word & (GRANULE - 1) & !(USED | PREV_FREE) != 0
                    {
                        return Err("a used header is not sealed for its address");
                    }
                    if (step.word & PREV_FREE != 0) != prev_free {
                        return Err("PREV_FREE disagrees with the predecessor");
                    }
                    used_size += step.size;
                    used_count += 1;
                } else {
                    if prev_free {
                        return Err("two free blocks are neighbours");
                    }
                    // SAFETY: the block is free and inside the pool, so the
                    // word in front of its end is its footer slot.
                    if unsafe { *footer(step.block.byte_add(step.size)) } != step.block {
                        return Err("a free block's footer does not point at it");
                    }
                    free_blocks += 1;
                }
                prev_free = !step.used;
                blocks += 1;
                end = step.block.addr() + step.size;
            }
            // SAFETY: the sentinel's word is the pool's last.
            let sentinel = unsafe { word(pool.block(pool.sentinel)) };
            if end != pool.sentinel
                || sentinel & USED == 0
                || (sentinel & PREV_FREE != 0) != prev_free
            {
                return Err("the blocks do not end at the sentinel");
            }
            span += pool.sentinel - pool.first_block;
        }
        let counters = (
            self.used_size,
            self.used_count,
            self.block_count,
            self.pool_span,
        );
        if (used_size, used_count, blocks, span) != counters {
            return Err("the counters disagree with the blocks");
        }
        if self.listed_free_blocks()? != free_blocks {
            return Err("a free block is on no list, or a listed block is not free");
        }
        Ok(())
    }

    /// Walks every free list, checking links, list membership and the
    /// bitmaps; returns how many blocks are listed.
    fn listed_free_blocks(&self) -> Result<usize, &'static str> {
        let mut count = 0;
        for (index, &head) in self.heads.iter().enumerate() {
            let (fl, sl) = split_index(index);
            let listed = self.fl_bitmap & (1 << fl) != 0 && self.sl_bitmap[fl] & (1 << sl) != 0;
            if listed == head.is_null()
                || (self.sl_bitmap[fl] != 0) != (self.fl_bitmap & (1 << fl) != 0)
            {
                return Err("a bitmap bit disagrees with its list");
            }
            let mut prev = None;
            let mut block = head;
            while !block.is_null() {
                // SAFETY: listed blocks are free blocks of a pool.
                let (size, back, next) = unsafe { (word(block), (*block).prev, (*block).next) };
                if size & USED != 0 || mapping_insert(size) != index {
                    return Err("a listed block is used or on the wrong list");
                }
                let expected = prev.map_or(Some(index), |_| None);
                if marked_list(back) != expected || prev.is_some_and(|p| p != back) {
                    return Err("a free list's back link is wrong");
                }
                count += 1;
                prev = Some(block);
                block = next;
            }
        }
        Ok(count)
    }
}
