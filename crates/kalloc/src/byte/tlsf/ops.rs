//! TLSF allocation: the good-fit fast path, aligned allocation, the
//! bounded exact-fit fallback, and the allocator traits.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use super::Tlsf;
use super::block::{
    BlockHeader, FREE, GRANULE, HEADER, MIN_BLOCK, PREV_FREE, block_size_for, links,
    mapping_insert, set_prev_free, set_size_flags, size, size_flags,
};
use crate::{AllocError, AllocResult, BaseAllocator, ByteAllocator};

/// How many blocks of the exact-size list a failed good-fit search may
/// still inspect (a constant bound, so allocation stays O(1)). It rescues
/// requests that only the first few blocks of a list could serve, which
/// matters when the heap is nearly full.
const EXACT_FIT_PROBES: usize = 4;

/// Where a block's payload would go to honour `align`, as the distance
/// from the block start to the payload's header: 0 or at least
/// `MIN_BLOCK`, so the front gap can become a free block; at most
/// `align + GRANULE`. `align` is a power of two (a `Layout`'s), so the
/// rounding is a mask; for `align <= GRANULE` the gap is always 0.
#[inline(always)]
fn front_gap(block_addr: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    let gap = (block_addr + HEADER).wrapping_neg() & (align - 1);
    // Gaps are granule multiples, so `0 < gap < MIN_BLOCK` (two granules)
    // means one granule: too small for a free block, move one `align` on.
    if gap == GRANULE { gap + align } else { gap }
}

/// The payload pointer of `block`.
///
/// # Safety
/// `block` is a block header inside a pool.
#[inline(always)]
unsafe fn payload(block: *mut BlockHeader) -> NonNull<u8> {
    // SAFETY: a payload address is inside a pool, hence non-null.
    unsafe { NonNull::new_unchecked(block.byte_add(HEADER).cast()) }
}

impl Tlsf {
    /// Bounded look into the exact-size list for a block the good-fit
    /// search skipped; removes and returns it.
    fn probe_exact(&mut self, need: usize, align: usize) -> Option<*mut BlockHeader> {
        let (fl, sl) = mapping_insert(need);
        // SAFETY: `mapping_insert` returns indices in bounds.
        let mut block = unsafe { self.head(fl, sl) };
        for _ in 0..EXACT_FIT_PROBES {
            if block.is_null() {
                return None;
            }
            // SAFETY: blocks on free lists are valid free blocks.
            unsafe {
                let block_size = size(block);
                if front_gap(block.addr(), align) + need <= block_size {
                    self.remove_free(block, block_size);
                    return Some(block);
                }
                block = (*links(block)).next;
            }
        }
        None
    }

    /// Cuts an allocated block of `need` bytes off the front of the free
    /// block `block`, just taken off its list, and returns the rest to a
    /// list. A free block's header word is exactly `size | FREE` (its
    /// predecessor is never free), so the new headers are written without
    /// reading flags back; its successor is never free either, so the tail
    /// needs no merge test.
    ///
    /// # Safety
    /// `block` is a free block of at least `need` bytes, off its list.
    #[inline(always)]
    unsafe fn carve_front(&mut self, block: *mut BlockHeader, need: usize) -> NonNull<u8> {
        // SAFETY: the caller guarantees a free block that fits; its
        // successor is a valid header (a block or the sentinel).
        unsafe {
            debug_assert_eq!(size_flags(block) & (GRANULE - 1), FREE);
            let block_size = size_flags(block) - FREE;
            self.place(block, block_size, need, 0);
            payload(block)
        }
    }

    /// Writes an allocated block of `need` bytes at `start`, which begins
    /// `avail` free bytes ending at the next block's header, with
    /// `prev_flag` (`PREV_FREE` or 0) for its predecessor. A tail of at
    /// least `MIN_BLOCK` is split off and listed; else the whole `avail`
    /// is allocated. `start`'s `prev_phys` is the caller's.
    ///
    /// # Safety
    /// `start..start + avail` is free space of one pool, off every list,
    /// `need <= avail`, and a valid header follows it.
    #[inline(always)]
    unsafe fn place(
        &mut self,
        start: *mut BlockHeader,
        avail: usize,
        need: usize,
        prev_flag: usize,
    ) {
        // SAFETY: the caller's guarantees; the tail lies inside `avail`.
        unsafe {
            let next = start.byte_add(avail);
            let rest = avail - need;
            if rest >= MIN_BLOCK {
                set_size_flags(start, need | prev_flag);
                let tail = start.byte_add(need);
                (*tail).prev_phys = start;
                set_size_flags(tail, rest | FREE);
                // `next` already has PREV_FREE: its predecessor was free.
                (*next).prev_phys = tail;
                self.link_free(tail, rest);
                self.block_count += 1;
                self.used_payload += need - HEADER;
            } else {
                set_size_flags(start, avail | prev_flag);
                (*next).prev_phys = start;
                set_prev_free(next, false);
                self.used_payload += avail - HEADER;
            }
        }
    }

    /// Cuts an allocated block of `need` bytes with an `align`ed payload out
    /// of the free block `block` (already off its list), returning the
    /// front gap and the tail to the free lists. Every header is written
    /// once: the final layout (front gap, allocation, tail) is known before
    /// anything is written.
    ///
    /// # Safety
    /// `block` is a free block, off its list, that fits `need` at `align`.
    #[inline(always)]
    unsafe fn carve(&mut self, block: *mut BlockHeader, need: usize, align: usize) -> NonNull<u8> {
        let gap = front_gap(block.addr(), align);
        if gap == 0 {
            // SAFETY: forwarded from the caller.
            return unsafe { self.carve_front(block, need) };
        }
        // SAFETY: the caller guarantees `block` is a free block that fits
        // `gap + need`; every derived header lies inside it, and its
        // successor is a valid header (a block or the sentinel).
        unsafe {
            let block_size = size_flags(block) - FREE;
            // The front gap stays a free block at `block`'s place: its
            // predecessor is not free, so PREV_FREE stays clear.
            set_size_flags(block, gap | FREE);
            self.link_free(block, gap);
            let start = block.byte_add(gap);
            (*start).prev_phys = block;
            self.block_count += 1;
            self.place(start, block_size - gap, need, PREV_FREE);
            payload(start)
        }
    }

