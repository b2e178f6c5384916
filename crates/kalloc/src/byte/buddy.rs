//! A binary buddy byte allocator: blocks of `16 << order` bytes, naturally
//! aligned, split on allocation and merged with their buddy on free. Kept
//! simple on purpose: it is the reference for internal fragmentation.
//!
//! Each pool starts with a tag array, one byte per 16-byte unit (1/17 of
//! the pool): zero inside a block, else "free" or "allocated" and the
//! order of the block starting there (`buddy/pool.rs`). Whether a freed
//! pointer is a live block of the layout's order, and whether its buddy
//! is a free block of the same order, is one tag load and compare each, so
//! free and merge never scan a list: O(MAX_ORDER) in all. Free blocks sit
//! on doubly linked lists, one per order, with a bitmap of the non-empty
//! ones (find-first-set picks the order to split).

use core::alloc::Layout;
use core::ptr::{self, NonNull};

mod lists;
mod pool;
mod traits;

use self::pool::{ALLOCATED, BuddyPool, FREE, NO_BLOCK};
use crate::byte::pool_table::{PoolEntry, PoolTable};
use crate::{AllocError, AllocResult};

/// The base unit: the smallest block, and the granule of every block.
pub const BUDDY_UNIT: usize = 16;
const UNIT_LOG2: u32 = BUDDY_UNIT.trailing_zeros();
/// Orders `0..ORDERS`: a block of order `k` is `BUDDY_UNIT << k` bytes, up
/// to 2^63 bytes. Two buddies of the top order would span the whole
/// address space, so a merge never goes past it.
const ORDERS: usize = (usize::BITS - UNIT_LOG2) as usize;

/// Links of a free block, in its first unit.
#[repr(C)]
struct FreeNode {
    next: *mut FreeNode,
    prev: *mut FreeNode,
}

/// One list head per bit of the `nonempty` word (orders only reach
/// `ORDERS - 1`): indexing by `order % HEADS` needs no bounds check.
const HEADS: usize = usize::BITS as usize;

/// The binary buddy byte allocator.
pub struct BuddyByteAllocator {
    /// Free lists, doubly linked through the blocks' first units. The
    /// head's `prev` is stale: `unlink` tells a head by comparing with
    /// `heads`, so a pop need not touch the next block.
    heads: [*mut FreeNode; HEADS],
    /// Bit `k` is set if `heads[k]` is non-empty. A list emptied by a pop
    /// keeps its bit until an allocation that looks there clears it, so
    /// neither the pop nor the push onto a non-empty list touches this.
    nonempty: usize,
    /// The pool of the last address looked up (the only one, with one
    /// pool): checked before the binary search of `pools`.
    recent: BuddyPool,
    pools: PoolTable<BuddyPool>,
    /// Bytes of the blocks handed out; the rest of `total_bytes` is free.
    used_bytes: usize,
    total_bytes: usize,
}

// SAFETY: the allocator exclusively owns its pools (the `add_memory`
// contract) and its raw pointers only point into them.
unsafe impl Send for BuddyByteAllocator {}

impl Default for BuddyByteAllocator {
    fn default() -> Self {
        Self::new()
    }
}

/// The order serving `layout`: the smallest block covering both its size
/// and its alignment (blocks are naturally aligned).
#[inline(always)]
fn order_for(layout: Layout) -> Option<usize> {
    let bytes = layout.size().max(layout.align());
    // `bytes >= 1` (the alignment is); or-ing in the unit mask makes
    // everything up to one unit order 0 (and the operand non-zero).
    let order = (((bytes - 1) | (BUDDY_UNIT - 1)).ilog2() + 1 - UNIT_LOG2) as usize;
    (order < ORDERS).then_some(order)
}

#[inline(always)]
const fn block_bytes(order: usize) -> usize {
    BUDDY_UNIT << order
}

impl BuddyByteAllocator {
    /// An allocator with no memory.
    pub const fn new() -> Self {
        Self {
            heads: [ptr::null_mut(); HEADS],
            nonempty: 0,
            recent: BuddyPool::EMPTY,
            pools: PoolTable::new(),
            used_bytes: 0,
            total_bytes: 0,
        }
    }

