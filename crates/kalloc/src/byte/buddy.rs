//! A binary buddy byte allocator: blocks of `16 << order` bytes, naturally
//! aligned, split on allocation and merged with their buddy on free. Kept
//! simple on purpose: it is the reference for internal fragmentation.
//!
//! Each pool keeps two bitmaps at its start (1 bit per 16-byte unit each,
//! 1.6% of the pool), interleaved as one `StartMarks` word pair per 64
//! units so every test reads one cache line: `alloc` marks the first unit
//! of every allocated block, `free` the first unit of every free block
//! (`buddy/pool.rs`). Because blocks are naturally aligned and tile the
//! pool, whether the block at unit `u` has order `k` is two bit tests (see
//! `BuddyPool::has_order`), so free and merge never scan a list:
//! O(MAX_ORDER) in all.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

mod pool;

use self::pool::{BuddyPool, Mark, StartMarks};
use crate::byte::pool_table::{PoolEntry, PoolTable};
use crate::{AllocError, AllocResult, BaseAllocator, ByteAllocator};

/// The base unit: the smallest block, and the granule of every block.
pub const BUDDY_UNIT: usize = 16;
const UNIT_LOG2: u32 = BUDDY_UNIT.trailing_zeros();
/// Orders `0..ORDERS`: a block of order `k` is `BUDDY_UNIT << k` bytes.
const ORDERS: usize = (usize::BITS - UNIT_LOG2 - 1) as usize;
const WORD_BITS: usize = u64::BITS as usize;

/// Links of a free block, in its first unit.
#[repr(C)]
struct FreeNode {
    next: *mut FreeNode,
    prev: *mut FreeNode,
}

/// The binary buddy byte allocator.
pub struct BuddyByteAllocator {
    heads: [*mut FreeNode; ORDERS],
    /// Bit `k` is set iff `heads[k]` is non-empty.
    nonempty: usize,
    pools: PoolTable<BuddyPool>,
    used_bytes: usize,
    free_bytes: usize,
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

/// The order serving `layout`: covers both its size and its alignment.
#[inline]
fn order_for(layout: Layout) -> Option<usize> {
    let bytes = layout.size().max(layout.align()).max(BUDDY_UNIT);
    let order = (bytes.checked_next_power_of_two()?.trailing_zeros() - UNIT_LOG2) as usize;
    (order < ORDERS).then_some(order)
}

impl BuddyByteAllocator {
    /// An allocator with no memory.
    pub const fn new() -> Self {
        Self {
            heads: [ptr::null_mut(); ORDERS],
            nonempty: 0,
            pools: PoolTable::new(),
            used_bytes: 0,
            free_bytes: 0,
            total_bytes: 0,
        }
    }

    /// Adds the pool `[pool, pool + size)`: its bitmaps go at its start,
    /// the rest is carved into maximal naturally aligned blocks.
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
        if limit <= first {
            return Err(AllocError::InvalidParam);
        }
        let max_units = (limit - first) >> UNIT_LOG2;
        let words = max_units.div_ceil(WORD_BITS);
        let meta = (words * size_of::<StartMarks>()).next_multiple_of(BUDDY_UNIT);
        if limit - first <= meta {
            return Err(AllocError::InvalidParam);
        }
        let data_start = first + meta;
        let units = (limit - data_start) >> UNIT_LOG2;
        let marks = pool.as_ptr().with_addr(first).cast::<StartMarks>();
        // SAFETY: the marks occupy `[first, first + meta)` inside the pool,
        // and `first` is 16-aligned; all zero: no block starts yet.
        unsafe { ptr::write_bytes(marks, 0, words) };
        let data = BuddyPool {
            data_start,
            units,
            marks,
            base: pool,
        };
        let mut addr = data_start;
        let data_end = data_start + (units << UNIT_LOG2);
        while addr < data_end {
            let align_order = (addr.trailing_zeros() - UNIT_LOG2) as usize;
            let fit_order = ((data_end - addr).ilog2() - UNIT_LOG2) as usize;
            let order = align_order.min(fit_order).min(ORDERS - 1);
            // SAFETY: the block `[addr, addr + 16 << order)` lies in the pool.
            unsafe { self.push_free(&data, addr, order) };
            addr += BUDDY_UNIT << order;
        }
        self.total_bytes += units << UNIT_LOG2;
        self.pools.insert(PoolEntry { start, end, data });
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

    /// Number of pools under management.
    pub fn pool_count(&self) -> usize {
        self.pools.len()
    }

    /// # Safety
    /// `addr` is the start of a block of `order` in `pool` that is on no list.
    #[inline]
    unsafe fn push_free(&mut self, pool: &BuddyPool, addr: usize, order: usize) {
        // SAFETY: forwarded; the unit of a block start is in the pool.
        unsafe {
            pool.put_mark(pool.unit_of(addr), Mark::Free, true);
            self.link_free(pool, addr, order);
        }
    }

