//! TLSF allocation: the good-fit fast path, aligned allocation, the
//! bounded exact-fit fallback, and the allocator traits.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use super::Tlsf;
use super::block::{
    Block, GRANULE, HEADER, MAX_BLOCK, MIN_BLOCK, PREV_FREE, block_size_for, mapping_insert,
    set_footer, set_word, used_word, word,
};
use crate::{AllocError, AllocResult, BaseAllocator, ByteAllocator};

/// How many blocks of the exact-size list a failed good-fit search may
/// still inspect (a constant bound, so allocation stays O(1)). It rescues
/// requests that only the first few blocks of a list could serve, which
/// matters when the heap is nearly full.
const EXACT_FIT_PROBES: usize = 4;

/// Where a block's payload would go to honour `align`, as the distance
/// from the block start to the allocated block's header: 0 or at least
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
unsafe fn payload(block: *mut Block) -> NonNull<u8> {
    // SAFETY: a payload address is inside a pool, hence non-null.
    unsafe { NonNull::new_unchecked(block.byte_add(HEADER).cast()) }
}

impl Tlsf {
    /// Bounded look into the exact-size list for a block the good-fit
    /// search skipped; unlinks and returns it.
    fn probe_exact(&mut self, need: usize, align: usize) -> Option<*mut Block> {
        // SAFETY: `mapping_insert` returns an index in bounds.
        let mut block = unsafe { self.head(mapping_insert(need)) };
        for _ in 0..EXACT_FIT_PROBES {
            if block.is_null() {
                return None;
            }
            // SAFETY: blocks on free lists are valid free blocks, whose
            // word is their size.
            unsafe {
                if front_gap(block.addr(), align) + need <= word(block) {
                    self.unlink(block);
                    return Some(block);
                }
                block = (*block).next;
            }
        }
        None
    }

    /// Writes an allocated block of `need` bytes at `start`, which begins
    /// `avail` free bytes ending at the next block's header, with
    /// `prev_flag` (`PREV_FREE` or 0) for its predecessor. A tail of at
    /// least `MIN_BLOCK` is split off and listed (the next block keeps its
    /// `PREV_FREE`, the tail's footer is written); else the whole `avail`
    /// is allocated and the next block's `PREV_FREE` is cleared. The tail
    /// needs no merge test: what follows free space is never free.
    ///
    /// # Safety
    /// `start..start + avail` is free space of one pool, off every list,
    /// `need <= avail`, and a valid header follows it.
    #[inline(always)]
    unsafe fn cut(&mut self, start: *mut Block, avail: usize, need: usize, prev_flag: usize) {
        // SAFETY: the caller's guarantees; the tail lies inside `avail`.
        unsafe {
            let next = start.byte_add(avail);
            let rest = avail - need;
            self.used_count += 1;
            if rest >= MIN_BLOCK {
                set_word(start, used_word(start.addr(), need) | prev_flag);
                let tail = start.byte_add(need);
                set_word(tail, rest);
                set_footer(tail, next);
                self.link_free(tail, rest);
                self.block_count += 1;
                self.used_size += need;
            } else {
                set_word(start, used_word(start.addr(), avail) | prev_flag);
                set_word(next, word(next) & !PREV_FREE);
                self.used_size += avail;
            }
        }
    }

    /// Cuts an allocated block of `need` bytes with an `align`ed payload out
    /// of the free block `block`, already off its list: a front gap stays a
    /// free block in `block`'s place, then the allocation, then the tail.
    /// Every header is written once: the final layout is known before
    /// anything is written. A free block's predecessor is never free, so
    /// with no gap the allocation gets no `PREV_FREE`.
    ///
    /// # Safety
    /// `block` is a free block, off its list, with room for `need` at
    /// `align`.
    #[inline(always)]
    unsafe fn carve(&mut self, block: *mut Block, need: usize, align: usize) -> NonNull<u8> {
        let gap = if align <= GRANULE {
            0
        } else {
            front_gap(block.addr(), align)
        };
        // SAFETY: the caller guarantees a free block that fits `gap + need`
        // (whose word is its size); every derived header lies inside it.
        unsafe {
            let avail = word(block);
            if gap == 0 {
                self.cut(block, avail, need, 0);
                return payload(block);
            }
            let start = block.byte_add(gap);
            set_word(block, gap);
            set_footer(block, start);
            self.link_free(block, gap);
            self.block_count += 1;
            self.cut(start, avail - gap, need, PREV_FREE);
            payload(start)
        }
    }