    /// Adds the pool `[pool, pool + size)`: its tags go at its start, the
    /// rest is carved into maximal naturally aligned blocks.
    /// `InvalidParam` if no unit fits; `MemoryOverlap`, `NoMemory` (pool
    /// table full) as for [`Tlsf::add_pool`](crate::byte::Tlsf::add_pool).
    ///
    /// # Safety
    /// `[pool, pool + size)` is valid, writable memory that nothing else
    /// uses while this allocator manages it.
    pub unsafe fn add_pool(&mut self, pool: NonNull<u8>, size: usize) -> AllocResult {
        let start = pool.addr().get();
        let end = start.checked_add(size).ok_or(AllocError::InvalidParam)?;
        self.pools.check_insert(start, end)?;
        let first = start
            .checked_next_multiple_of(BUDDY_UNIT)
            .ok_or(AllocError::InvalidParam)?;
        let limit = end & !(BUDDY_UNIT - 1);
        // Each unit costs 16 data bytes plus its tag byte, and the tags are
        // padded to a unit: `17 * units + 15 <= span` always fits. The
        // units end at `limit`, so the slack (under 32 bytes) sits between
        // the tags and the units, where blocks are small anyway, and the
        // top of the pool keeps its largest aligned blocks.
        let span = limit.saturating_sub(first);
        let units = span.saturating_sub(BUDDY_UNIT - 1) / (BUDDY_UNIT + 1);
        if units == 0 {
            return Err(AllocError::InvalidParam);
        }
        let data_start = limit - (units << UNIT_LOG2);
        debug_assert!(first + units.next_multiple_of(BUDDY_UNIT) <= data_start);
        let tags = pool.as_ptr().with_addr(first);
        // SAFETY: the tags occupy `[first, first + units)` inside the pool;
        // all zero: no block starts yet.
        unsafe { ptr::write_bytes(tags, NO_BLOCK, units) };
        let data = BuddyPool {
            data_start,
            units,
            tags,
        };
        let mut addr = data_start;
        while addr < limit {
            let align_order = (addr.trailing_zeros() - UNIT_LOG2) as usize;
            let fit_order = ((limit - addr).ilog2() - UNIT_LOG2) as usize;
            let order = align_order.min(fit_order);
            // SAFETY: the block `[addr, addr + 16 << order)` lies in the
            // data area, and on no list yet.
            unsafe { self.push_free(&data, (addr - data_start) >> UNIT_LOG2, addr, order) };
            addr += block_bytes(order);
        }
        self.total_bytes += units << UNIT_LOG2;
        self.pools.insert(PoolEntry { start, end, data });
        self.recent = data;
        Ok(())
    }

    /// Number of free blocks per order, lowest first (like buddyinfo).
    pub fn free_blocks_per_order(&self, out: &mut [usize]) {
        for (order, slot) in out.iter_mut().enumerate().take(ORDERS) {
            let mut count = 0;
            let mut node = self.heads[order];
            while !node.is_null() {
                count += 1;
                // SAFETY: listed nodes are valid free blocks.
                node = unsafe { (*node).next };
            }
            *slot = count;
        }
    }

    /// Total free blocks (after freeing everything: the initial carving).
    pub fn free_block_count(&self) -> usize {
        let mut counts = [0; ORDERS];
        self.free_blocks_per_order(&mut counts);
        counts.iter().sum()
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

    /// The pool holding the unit that starts at `addr`, and that unit.
    /// `OutOfRange` outside every pool; `NotAllocated` for an address in a
    /// pool that does not start one of its units (tags, slack, misaligned).
    #[inline(always)]
    fn locate(&mut self, addr: usize) -> AllocResult<(BuddyPool, usize)> {
        let recent = self.recent;
        match recent.unit_of(addr) {
            Some(unit) => Ok((recent, unit)),
            None => self.locate_in_table(addr),
        }
    }

    #[inline(never)]
    fn locate_in_table(&mut self, addr: usize) -> AllocResult<(BuddyPool, usize)> {
        let pool = self.pools.find(addr).ok_or(AllocError::OutOfRange)?.1.data;
        let unit = pool.unit_of(addr).ok_or(AllocError::NotAllocated)?;
        self.recent = pool;
        Ok((pool, unit))
    }

    /// Checks that `ptr` starts a live block of the order `layout` maps
    /// to; returns its pool, unit and order.
    #[inline(always)]
    fn live_block(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
    ) -> AllocResult<(BuddyPool, usize, usize)> {
        let (pool, unit) = self.locate(ptr.addr().get())?;
        let order = order_for(layout).ok_or(AllocError::NotAllocated)?;
        // SAFETY: `locate` returns units of the pool.
        let tag = unsafe { pool.tag(unit) };
        if tag != ALLOCATED | order as u8 {
            return Err(if tag & FREE != 0 {
                AllocError::DoubleFree
            } else {
                AllocError::NotAllocated
            });
        }
        Ok((pool, unit, order))
    }

    /// Frees the block at `unit` (address `addr`) of `order`, merging it
    /// with free buddies.
    ///
    /// # Safety
    /// The block is live (validated by `live_block`).
    #[inline(always)]
    unsafe fn free_block(
        &mut self,
        pool: &BuddyPool,
        mut unit: usize,
        mut addr: usize,
        mut order: usize,
    ) {
        let mut bytes = block_bytes(order);
        self.used_bytes -= bytes;
        // Blocks are naturally aligned in absolute addresses, so the buddy
        // is one XOR away; it is free and whole iff its tag says so, and
        // then the merged block lies in the pool too.
        while let Some(buddy) = pool.unit_of(addr ^ bytes) {
            // SAFETY: `unit_of` returns units of the pool.
            if unsafe { pool.tag(buddy) } != FREE | order as u8 {
                break;
            }
            // SAFETY: a free tag marks a listed free block of that order;
            // the upper of the two stops being a block start.
            unsafe {
                self.unlink(pool.node(addr ^ bytes), order);
                pool.set_tag(unit.max(buddy), NO_BLOCK);
            }
            addr &= !bytes;
            unit = unit.min(buddy);
            bytes <<= 1;
            order += 1;
        }
        // SAFETY: the (merged) block starts at `unit` and is on no list.
        unsafe { self.push_free(pool, unit, addr, order) };
    }
}
