//! TLSF, the two-level segregated-fit allocator of Masmano et al. (ECRTS
//! 2004): O(1) allocation and free with immediate coalescing, over several
//! disjoint pools. It is the kernel's main heap, which grows by adding pools
//! of pages and gives wholly free pools back ([`Tlsf::take_free_pool`]).
//!
//! See `docs/byte-allocators.md` for the block layout and invariants.

mod block;
mod free;
mod hot_pool;
mod ops;

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use self::block::{
    BlockHeader, FL_COUNT, FREE, HEADER, MIN_BLOCK, SL_COUNT, SLI, is_free, links, mapping_insert,
    mapping_search, set_size_flags, size,
};
use self::hot_pool::HotPool;
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
    /// Bit `sl` of `sl_bitmap[fl]` is set iff list `(fl, sl)` is non-empty.
    sl_bitmap: [u32; FL_COUNT],
    /// Sum over allocated blocks of their size minus the header.
    used_payload: usize,
    /// Number of blocks, free and allocated, over all pools (sentinels not
    /// counted). With `used_payload` and `pool_span` it gives
    /// `available_bytes` without a free-bytes counter on the hot paths.
    block_count: usize,
    hot: HotPool,
    /// The list heads, row-major: list `(fl, sl)` at `fl * SL_COUNT + sl`,
    /// which is the flat index the size mapping computes (no multiply).
    heads: [*mut BlockHeader; FL_COUNT * SL_COUNT],
    pools: PoolTable<TlsfPool>,
    /// Sum over pools of the bytes their blocks tile (first block to
    /// sentinel).
    pool_span: usize,
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
            used_payload: 0,
            block_count: 0,
            hot: HotPool::EMPTY,
            heads: [ptr::null_mut(); FL_COUNT * SL_COUNT],
            pools: PoolTable::new(),
            pool_span: 0,
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
            set_size_flags(block, block_size | FREE);
            let end_sentinel = block.byte_add(block_size);
            (*end_sentinel).prev_phys = block;
            set_size_flags(end_sentinel, block::PREV_FREE);
            self.link_free(block, block_size);
        }
        self.total_bytes += block_size - HEADER;
        self.pool_span += block_size;
        self.block_count += 1;
        let data = TlsfPool {
            base: pool,
            first_block: first,
            sentinel,
        };
        if self.hot.base.is_null() {
            self.hot = HotPool::of(&data);
        }
        self.pools.insert(PoolEntry { start, end, data });
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
        if self.hot.first_block == pool.data.first_block {
            self.hot = HotPool::EMPTY;
        }
        let first = pool
            .data
            .base
            .as_ptr()
            .with_addr(pool.data.first_block)
            .cast();
        // SAFETY: `first` is the pool's single free block, on its free list.
        unsafe {
            let block_size = size(first);
            self.total_bytes -= block_size - HEADER;
            self.pool_span -= block_size;
            self.block_count -= 1;
            self.remove_free(first, block_size);
        }
        Some((pool.data.base, pool.end - pool.start))
    }

    /// The verdict [`dealloc`](crate::ByteAllocator::dealloc) would give
    /// for `ptr` and `layout`, without freeing anything: `Ok` for a live
    /// block of this layout, else the same error. A caller that remembers
    /// a block it freed can ask whether a second free would be refused
    /// without risking one that is accepted (the address handed out
    /// again).
    ///
    /// # Safety
    /// As for [`ByteAllocator::dealloc`](crate::ByteAllocator::dealloc),
    /// except that the block is not freed: if `ptr` lies inside memory
    /// this allocator manages, it is a pointer the allocator returned
    /// (possibly freed since).
    pub unsafe fn check_dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        self.live_block(ptr, layout).map(drop)
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
        for (fl, row) in self.heads.chunks(SL_COUNT).enumerate() {
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
        // SAFETY: a set bit of each bitmap names a list in bounds.
        let mut block = unsafe { self.head(fl, sl) };
        while !block.is_null() {
            // SAFETY: blocks on free lists are valid free blocks.
            unsafe {
                largest = largest.max(size(block));
                block = (*links(block)).next;
            }
        }
        largest - HEADER
    }

    /// The head of list `(fl, sl)`, read without a bounds check.
    ///
    /// # Safety
    /// `fl < FL_COUNT` and `sl < SL_COUNT`: true of every index that
    /// `mapping_insert`/`mapping_search` return (see `block`) or that a set
    /// bitmap bit names.
    #[inline(always)]
    unsafe fn head(&self, fl: usize, sl: usize) -> *mut BlockHeader {
        debug_assert!(fl < FL_COUNT && sl < SL_COUNT);
        // SAFETY: in bounds (the caller's guarantee).
        unsafe { *self.heads.get_unchecked(fl << SLI | sl) }
    }

    /// Sets the head of list `(fl, sl)`.
    ///
    /// # Safety
    /// As for [`Tlsf::head`].
    #[inline(always)]
    unsafe fn set_head(&mut self, fl: usize, sl: usize, block: *mut BlockHeader) {
        debug_assert!(fl < FL_COUNT && sl < SL_COUNT);
        // SAFETY: in bounds (the caller's guarantee).
        unsafe { *self.heads.get_unchecked_mut(fl << SLI | sl) = block }
    }

    /// The second-level bitmap of row `fl`.
    ///
    /// # Safety
    /// `fl < FL_COUNT`, as for [`Tlsf::head`].
    #[inline(always)]
    unsafe fn row(&self, fl: usize) -> u32 {
        debug_assert!(fl < FL_COUNT);
        // SAFETY: in bounds (the caller's guarantee).
        unsafe { *self.sl_bitmap.get_unchecked(fl) }
    }

    /// Sets the second-level bitmap of row `fl`.
    ///
    /// # Safety
    /// `fl < FL_COUNT`, as for [`Tlsf::head`].
    #[inline(always)]
    unsafe fn set_row(&mut self, fl: usize, row: u32) {
        debug_assert!(fl < FL_COUNT);
        // SAFETY: in bounds (the caller's guarantee).
        unsafe { *self.sl_bitmap.get_unchecked_mut(fl) = row }
    }

    /// Pushes the free block `block` on the free list for `block_size`;
    /// the caller has already written its header (`block_size | FREE`) and
    /// its successor's `PREV_FREE`. The bitmaps change only when the list
    /// was empty.
    ///
    /// # Safety
    /// `block` is a free block of `block_size >= MIN_BLOCK` bytes, not on
    /// a list.
    #[inline(always)]
    unsafe fn link_free(&mut self, block: *mut BlockHeader, block_size: usize) {
        let (fl, sl) = mapping_insert(block_size);
        // SAFETY: the caller guarantees a free block with room for links;
        // the old head, if any, is a listed free block; `mapping_insert`
        // returns indices in bounds.
        unsafe {
            let head = self.head(fl, sl);
            *links(block) = block::FreeLinks {
                next: head,
                prev: ptr::null_mut(),
            };
            if head.is_null() {
                self.fl_bitmap |= 1 << fl;
                self.set_row(fl, self.row(fl) | 1 << sl);
            } else {
                (*links(head)).prev = block;
            }
            self.set_head(fl, sl, block);
        }
    }

    /// Pops `block`, the head of list `(fl, sl)` as `find_suitable`
    /// returned it, without recomputing its list.
    ///
    /// # Safety
    /// `block` heads the list `heads[fl][sl]` (so the indices are in bounds).
    #[inline(always)]
    unsafe fn pop_head(&mut self, block: *mut BlockHeader, fl: usize, sl: usize) {
        // SAFETY: the caller guarantees a listed head; its successor, if
        // any, is a listed free block.
        unsafe {
            let next = (*links(block)).next;
            self.set_head(fl, sl, next);
            if next.is_null() {
                self.clear_list_bit(fl, sl);
            } else {
                (*links(next)).prev = ptr::null_mut();
            }
        }
    }

    /// Marks list `(fl, sl)` empty in both bitmaps.
    ///
    /// # Safety
    /// As for [`Tlsf::head`].
    #[inline(always)]
    unsafe fn clear_list_bit(&mut self, fl: usize, sl: usize) {
        // SAFETY: forwarded from the caller.
        let row = unsafe { self.row(fl) } & !(1 << sl);
        // SAFETY: forwarded from the caller.
        unsafe { self.set_row(fl, row) };
        if row == 0 {
            self.fl_bitmap &= !(1 << fl);
        }
    }

    /// Unlinks `block` (of `block_size` bytes) from its free list; its
    /// header is left for the caller to rewrite.
    ///
    /// # Safety
    /// `block` is on a free list and `block_size` is its size.
    #[inline(always)]
    unsafe fn remove_free(&mut self, block: *mut BlockHeader, block_size: usize) {
        // SAFETY: the caller guarantees `block` is a listed free block, so
        // its links and its neighbours' links are valid.
        unsafe {
            let block::FreeLinks { next, prev } = *links(block);
            if !next.is_null() {
                (*links(next)).prev = prev;
            }
            if prev.is_null() {
                let (fl, sl) = mapping_insert(block_size);
                self.set_head(fl, sl, next);
                if next.is_null() {
                    self.clear_list_bit(fl, sl);
                }
            } else {
                (*links(prev)).next = next;
            }
        }
    }

    /// The head of the first non-empty list whose blocks all hold
    /// `search` bytes, with that list's indices: two find-first-set
    /// operations.
    #[inline(always)]
    fn find_suitable(&self, search: usize) -> Option<(*mut BlockHeader, usize, usize)> {
        let (fl, sl) = mapping_search(search)?;
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
            let sl = sl_map.trailing_zeros() as usize;
            Some((self.head(fl, sl), fl, sl))
        }
    }
}