    /// Allocation with an alignment above the granule: one good-fit search
    /// for room for the largest possible front gap too, so the head of the
    /// list found surely fits without reading it. The allocation is cut
    /// from the front of the block (after the gap), like every other
    /// allocation, so the gap and the tail become free blocks through the
    /// same `place` path.
    /// Returns an `Option` (one register) rather than an `AllocResult`
    /// (returned through memory); the only failure is `NoMemory`.
    #[inline(never)]
    fn alloc_aligned(&mut self, need: usize, align: usize) -> Option<NonNull<u8>> {
        // No overflow: `need` is at most `isize::MAX + 2 * GRANULE` and a
        // `Layout` with a non-zero size has `align <= isize::MAX / 2 + 1`.
        let search = need + align + GRANULE;
        match self.find_suitable(search) {
            // SAFETY: `find_suitable` returned the head of list `(fl, sl)`,
            // whose every block holds `need` at `align` whatever its
            // address (the front gap is at most `align + GRANULE`).
            Some((block, fl, sl)) => unsafe {
                self.pop_head(block, fl, sl);
                Some(self.carve(block, need, align))
            },
            None => self.alloc_fallback(need, align),
        }
    }

    /// When the good-fit search failed: the good-fit head for the bare size
    /// if it fits at `align` (aligned requests), then the bounded exact-fit
    /// probe. Rare (a nearly full heap), so kept off the hot path.
    #[cold]
    #[inline(never)]
    fn alloc_fallback(&mut self, need: usize, align: usize) -> Option<NonNull<u8>> {
        if align > GRANULE
            && let Some((block, fl, sl)) = self.find_suitable(need)
            // SAFETY: list heads are valid free blocks.
            && front_gap(block.addr(), align) + need <= unsafe { size(block) }
        {
            // SAFETY: the head of list `(fl, sl)`, checked to fit.
            unsafe {
                self.pop_head(block, fl, sl);
                return Some(self.carve(block, need, align));
            }
        }
        let block = self.probe_exact(need, align)?;
        // SAFETY: `block` is free, off its list, and fits `need` at `align`
        // (checked by the probe).
        Some(unsafe { self.carve(block, need, align) })
    }
}

impl BaseAllocator for Tlsf {
    /// Adds a pool given by address. The address becomes a pointer with
    /// exposed provenance; callers that hold a pointer should prefer
    /// [`Tlsf::add_pool`].
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

impl ByteAllocator for Tlsf {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        if layout.size() == 0 {
            return Err(AllocError::InvalidParam);
        }
        let need = block_size_for(layout.size());
        if layout.align() > GRANULE {
            return self
                .alloc_aligned(need, layout.align())
                .ok_or(AllocError::NoMemory);
        }
        match self.find_suitable(need) {
            // SAFETY: `find_suitable` returned the head of list `(fl, sl)`,
            // whose every block holds `need` bytes.
            Some((block, fl, sl)) => unsafe {
                self.pop_head(block, fl, sl);
                Ok(self.carve_front(block, need))
            },
            None => self
                .alloc_fallback(need, GRANULE)
                .ok_or(AllocError::NoMemory),
        }
    }

    /// Detection: a pointer outside every pool is always `OutOfRange`; a
    /// pointer that is not granule-aligned is always `NotAllocated`. For a
    /// pointer inside a pool the header in front of it is validated against
    /// both physical neighbours and the layout (size within the block's
    /// rounding, alignment): a second free of a block reads `DoubleFree`
    /// (its header is marked free even when merged), other bad pointers
    /// read `NotAllocated`. This is best-effort only when the bytes in
    /// front of a bogus pointer, or over a stale header reused by a later
    /// allocation, happen to form a consistent header; the debug layer
    /// catches those.
    ///
    /// # Safety
    /// See [`ByteAllocator::dealloc`].
    #[inline]
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let (block, block_size) = self.live_block(ptr, layout)?;
        // SAFETY: `live_block` validated `block` as a live allocation of
        // `block_size` bytes.
        unsafe { self.free_block(block, block_size) };
        Ok(())
    }

    /// Shrinks in place (freeing the tail if it can form a block), grows in
    /// place into a free successor, else moves.
    ///
    /// # Safety
    /// See [`ByteAllocator::realloc`].
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_size: usize,
    ) -> AllocResult<NonNull<u8>> {
        let (block, old_size) = self.live_block(ptr, old_layout)?;
        let new_layout = crate::traits::resized_layout(old_layout, new_size)?;
        // SAFETY: `block` is a validated live block of `old_size` bytes.
        unsafe {
            if self.resize_in_place(block, old_size, block_size_for(new_size)) {
                return Ok(ptr);
            }
            let moved = self.alloc(new_layout)?;
            ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                moved.as_ptr(),
                old_layout.size().min(new_size),
            );
            self.free_block(block, old_size);
            Ok(moved)
        }
    }

    fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    fn used_bytes(&self) -> usize {
        self.used_payload
    }

    /// The payload of every free block: everything the pools tile, minus
    /// the allocated payloads and one header per block.
    fn available_bytes(&self) -> usize {
        self.pool_span - self.used_payload - self.block_count * HEADER
    }
}
