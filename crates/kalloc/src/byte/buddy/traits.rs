//! The framework traits on [`BuddyByteAllocator`]: `BaseAllocator` adds a
//! pool, and `ByteAllocator` takes a block of the layout's order (splitting
//! a larger one) and frees by merging with free buddies.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use super::pool::{ALLOCATED, FREE, NO_BLOCK};
use super::{BuddyByteAllocator, HEADS, UNIT_LOG2, block_bytes, order_for};
use crate::{AllocError, AllocResult, BaseAllocator, ByteAllocator};

impl BaseAllocator for BuddyByteAllocator {
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
        // The list of the order itself first: its head is one load, while
        // find-first-set over `nonempty` is a longer dependency chain.
        let mut found = order;
        while self.heads[found % HEADS].is_null() {
            // Clears the stale bit of an emptied list (if `found` was
            // one); at most one round per order.
            self.nonempty &= !(1 << found);
            // `order < ORDERS <= usize::BITS`: the shifts do not overflow.
            let candidates = self.nonempty >> order << order;
            if candidates == 0 {
                return Err(AllocError::NoMemory);
            }
            found = candidates.trailing_zeros() as usize;
        }
        // SAFETY: the list of `found` is non-empty (just checked).
        let node = unsafe { self.pop(found) };
        let addr = node.addr();
        let (pool, unit) = self
            .locate(addr)
            .expect("listed free blocks start units of a pool");
        // SAFETY: the upper halves split off the popped block lie inside
        // it and start units of the pool.
        unsafe {
            while found > order {
                found -= 1;
                let half = block_bytes(found);
                self.push_free(&pool, unit + (half >> UNIT_LOG2), addr + half, found);
            }
            pool.set_tag(unit, ALLOCATED | order as u8);
        }
        self.used_bytes += block_bytes(order);
        Ok(NonNull::new(node.cast()).expect("blocks lie in a pool, never at null"))
    }

    /// Detection is exact from the tags: outside every pool is
    /// `OutOfRange`; the start of a free block is `DoubleFree`; anything
    /// else that is not the start of a live block of the order the layout
    /// maps to is `NotAllocated`. The one imprecision: freeing the upper
    /// of two buddies a second time after they merged reads `NotAllocated`
    /// (its start is now inside a larger free block), not `DoubleFree`; an
    /// error either way, and nothing changes.
    ///
    /// # Safety
    /// See [`ByteAllocator::dealloc`].
    #[inline]
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let (pool, unit, order) = self.live_block(ptr, layout)?;
        // SAFETY: validated live block.
        unsafe { self.free_block(&pool, unit, ptr.addr().get(), order) };
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
        let (pool, unit, old_order) = self.live_block(ptr, old_layout)?;
        let new_layout = crate::traits::resized_layout(old_layout, new_size)?;
        let new_order = order_for(new_layout).ok_or(AllocError::NoMemory)?;
        let addr = ptr.addr().get();
        let upper_half = |order: usize| unit + (block_bytes(order) >> UNIT_LOG2);
        // SAFETY: the block is live; every buddy touched is checked to be a
        // free block of the right order inside the pool first.
        unsafe {
            if new_order <= old_order {
                for order in (new_order..old_order).rev() {
                    self.push_free(&pool, upper_half(order), addr + block_bytes(order), order);
                }
                pool.set_tag(unit, ALLOCATED | new_order as u8);
                self.used_bytes -= block_bytes(old_order) - block_bytes(new_order);
                return Ok(ptr);
            }
            let grows_in_place = (old_order..new_order).all(|order| {
                addr & (block_bytes(order + 1) - 1) == 0
                    && upper_half(order) < pool.units
                    && pool.tag(upper_half(order)) == FREE | order as u8
            });
            if grows_in_place {
                for order in old_order..new_order {
                    self.unlink(pool.node(addr + block_bytes(order)), order);
                    pool.set_tag(upper_half(order), NO_BLOCK);
                }
                pool.set_tag(unit, ALLOCATED | new_order as u8);
                self.used_bytes += block_bytes(new_order) - block_bytes(old_order);
                return Ok(ptr);
            }
            let moved = self.alloc(new_layout)?;
            ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                moved.as_ptr(),
                old_layout.size().min(new_size),
            );
            self.free_block(&pool, unit, addr, old_order);
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
        self.total_bytes - self.used_bytes
    }
}
