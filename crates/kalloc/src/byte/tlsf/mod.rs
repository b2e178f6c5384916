//! TLSF, the two-level segregated-fit allocator of Masmano et al. (ECRTS
//! 2004): O(1) allocation and free with immediate coalescing, over several
//! disjoint pools. It is the kernel's main heap, which grows by adding pools
//! of pages and gives wholly free pools back ([`Tlsf::take_free_pool`]).
//!
//! See `docs/byte-allocators.md` for the block layout and invariants.

mod block;
mod ops;

use core::ptr::{self, NonNull};

use self::block::{
    BlockHeader, FL_COUNT, HEADER, MIN_BLOCK, SL_COUNT, init, is_free, links, mapping_insert,
    mapping_search, set, set_prev_free, size,
};
use crate::byte::pool_table::{PoolEntry, PoolTable};
use crate::{AllocError, AllocResult};

pub use self::block::GRANULE as TLSF_GRANULE;
pub use self::block::HEADER as TLSF_HEADER;
pub use self::block::MIN_BLOCK as TLSF_MIN_BLOCK;

/// Per-pool data: the base pointer every block pointer is derived from,
/// and the pool's first block and end sentinel.
#[derive(Clone, Copy, Debug)]
struct TlsfPool {
    base: NonNull<u8>,
    first_block: usize,
    sentinel: usize,
}

/// A TLSF allocator. Construct with [`Tlsf::new`], then give it memory
/// with [`Tlsf::add_pool`] or [`BaseAllocator::add_memory`].
///
/// Per-block overhead is [`TLSF_HEADER`] bytes (16 on 64-bit); the
/// smallest block is [`TLSF_MIN_BLOCK`] bytes (32 on 64-bit), so a 1-byte
/// request uses 16 bytes of payload. Alignment of any power of two is
/// supported.
///
/// [`BaseAllocator::add_memory`]: crate::BaseAllocator::add_memory
pub struct Tlsf {
    /// Bit `fl` is set iff some list of first level `fl` is non-empty.
    fl_bitmap: usize,
    /// Bit `sl` of `sl_bitmap[fl]` is set iff `heads[fl][sl]` is non-null.
    sl_bitmap: [u32; FL_COUNT],
    heads: [[*mut BlockHeader; SL_COUNT]; FL_COUNT],
    pools: PoolTable<TlsfPool>,
    /// Sum over free blocks of their size minus the header.
    free_payload: usize,
    /// Sum over allocated blocks of their size minus the header.
    used_payload: usize,
    total_bytes: usize,
}

// SAFETY: the allocator exclusively owns the pools it was given (the
// `add_memory` contract); its raw pointers point only into them, so moving
// it to another thread moves that ownership with it.
unsafe impl Send for Tlsf {}

impl Default for Tlsf {
    fn default() -> Self {
        Self::new()
    }
}

impl Tlsf {
    /// An allocator with no memory.
    pub const fn new() -> Self {
        Self {
            fl_bitmap: 0,
            sl_bitmap: [0; FL_COUNT],
            heads: [[ptr::null_mut(); SL_COUNT]; FL_COUNT],
            pools: PoolTable::new(),
            free_payload: 0,
            used_payload: 0,
            total_bytes: 0,
        }
    }

