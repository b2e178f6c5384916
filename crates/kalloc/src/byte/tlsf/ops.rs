//! TLSF allocation, free and in-place resizing, and the allocator traits.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use super::Tlsf;
use super::block::{
    BlockHeader, GRANULE, HEADER, MIN_BLOCK, block_size_for, init, is_free, is_prev_free, links,
    mapping_insert, raw_size_flags, set, set_prev_free, size,
};
use crate::{AllocError, AllocResult, BaseAllocator, ByteAllocator};

/// How many blocks of the exact-size list a failed good-fit search may
/// still inspect (a constant bound, so allocation stays O(1)). It rescues
/// requests that only the first few blocks of a list could serve, which
/// matters when the heap is nearly full.
const EXACT_FIT_PROBES: usize = 4;

/// Where a block's payload would go to honour `align`, as the distance
/// from the block start to the payload's header; 0 or at least
/// `MIN_BLOCK`, so the front gap can become a free block.
/// `align` is a power of two (a `Layout`'s), so rounding is a mask, not
/// the division `next_multiple_of` would compile to.
#[inline]
fn front_gap(block_addr: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    let round_up = |addr: usize| (addr + align - 1) & !(align - 1);
    let payload = block_addr + HEADER;
    let mut gap = round_up(payload) - payload;
    if gap != 0 && gap < MIN_BLOCK {
        gap = round_up(payload + MIN_BLOCK) - payload;
    }
    gap
}

impl Tlsf {
    /// Bounded look into the exact-size list for a block the good-fit
    /// search skipped; removes and returns it.
    fn probe_exact(&mut self, need: usize, align: usize) -> Option<*mut BlockHeader> {
        let (fl, sl) = mapping_insert(need);
        let mut block = self.heads[fl][sl];
        for _ in 0..EXACT_FIT_PROBES {
            if block.is_null() {
                return None;
            }
            // SAFETY: blocks on free lists are valid free blocks.
            unsafe {
                let gap = if align > GRANULE {
                    front_gap(block.addr(), align)
                } else {
                    0
                };
                if gap + need <= size(block) {
                    self.remove_free(block);
                    return Some(block);
                }
                block = (*links(block)).next;
            }
        }
        None
    }

    /// Cuts an allocated block of `need` bytes with an `align`ed payload out
    /// of the free block `block` (already off its list), returning the
    /// unused front and tail to the free lists. Every header is written
    /// once: the final layout (front gap, allocation, tail) is known before
    /// anything is written, and the successor of a free block is never free
    /// (immediate coalescing), so the tail needs no merge test.
    ///
    /// # Safety
    /// `block` is a free block, off its list, that fits `need` at `align`.
    #[inline]
    unsafe fn carve(&mut self, block: *mut BlockHeader, need: usize, align: usize) -> *mut u8 {
        let gap = if align > GRANULE {
            front_gap(block.addr(), align)
        } else {
            0
        };
        if gap == 0 {
            // SAFETY: forwarded from the caller.
            return unsafe { self.carve_front(block, need) };
        }
        // SAFETY: the caller guarantees `block` is a free block that fits
        // `gap + need`; every derived header lies inside it, and its
        // successor is a valid header (a block or the sentinel).
        unsafe {
            let block_size = size(block);
            let next = block.byte_add(block_size);
            // The front gap stays a free block; `block`'s predecessor is
            // not free (it was free itself), so PREV_FREE stays clear.
            set(block, gap, true);
            self.link_free(block, gap);
            let start = block.byte_add(gap);
            (*start).prev_phys = block;
            let avail = block_size - gap;
            let rest = avail - need;
            if rest >= MIN_BLOCK {
                init(start, need, false, true);
                let tail = start.byte_add(need);
                (*tail).prev_phys = start;
                init(tail, rest, true, false);
                // `next` already has PREV_FREE: its predecessor was free.
                (*next).prev_phys = tail;
                self.link_free(tail, rest);
                self.used_payload += need - HEADER;
            } else {
                init(start, avail, false, true);
                (*next).prev_phys = start;
                set_prev_free(next, false);
                self.used_payload += avail - HEADER;
            }
            start.byte_add(HEADER).cast()
        }
    }