    /// Pushes the block at `addr` on the list of `order` without touching
    /// its free mark (the caller has set it).
    ///
    /// # Safety
    /// As for [`push_free`](Self::push_free).
    #[inline(always)]
    unsafe fn link_free(&mut self, pool: &BuddyPool, addr: usize, order: usize) {
        let node = pool.node(addr);
        let head = self.heads[order];
        // SAFETY: the block is ours and at least one unit (two links) long.
        unsafe {
            *node = FreeNode {
                next: head,
                prev: ptr::null_mut(),
            };
            if !head.is_null() {
                (*head).prev = node;
            }
        }
        self.heads[order] = node;
        self.nonempty |= 1 << order;
        self.free_bytes += BUDDY_UNIT << order;
    }

    /// # Safety
    /// `node` is a listed free block of `order` in `pool`.
    #[inline]
    unsafe fn unlink(&mut self, pool: &BuddyPool, node: *mut FreeNode, order: usize) {
        // SAFETY: forwarded; the unit of a block start is in the pool.
        unsafe {
            self.unlink_node(node, order);
            pool.put_mark(pool.unit_of(node.addr()), Mark::Free, false);
        }
    }

    /// Unlinks a listed free block from the list of `order`, leaving its
    /// free mark to the caller.
    ///
    /// # Safety
    /// `node` is a listed free block of `order`.
    #[inline(always)]
    unsafe fn unlink_node(&mut self, node: *mut FreeNode, order: usize) {
        // SAFETY: listed nodes and their neighbours are valid free blocks.
        unsafe {
            let FreeNode { next, prev } = *node;
            if !next.is_null() {
                (*next).prev = prev;
            }
            if prev.is_null() {
                self.heads[order] = next;
                if next.is_null() {
                    self.nonempty &= !(1 << order);
                }
            } else {
                (*prev).next = next;
            }
        }
        self.free_bytes -= BUDDY_UNIT << order;
    }

    #[inline]
    fn pool_of(&self, addr: usize) -> BuddyPool {
        self.pools
            .find(addr)
            .expect("free blocks lie in a pool")
            .1
            .data
    }

    /// Checks that `ptr` starts a live block of the order `layout` maps to.
    #[inline(always)]
    fn live_block(&self, ptr: NonNull<u8>, layout: Layout) -> AllocResult<(BuddyPool, usize)> {
        let addr = ptr.addr().get();
        let pool = self.pools.find(addr).ok_or(AllocError::OutOfRange)?.1.data;
        let order = order_for(layout).ok_or(AllocError::NotAllocated)?;
        // A power of two: a mask test, not a division.
        if addr < pool.data_start || addr & ((BUDDY_UNIT << order) - 1) != 0 {
            return Err(AllocError::NotAllocated);
        }
        let unit = pool.unit_of(addr);
        if unit >= pool.units {
            return Err(AllocError::NotAllocated);
        }
        // SAFETY: `unit < pool.units`; `has_order` checks its own indices.
        unsafe {
            if pool.mark(unit, Mark::Free) {
                return Err(AllocError::DoubleFree);
            }
            if !pool.mark(unit, Mark::Alloc) || !pool.has_order(unit, order) {
                return Err(AllocError::NotAllocated);
            }
        }
        Ok((pool, order))
    }

    /// Frees the block at `addr` of `order`, merging with free buddies.
    ///
    /// # Safety
    /// The block is live (validated by `live_block`).
    #[inline(always)]
    unsafe fn free_block(&mut self, pool: &BuddyPool, mut addr: usize, mut order: usize) {
        // SAFETY: the caller guarantees a live block; buddy indices are
        // checked against the pool before every bitmap access.
        unsafe {
            // The merging block stays marked as a (free) start throughout,
            // so a lower buddy's order test sees where that buddy ends.
            let mut unit = pool.unit_of(addr);
            pool.flip_to_free(unit);
            self.used_bytes -= BUDDY_UNIT << order;
            while order + 1 < ORDERS {
                let buddy = addr ^ (BUDDY_UNIT << order);
                if buddy < pool.data_start {
                    break;
                }
                let buddy_unit = pool.unit_of(buddy);
                if buddy_unit >= pool.units
                    || !pool.mark(buddy_unit, Mark::Free)
                    || !pool.has_order(buddy_unit, order)
                {
                    break;
                }
                self.unlink_node(pool.node(buddy), order);
                // The merged block starts at the lower of the two: the
                // upper start stops being a block start.
                if buddy < addr {
                    pool.put_mark(unit, Mark::Free, false);
                    addr = buddy;
                    unit = buddy_unit;
                } else {
                    pool.put_mark(buddy_unit, Mark::Free, false);
                }
                order += 1;
            }
            self.link_free(pool, addr, order);
        }
    }
}

impl BaseAllocator for BuddyByteAllocator {
    /// # Safety
    /// See [`BaseAllocator::add_memory`].
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.add_memory(start, size) }
    }

    /// Adds a pool given by address (exposed provenance; prefer
    /// [`BuddyByteAllocator::add_pool`] when holding a pointer).
    ///
    /// # Safety
    /// See [`BaseAllocator::add_memory`].
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        let pool = NonNull::new(ptr::with_exposed_provenance_mut::<u8>(start))
            .ok_or(AllocError::InvalidParam)?;
        // SAFETY: forwarded from the caller.
        unsafe { self.add_pool(pool, size) }
    }
}