    /// Adds the pool `[pool, pool + size)`. The pool's edges are trimmed to
    /// the granule; it must hold at least one minimum block plus the end
    /// sentinel (`InvalidParam` otherwise). Overlap with a managed pool is
    /// `MemoryOverlap`; more than [`MAX_POOLS`] pools is `NoMemory`.
    ///
    /// # Safety
    /// `[pool, pool + size)` is valid, writable memory that nothing else
    /// uses while this allocator manages it.
    ///
    /// [`MAX_POOLS`]: crate::byte::MAX_POOLS
    pub unsafe fn add_pool(&mut self, pool: NonNull<u8>, size: usize) -> AllocResult {
        let start = pool.addr().get();
        let end = start.checked_add(size).ok_or(AllocError::InvalidParam)?;
        self.pools.check_insert(start, end)?;
        let first = start
            .checked_next_multiple_of(block::GRANULE)
            .ok_or(AllocError::InvalidParam)?;
        let limit = end & !(block::GRANULE - 1);
        if limit < first || limit - first < MIN_BLOCK + HEADER {
            return Err(AllocError::InvalidParam);
        }
        let block_size = limit - first - HEADER;
        let sentinel = first + block_size;
        let block = pool.as_ptr().with_addr(first).cast::<BlockHeader>();
        // SAFETY: `[first, limit)` lies inside the caller's pool, which we now
        // own; the block and the sentinel header both fit (checked above).
        unsafe {
            (*block).prev_phys = ptr::null_mut();
            init(block, block_size, false, false);
            let end_sentinel = block.byte_add(block_size);
            (*end_sentinel).prev_phys = block;
            init(end_sentinel, 0, false, false);
            self.insert_free(block);
        }
        self.total_bytes += block_size - HEADER;
        self.pools.insert(PoolEntry {
            start,
            end,
            data: TlsfPool {
                base: pool,
                first_block: first,
                sentinel,
            },
        });
        Ok(())
    }

    /// Removes one pool that is entirely free and returns it as it was
    /// given to `add_pool` (pointer and size), so the kernel can give its
    /// pages back. `None` if no pool is wholly free. O(number of pools).
    pub fn take_free_pool(&mut self) -> Option<(NonNull<u8>, usize)> {
        let index = self.pools.iter().position(|pool| {
            let first = pool
                .data
                .base
                .as_ptr()
                .with_addr(pool.data.first_block)
                .cast();
            // SAFETY: every pool starts with a valid block header.
            unsafe { is_free(first) && size(first) == pool.data.sentinel - pool.data.first_block }
        })?;
        let pool = self.pools.remove(index);
        let first = pool
            .data
            .base
            .as_ptr()
            .with_addr(pool.data.first_block)
            .cast();
        // SAFETY: `first` is the pool's single free block, on its free list.
        unsafe {
            self.total_bytes -= size(first) - HEADER;
            self.remove_free(first);
        }
        Some((pool.data.base, pool.end - pool.start))
    }

    /// Number of pools under management.
    pub fn pool_count(&self) -> usize {
        self.pools.len()
    }

    /// Number of free blocks (after freeing everything, one per pool).
    /// Walks every free list (not counted on the hot paths): statistics
    /// only.
    pub fn free_block_count(&self) -> usize {
        let mut count = 0;
        for (fl, row) in self.heads.iter().enumerate() {
            if self.fl_bitmap & (1 << fl) == 0 {
                continue;
            }
            for &head in row {
                let mut block = head;
                while !block.is_null() {
                    count += 1;
                    // SAFETY: blocks on free lists are valid free blocks.
                    block = unsafe { (*links(block)).next };
                }
            }
        }
        count
    }

    /// The largest payload a single allocation could get right now (with
    /// alignment up to the granule). Walks one free list, the highest
    /// non-empty one, so it is meant for statistics and heap-growth
    /// decisions, not for the allocation path.
    pub fn largest_free_block(&self) -> usize {
        if self.fl_bitmap == 0 {
            return 0;
        }
        let fl = (usize::BITS - 1 - self.fl_bitmap.leading_zeros()) as usize;
        let sl = (u32::BITS - 1 - self.sl_bitmap[fl].leading_zeros()) as usize;
        let mut largest = 0;
        let mut block = self.heads[fl][sl];
        while !block.is_null() {
            // SAFETY: blocks on free lists are valid free blocks.
            unsafe {
                largest = largest.max(size(block));
                block = (*links(block)).next;
            }
        }
        largest - HEADER
    }

    /// Pushes `block` on the free list of its size, marks it free and
    /// tells its successor.
    ///
    /// # Safety
    /// `block` is a valid block of at least `MIN_BLOCK` bytes, not on a list.
    #[inline]
    unsafe fn insert_free(&mut self, block: *mut BlockHeader) {
        // SAFETY: the caller guarantees `block` is a valid block, so its
        // successor is a valid header.
        unsafe {
            let block_size = size(block);
            set(block, block_size, true);
            set_prev_free(block.byte_add(block_size), true);
            self.link_free(block, block_size);
        }
    }