    /// Allocation with an alignment above the granule: one good-fit search
    /// for room for the largest possible front gap too, so the head of the
    /// list found surely fits without reading it. The allocation is cut
    /// from the front of the block (after the gap), like every other
    /// allocation.
    /// Returns an `Option` (one register) rather than an `AllocResult`
    /// (returned through memory); the only failure is `NoMemory`.
    #[inline(never)]
    fn alloc_aligned(&mut self, need: usize, align: usize) -> Option<NonNull<u8>> {
        // No overflow: `need` is at most `isize::MAX + 2 * GRANULE` and a
        // `Layout` with a non-zero size has `align <= isize::MAX / 2 + 1`.
        let search = need + align + GRANULE;
        match self.find_suitable(search) {
            // SAFETY: `find_suitable` returned the head of a list whose
            // every block holds `need` at `align` whatever its address
            // (the front gap is at most `align + GRANULE`).
            Some(found) => unsafe {
                self.pop_head(found.block, found.index);
                Some(self.carve(found.block, need, align))
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
        if need > MAX_BLOCK {
            return None;
        }
        if align > GRANULE
            && let Some(found) = self.find_suitable(need)
            // SAFETY: list heads are valid free blocks.
            && front_gap(found.block.addr(), align) + need <= unsafe { word(found.block) }
        {
            // SAFETY: the head of a list, checked to fit.
            unsafe {
                self.pop_head(found.block, found.index);
                return Some(self.carve(found.block, need, align));
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
        let Some(mut found) = self.find_suitable(need) else {
            return self
                .alloc_fallback(need, GRANULE)
                .ok_or(AllocError::NoMemory);
        };
        // SAFETY: `find_suitable` returned the head of list `index`, whose
        // every block holds `need` bytes; so does every larger list's.
        unsafe {
            // A block just one granule too large would be handed out whole
            // (the granule cannot be a block of its own) and the granule
            // lost while it lives; a block of a larger list of the same row
            // is split instead, if there is one.
            if word(found.block) == need + GRANULE
                && let Some(larger) = found.next_in_row(self)
            {
                found = larger;
            }
            self.pop_head(found.block, found.index);
            Ok(self.carve(found.block, need, GRANULE))
        }
    }

    /// Detection: a pointer outside every pool is always `OutOfRange`; a
    /// pointer that is not granule-aligned is always `NotAllocated`. For a
    /// pointer inside a pool the word in front of it must be the sealed
    /// used header a block of this layout carries at this address, and
    /// the address must meet the layout's alignment (`byte/tlsf/check.rs`);
    /// off the hot path, and on it in debug builds, the physical
    /// neighbours must agree too. A second free of a block reads
    /// `DoubleFree` (its header is a free one, even after merging), other
    /// bad pointers read `NotAllocated`. The allocator never leaves such a
    /// word anywhere but in front of a live block, so a bad free is
    /// accepted only if something else wrote exactly that word there (a
    /// forgery); [`Tlsf::verify_dealloc`] decides without trusting any
    /// header.
    ///
    /// # Safety
    /// See [`ByteAllocator::dealloc`].
    #[inline]
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        self.dealloc_block(ptr, layout)
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
        let live = self.live_block(ptr.addr().get(), old_layout)?;
        let new_layout = crate::traits::resized_layout(old_layout, new_size)?;
        // SAFETY: `live` is a validated live block. The allocation may
        // split or take its free neighbours, so the words `free_block`
        // uses are read again; the block itself is still live.
        unsafe {
            if self.resize_in_place(live, block_size_for(new_size)) {
                return Ok(ptr);
            }
            let moved = self.alloc(new_layout)?;
            ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                moved.as_ptr(),
                old_layout.size().min(new_size),
            );
            let live = live.reread();
            self.free_block(live.block, live.word, live.next_word);
            Ok(moved)
        }
    }

    fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// The payloads of the allocated blocks: their sizes less a header
    /// each.
    fn used_bytes(&self) -> usize {
        self.used_size - self.used_count * HEADER
    }

    /// The payload of every free block: everything the pools tile, minus
    /// the allocated blocks, and a header for each free block.
    fn available_bytes(&self) -> usize {
        self.pool_span - self.used_size - (self.block_count - self.used_count) * HEADER
    }
}