    /// The fast path of `alloc` (alignment up to the granule): cuts `need`
    /// bytes off the front of the free block `block`, just popped from its
    /// list, and returns the rest to a list. The successor of a free block
    /// is never free (immediate coalescing), so the tail needs no merge.
    ///
    /// # Safety
    /// `block` is a free block of at least `need` bytes, off its list.
    #[inline(always)]
    unsafe fn carve_front(&mut self, block: *mut BlockHeader, need: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a free block that fits; the tail
        // header and the successor lie inside its pool.
        unsafe {
            let block_size = size(block);
            let next = block.byte_add(block_size);
            let rest = block_size - need;
            if rest >= MIN_BLOCK {
                set(block, need, false);
                let tail = block.byte_add(need);
                (*tail).prev_phys = block;
                init(tail, rest, true, false);
                // `next` already has PREV_FREE: its predecessor was free.
                (*next).prev_phys = tail;
                self.link_free(tail, rest);
                self.used_payload += need - HEADER;
            } else {
                set(block, block_size, false);
                set_prev_free(next, false);
                self.used_payload += block_size - HEADER;
            }
            block.byte_add(HEADER).cast()
        }
    }

    /// Allocation with an alignment above the granule, or when the
    /// good-fit search failed: searches for room for the front gap too,
    /// then falls back to the bounded exact-fit probe.
    #[inline(never)]
    fn alloc_general(&mut self, need: usize, align: usize) -> AllocResult<NonNull<u8>> {
        if align > GRANULE
            && let Some((block, fl, sl)) = self.find_suitable(need)
            && front_gap(block.addr(), align) == 0
        {
            // The good-fit head for the bare size is already aligned: no
            // front gap to split off (found from the block's address alone,
            // without reading it).
            // SAFETY: `find_suitable` returned the head of list `(fl, sl)`,
            // whose every block holds `need` bytes.
            unsafe {
                self.pop_head(block, fl, sl);
                return Ok(NonNull::new_unchecked(self.carve_front(block, need)));
            }
        }
        let search = if align <= GRANULE {
            need
        } else {
            need.checked_add(align + MIN_BLOCK)
                .ok_or(AllocError::NoMemory)?
        };
        let block = match self.find_suitable(search) {
            Some((block, fl, sl)) => {
                // SAFETY: `find_suitable` returns the head of list `(fl, sl)`.
                unsafe { self.pop_head(block, fl, sl) };
                block
            }
            None => self.probe_exact(need, align).ok_or(AllocError::NoMemory)?,
        };
        // SAFETY: `block` is free, off its list, and fits `need` at `align`
        // (good-fit search bound or checked by the probe).
        let payload = unsafe { self.carve(block, need, align) };
        // SAFETY: a payload address is inside a pool, hence non-null.
        Ok(unsafe { NonNull::new_unchecked(payload) })
    }

    /// Shrinks the allocated `block` to `need` bytes and frees the tail,
    /// merging it with a free successor.
    ///
    /// # Safety
    /// `block` is allocated (or being allocated: not on a list) and
    /// `size(block) - need >= MIN_BLOCK`.
    #[inline]
    unsafe fn split_off_tail(&mut self, block: *mut BlockHeader, need: usize) {
        // SAFETY: the tail and the successor lie inside the pool of `block`.
        unsafe {
            let old_size = size(block);
            let next = block.byte_add(old_size);
            let tail = block.byte_add(need);
            let mut tail_size = old_size - need;
            set(block, need, false);
            if is_free(next) {
                self.remove_free(next);
                tail_size += size(next);
            }
            (*tail).prev_phys = block;
            init(tail, tail_size, true, false);
            (*tail.byte_add(tail_size)).prev_phys = tail;
            self.insert_free(tail);
        }
    }

    /// Returns the live block whose payload is `ptr` and that `layout`
    /// describes, after checking its header against its neighbours.
    #[inline(always)]
    fn live_block(&self, ptr: NonNull<u8>, layout: Layout) -> AllocResult<*mut BlockHeader> {
        let addr = ptr.addr().get();
        let (_, pool) = self.pools.find(addr).ok_or(AllocError::OutOfRange)?;
        let pool = pool.data;
        if !addr.is_multiple_of(GRANULE) || addr < pool.first_block + HEADER || addr > pool.sentinel
        {
            return Err(AllocError::NotAllocated);
        }
        let header_at = |a: usize| pool.base.as_ptr().with_addr(a).cast::<BlockHeader>();
        let block = header_at(addr - HEADER);
        // SAFETY: `block` is granule-aligned inside `[first_block, sentinel)`,
        // so a header's worth of pool memory is readable there. What we read
        // may be payload bytes if `ptr` is not a block start; we only compare
        // them, and dereference only addresses checked to lie in the pool.
        unsafe {
            let size_flags = raw_size_flags(block);
            if is_free(block) {
                return Err(AllocError::DoubleFree);
            }
            let block_size = size_flags & !(GRANULE - 1);
            if block_size < MIN_BLOCK || block_size > pool.sentinel - block.addr() {
                return Err(AllocError::NotAllocated);
            }
            if (*block.byte_add(block_size)).prev_phys.addr() != block.addr() {
                return Err(AllocError::NotAllocated);
            }
            // The predecessor's header is read only when it is free (it
            // will be merged, so the read is not extra work).
            let prev = (*block).prev_phys.addr();
            let prev_ok = if prev == 0 {
                block.addr() == pool.first_block && !is_prev_free(block)
            } else {
                prev >= pool.first_block
                    && prev < block.addr()
                    && (!is_prev_free(block) || prev + size(header_at(prev)) == block.addr())
            };
            let need = block_size_for(layout.size()).ok_or(AllocError::NotAllocated)?;
            if !prev_ok
                || need > block_size
                || block_size - need >= MIN_BLOCK
                || addr & (layout.align() - 1) != 0
            {
                return Err(AllocError::NotAllocated);
            }
        }
        Ok(block)
    }