    /// Pushes `block` on the free list for `block_size` and counts it; the
    /// caller has already written its header (FREE set) and its
    /// successor's `PREV_FREE`.
    ///
    /// # Safety
    /// `block` is a free block of `block_size >= MIN_BLOCK` bytes, not on
    /// a list.
    #[inline(always)]
    unsafe fn link_free(&mut self, block: *mut BlockHeader, block_size: usize) {
        let (fl, sl) = mapping_insert(block_size);
        // SAFETY: the caller guarantees a free block with room for links;
        // the old head is a listed free block.
        unsafe {
            let head = self.heads[fl][sl];
            *links(block) = block::FreeLinks {
                next: head,
                prev: ptr::null_mut(),
            };
            if !head.is_null() {
                (*links(head)).prev = block;
            }
        }
        self.heads[fl][sl] = block;
        self.fl_bitmap |= 1 << fl;
        self.sl_bitmap[fl] |= 1 << sl;
        self.free_payload += block_size - HEADER;
    }

    /// Pops `block`, the head of list `(fl, sl)` as `find_suitable`
    /// returned it, without recomputing its list.
    ///
    /// # Safety
    /// `block` heads the list `heads[fl][sl]`.
    #[inline(always)]
    unsafe fn pop_head(&mut self, block: *mut BlockHeader, fl: usize, sl: usize) {
        // SAFETY: the caller guarantees a listed head; its successor, if
        // any, is a listed free block.
        unsafe {
            let next = (*links(block)).next;
            self.heads[fl][sl] = next;
            if next.is_null() {
                self.sl_bitmap[fl] &= !(1 << sl);
                if self.sl_bitmap[fl] == 0 {
                    self.fl_bitmap &= !(1 << fl);
                }
            } else {
                (*links(next)).prev = ptr::null_mut();
            }
            self.free_payload -= size(block) - HEADER;
        }
    }

    /// Unlinks `block` from its free list (its free flag is left for the
    /// caller to rewrite).
    ///
    /// # Safety
    /// `block` is on a free list.
    #[inline(always)]
    unsafe fn remove_free(&mut self, block: *mut BlockHeader) {
        // SAFETY: the caller guarantees `block` is a listed free block, so
        // its links and its neighbours' links are valid.
        unsafe {
            let block_size = size(block);
            let block::FreeLinks { next, prev } = *links(block);
            if !next.is_null() {
                (*links(next)).prev = prev;
            }
            if prev.is_null() {
                let (fl, sl) = mapping_insert(block_size);
                self.heads[fl][sl] = next;
                if next.is_null() {
                    self.sl_bitmap[fl] &= !(1 << sl);
                    if self.sl_bitmap[fl] == 0 {
                        self.fl_bitmap &= !(1 << fl);
                    }
                }
            } else {
                (*links(prev)).next = next;
            }
            self.free_payload -= block_size - HEADER;
        }
    }

    /// The head of the first non-empty list whose blocks all hold
    /// `search` bytes, with that list's indices: two find-first-set
    /// operations.
    #[inline(always)]
    fn find_suitable(&self, search: usize) -> Option<(*mut BlockHeader, usize, usize)> {
        let (fl, sl) = mapping_search(search)?;
        let sl_map = self.sl_bitmap[fl] & (u32::MAX << sl);
        let (fl, sl_map) = if sl_map != 0 {
            (fl, sl_map)
        } else {
            let above = self.fl_bitmap & usize::MAX.checked_shl(fl as u32 + 1).unwrap_or(0);
            if above == 0 {
                return None;
            }
            let fl = above.trailing_zeros() as usize;
            (fl, self.sl_bitmap[fl])
        };
        let sl = sl_map.trailing_zeros() as usize;
        Some((self.heads[fl][sl], fl, sl))
    }
}