impl ByteAllocator for BuddyByteAllocator {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        if layout.size() == 0 {
            return Err(AllocError::InvalidParam);
        }
        let order = order_for(layout).ok_or(AllocError::NoMemory)?;
        let candidates = self.nonempty & usize::MAX.checked_shl(order as u32).unwrap_or(0);
        if candidates == 0 {
            return Err(AllocError::NoMemory);
        }
        let mut found = candidates.trailing_zeros() as usize;
        let node = self.heads[found];
        let addr = node.addr();
        let pool = self.pool_of(addr);
        // SAFETY: `node` heads a free list; the halves split off lie inside it.
        unsafe {
            self.unlink_node(node, found);
            while found > order {
                found -= 1;
                self.push_free(&pool, addr + (BUDDY_UNIT << found), found);
            }
            pool.flip_to_alloc(pool.unit_of(addr));
        }
        self.used_bytes += BUDDY_UNIT << order;
        Ok(NonNull::new(node.cast()).expect("blocks lie in a pool, never at null"))
    }

    /// Detection is exact from the bitmaps: outside every pool is
    /// `OutOfRange`; a block start that is free is `DoubleFree`; anything
    /// else that is not the start of a live block of the order the layout
    /// maps to is `NotAllocated`. The one imprecision: freeing a block a
    /// second time after it merged with its buddy reads `NotAllocated`
    /// (its start is now inside a larger free block), not `DoubleFree`; an
    /// error either way, and nothing changes.
    ///
    /// # Safety
    /// See [`ByteAllocator::dealloc`].
    #[inline]
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let (pool, order) = self.live_block(ptr, layout)?;
        // SAFETY: validated live block.
        unsafe { self.free_block(&pool, ptr.addr().get(), order) };
        Ok(())
    }

    /// Same order: unchanged. Smaller: upper halves are freed in place.
    /// Larger: grows in place when every upper buddy up to the new order is
    /// free, else moves.
    ///
    /// # Safety
    /// See [`ByteAllocator::realloc`].
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_size: usize,
    ) -> AllocResult<NonNull<u8>> {
        let (pool, old_order) = self.live_block(ptr, old_layout)?;
        let new_layout = Layout::from_size_align(new_size, old_layout.align())
            .map_err(|_| AllocError::InvalidParam)?;
        if new_size == 0 {
            return Err(AllocError::InvalidParam);
        }
        let new_order = order_for(new_layout).ok_or(AllocError::NoMemory)?;
        let addr = ptr.addr().get();
        // SAFETY: the block is live; every buddy touched is checked to be a
        // free block of the right order inside the pool first.
        unsafe {
            if new_order <= old_order {
                for order in (new_order..old_order).rev() {
                    self.push_free(&pool, addr + (BUDDY_UNIT << order), order);
                }
                self.used_bytes -= (BUDDY_UNIT << old_order) - (BUDDY_UNIT << new_order);
                return Ok(ptr);
            }
            let grows_in_place = (old_order..new_order).all(|order| {
                let buddy = addr + (BUDDY_UNIT << order);
                let unit = pool.unit_of(buddy);
                addr & ((BUDDY_UNIT << (order + 1)) - 1) == 0
                    && unit < pool.units
                    && pool.mark(unit, Mark::Free)
                    && pool.has_order(unit, order)
            });
            if grows_in_place {
                for order in old_order..new_order {
                    self.unlink(&pool, pool.node(addr + (BUDDY_UNIT << order)), order);
                }
                self.used_bytes += (BUDDY_UNIT << new_order) - (BUDDY_UNIT << old_order);
                return Ok(ptr);
            }
            let moved = self.alloc(new_layout)?;
            ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                moved.as_ptr(),
                old_layout.size().min(new_size),
            );
            self.free_block(&pool, addr, old_order);
            Ok(moved)
        }
    }

    fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    fn available_bytes(&self) -> usize {
        self.free_bytes
    }
}
