//! TLSF, the two-level segregated-fit allocator of Masmano et al. (ECRTS
//! 2004): O(1) allocation and free with immediate coalescing, over several
//! disjoint pools. It is the kernel's main heap, which grows by adding pools
//! of pages and gives wholly free pools back ([`Tlsf::take_free_pool`]).
//!
//! A used block carries one word of header, its size, sealed with its own
//! address: `dealloc` validates a pointer by that one word in a handful of
//! instructions (`check`), and the exhaustive checks that trust no header
//! ([`Tlsf::verify_dealloc`], [`Tlsf::check_consistency`]) are there for
//! tests and debugging (`verify`). See `docs/byte-allocators.md` for the
//! block layout, the invariants and what the validation guarantees.

mod block;
mod check;
mod free;
mod hot_pool;
mod lists;
mod ops;
mod verify;

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use self::block::{
    Block, FL_COUNT, GRANULE, HEADER, MAX_BLOCK, MIN_BLOCK, PREV_FREE, SL_COUNT, SLI, USED,
    block_at, footer, seal, set_footer, set_word, word,
};
use self::hot_pool::HotPool;
use crate::byte::pool_table::{PoolEntry, PoolTable};
use crate::{AllocError, AllocResult};

pub use self::block::GRANULE as TLSF_GRANULE;
pub use self::block::HEADER as TLSF_HEADER;
pub use self::block::MIN_BLOCK as TLSF_MIN_BLOCK;

/// Per-pool data: the base pointer every block pointer is derived from,
/// and the addresses of the pool's first block and of its end sentinel
/// (a header word with no block behind it).
#[derive(Clone, Copy, Debug)]
struct TlsfPool {
    base: NonNull<u8>,
    first_block: usize,
    sentinel: usize,
}

impl TlsfPool {
    /// The block whose header is at `addr` in this pool, with the pool's
    /// provenance.
    #[inline(always)]
    fn block(&self, addr: usize) -> *mut Block {
        block_at(self.base.as_ptr(), addr)
    }
}

/// A TLSF allocator. Construct with [`Tlsf::new`], then give it memory
/// with [`Tlsf::add_pool`] or [`BaseAllocator::add_memory`].
///
/// Per-block overhead is [`TLSF_HEADER`] bytes (one word, 8 on 64-bit);
/// blocks are whole [`TLSF_GRANULE`]s (16 bytes on 64-bit) and payloads
/// granule-aligned; the smallest block is [`TLSF_MIN_BLOCK`] bytes (32 on
/// 64-bit), so a 1-byte request gets 24 bytes of payload. Alignment of
/// any power of two is supported. On 64-bit targets a pool is used up to
/// its first 4 GiB (the size bits of a header).
///
/// [`BaseAllocator::add_memory`]: crate::BaseAllocator::add_memory
// The counters updated together on the hot paths are kept apart
// (`repr(C)`, in this order), so the compiler updates each in memory
// rather than loading both into a vector register.
#[repr(C)]
pub struct Tlsf {
    /// Bit `fl` is set iff some list of first level `fl` is non-empty.
    fl_bitmap: usize,
    /// Sum of the sizes of the allocated blocks, headers included.
    used_size: usize,
    hot: HotPool,
    /// Number of allocated blocks.
    used_count: usize,
    /// Number of blocks, free and allocated, over all pools (sentinels not
    /// counted). With the two above and `pool_span` it gives
    /// `used_bytes` and `available_bytes` without a free-bytes counter.
    block_count: usize,
    /// Bit `sl` of `sl_bitmap[fl]` is set iff list `(fl, sl)` is non-empty.
    sl_bitmap: [u32; FL_COUNT],
    /// The list heads, row-major: list `(fl, sl)` at `fl * SL_COUNT + sl`,
    /// which is the flat index the size mapping computes (no multiply).
    heads: [*mut Block; FL_COUNT * SL_COUNT],
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
            used_size: 0,
            used_count: 0,
            block_count: 0,
            hot: HotPool::EMPTY,
            heads: [ptr::null_mut(); FL_COUNT * SL_COUNT],
            pools: PoolTable::new(),
            pool_span: 0,
            total_bytes: 0,
        }
    }

    /// Adds the pool `[pool, pool + size)`. The pool's edges are trimmed so
    /// that payloads are granule-aligned (a word in front of the first
    /// block, and the end sentinel's word, are the pool's own overhead);
    /// on 64-bit targets at most its first 4 GiB are used. It must hold
    /// at least one minimum block besides (`InvalidParam` otherwise).
    /// Overlap with a managed pool is `MemoryOverlap`; more than
    /// [`MAX_POOLS`] pools is `NoMemory`.
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
        // Headers sit one word below a granule boundary, and the first
        // one has a word of the pool in front of it: the footer slot of a
        // predecessor it never has, which holds 0 (outside every pool), so
        // a forged `PREV_FREE` there names no block.
        let front = start
            .checked_next_multiple_of(GRANULE)
            .ok_or(AllocError::InvalidParam)?;
        let first = front.checked_add(HEADER).ok_or(AllocError::InvalidParam)?;
        let limit = (end & !(GRANULE - 1)).saturating_sub(HEADER);
        if limit < first || limit - first < MIN_BLOCK {
            return Err(AllocError::InvalidParam);
        }
        let block_size = (limit - first).min(MAX_BLOCK);
        let sentinel = first + block_size;
        let block = pool.as_ptr().with_addr(first).cast::<Block>();
        // SAFETY: `[front, sentinel + HEADER)` lies inside the caller's
        // pool, which we now own; the front word, the block and the
        // sentinel word all fit (checked above).
        unsafe {
            *footer(block) = ptr::null_mut();
            set_word(block, block_size);
            let end_sentinel = block.byte_add(block_size);
            set_word(end_sentinel, USED | PREV_FREE | seal(sentinel));
            set_footer(block, end_sentinel);
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
            let first = pool.data.block(pool.data.first_block);
            // SAFETY: every pool starts with a valid block header; a free
            // block's word is its size.
            unsafe { word(first) == pool.data.sentinel - pool.data.first_block }
        })?;
        let pool = self.pools.remove(index);
        if self.hot.first_block == pool.data.first_block {
            self.hot = HotPool::EMPTY;
        }
        let first = pool.data.block(pool.data.first_block);
        let block_size = pool.data.sentinel - pool.data.first_block;
        self.total_bytes -= block_size - HEADER;
        self.pool_span -= block_size;
        self.block_count -= 1;
        // SAFETY: `first` is the pool's single free block, on its list.
        unsafe { self.unlink(first) };
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
        self.live_block(ptr.addr().get(), layout).map(drop)
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
                    block = unsafe { (*block).next };
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
        let mut largest = 0;
        if self.fl_bitmap != 0 {
            let fl = (usize::BITS - 1 - self.fl_bitmap.leading_zeros()) as usize;
            let sl = (u32::BITS - 1 - self.sl_bitmap[fl].leading_zeros()) as usize;
            // SAFETY: a set bit of each bitmap names a list in bounds.
            let mut block = unsafe { self.head(fl << SLI | sl) };
            while !block.is_null() {
                // SAFETY: blocks on free lists are valid free blocks, whose
                // word is their size.
                unsafe {
                    largest = largest.max(word(block));
                    block = (*block).next;
                }
            }
        }
        largest.saturating_sub(HEADER)
    }
}