    /// Frees an allocated block, coalescing with free physical neighbours.
    ///
    /// # Safety
    /// `block` is a live allocated block.
    #[inline(always)]
    unsafe fn free_block(&mut self, block: *mut BlockHeader) {
        // SAFETY: `block` is live, so its neighbours are valid headers.
        unsafe {
            let block_size = size(block);
            self.used_payload -= block_size - HEADER;
            // Mark the header free even if it is merged away below: a
            // second free of the same pointer then reads DoubleFree.
            set(block, block_size, true);
            let mut merged_size = block_size;
            let next = block.byte_add(block_size);
            if is_free(next) {
                merged_size += size(next);
                self.remove_free(next);
            }
            let mut start = block;
            if is_prev_free(block) {
                let prev = (*block).prev_phys;
                merged_size += size(prev);
                self.remove_free(prev);
                start = prev;
            }
            set(start, merged_size, true);
            let end = start.byte_add(merged_size);
            (*end).prev_phys = start;
            set_prev_free(end, true);
            self.link_free(start, merged_size);
        }
    }
}

impl BaseAllocator for Tlsf {
    /// # Safety
    /// See [`BaseAllocator::add_memory`].
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.add_memory(start, size) }
    }

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
        let need = block_size_for(layout.size()).ok_or(AllocError::InvalidParam)?;
        if layout.align() <= GRANULE
            && let Some((block, fl, sl)) = self.find_suitable(need)
        {
            // SAFETY: `find_suitable` returned the head of list `(fl, sl)`,
            // whose every block holds `need` bytes.
            unsafe {
                self.pop_head(block, fl, sl);
                return Ok(NonNull::new_unchecked(self.carve_front(block, need)));
            }
        }
        self.alloc_general(need, layout.align())
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
        let block = self.live_block(ptr, layout)?;
        // SAFETY: `live_block` validated `block` as a live allocation.
        unsafe { self.free_block(block) };
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
        let block = self.live_block(ptr, old_layout)?;
        let new_layout = Layout::from_size_align(new_size, old_layout.align())
            .map_err(|_| AllocError::InvalidParam)?;
        if new_size == 0 {
            return Err(AllocError::InvalidParam);
        }
        let need = block_size_for(new_size).ok_or(AllocError::InvalidParam)?;
        // SAFETY: `block` is a validated live block; its successor is a
        // valid header (a block or the sentinel).
        unsafe {
            let old_size = size(block);
            if need <= old_size {
                if old_size - need >= MIN_BLOCK {
                    self.used_payload -= old_size - need;
                    self.split_off_tail(block, need);
                }
                return Ok(ptr);
            }
            let next = block.byte_add(old_size);
            if is_free(next) && old_size + size(next) >= need {
                let grown = old_size + size(next);
                self.remove_free(next);
                set(block, grown, false);
                (*block.byte_add(grown)).prev_phys = block;
                set_prev_free(block.byte_add(grown), false);
                self.used_payload += grown - old_size;
                if grown - need >= MIN_BLOCK {
                    self.used_payload -= grown - need;
                    self.split_off_tail(block, need);
                }
                return Ok(ptr);
            }
            let moved = self.alloc(new_layout)?;
            ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                moved.as_ptr(),
                old_layout.size().min(new_size),
            );
            self.free_block(block);
            Ok(moved)
        }
    }

    fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    fn used_bytes(&self) -> usize {
        self.used_payload
    }

    fn available_bytes(&self) -> usize {
        self.free_payload
    }
}
