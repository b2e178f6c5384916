//! The framework traits on [`SlabAllocator`]: `BaseAllocator` hands
//! regions to the page source, and `ByteAllocator` serves a layout from its
//! size class, or from the page source above the largest class; `realloc`
//! stays in place while the size keeps its class (or its page count).

use core::alloc::Layout;
use core::ptr::NonNull;

use super::classes::{class_for, class_for_general, small_class};
use super::{PageSource, SlabAllocator};
use crate::{AllocError, AllocResult, BaseAllocator, ByteAllocator};

impl<P: PageSource> BaseAllocator for SlabAllocator<P> {
    /// # Safety
    /// See [`BaseAllocator::add_memory`].
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.add_memory(start, size) }
    }

    /// Forwards to the page source (`InvalidParam` if it takes no memory).
    ///
    /// # Safety
    /// See [`BaseAllocator::add_memory`].
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.source.add_memory(start, size) }
    }
}

impl<P: PageSource> ByteAllocator for SlabAllocator<P> {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        if let Some(class) = small_class(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.alloc_in(class) };
        }
        if layout.size() == 0 {
            return Err(AllocError::InvalidParam);
        }
        if let Some(class) = class_for_general(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.alloc_in(class) };
        }
        let (pages, align) = self.large_pages_for(layout)?;
        self.large.reserve(&mut self.source)?;
        let block = match self.source.alloc_pages(pages, align) {
            Ok(block) => block,
            Err(error) => {
                // A table taken for this block alone goes back with it.
                self.large.release(&mut self.source);
                return Err(error);
            }
        };
        self.large.insert_reserved(block.addr().get(), pages);
        self.note_pages(block.addr().get(), pages * P::PAGE_SIZE);
        Ok(block)
    }

    /// Detection: outside the hull of every page ever taken from the
    /// source, or outside the source when it answers
    /// [`PageSource::contains`], is `OutOfRange` (with a source that cannot
    /// tell and several regions, an address in a gap between them is
    /// checked like a slab address: best-effort, and that memory is read).
    /// For a size class, the slab found by rounding the address down must
    /// carry a valid header of that class (else `NotAllocated`, which also
    /// catches a layout of another class), the address must be an object
    /// boundary that was handed out (else `NotAllocated`) and the object
    /// must not be free (else `DoubleFree`: an object whose first word
    /// could be a free-list link is looked up on the lists, so this is
    /// exact within live slabs; see `link.rs`). Best-effort: an
    /// address in pages that are not a slab of the class relies on the
    /// header magic (a 1 in 2^64 false match on arbitrary data). A large
    /// block must be recorded in the table of large blocks with the page
    /// count of `layout` (else `NotAllocated`), which is exact.
    ///
    /// # Safety
    /// See [`ByteAllocator::dealloc`].
    #[inline]
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        if let Some(class) = small_class(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.free_in(class, ptr) };
        }
        if let Some(class) = class_for_general(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.free_in(class, ptr) };
        }
        let addr = ptr.addr().get();
        if self.outside(addr) {
            return Err(AllocError::OutOfRange);
        }
        let (pages, align) = self.large_pages_for(layout)?;
        // `align` is a power of two: a mask test, not a division.
        if addr & (align - 1) != 0 {
            return Err(AllocError::NotAllocated);
        }
        // The source cannot tell this block from a slab that reuses its
        // pages: only a block recorded with this size goes back.
        self.large.check(addr, pages)?;
        // SAFETY: the table holds exactly the live large blocks, so `ptr`
        // is one of `pages` pages, and the caller no longer uses it.
        unsafe { self.source.dealloc_pages(ptr, pages)? };
        self.large.remove(&mut self.source, addr);
        Ok(())
    }

    /// In place when the new size maps to the same class (or the same page
    /// count), else moves.
    ///
    /// # Safety
    /// See [`ByteAllocator::realloc`].
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_size: usize,
    ) -> AllocResult<NonNull<u8>> {
        let new_layout = crate::traits::resized_layout(old_layout, new_size)?;
        let (old_class, new_class) = (class_for(old_layout), class_for(new_layout));
        let addr = ptr.addr().get();
        if self.outside(addr) {
            return Err(AllocError::OutOfRange);
        }
        match old_class {
            Some(class) => {
                let cache = self.caches[class]
                    .as_ref()
                    .expect("size classes always exist");
                cache.check_live(ptr, self.lo, self.hi)?;
            }
            None => self
                .large
                .check(addr, self.large_pages_for(old_layout)?.0)?,
        }
        let same_place = match (old_class, new_class) {
            (Some(old), Some(new)) => old == new,
            (None, None) => {
                old_layout.size().div_ceil(P::PAGE_SIZE) == new_size.div_ceil(P::PAGE_SIZE)
            }
            _ => false,
        };
        if same_place {
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { crate::traits::move_block(self, ptr, old_layout, new_layout) }
    }

    /// Bytes in slabs and large blocks, plus the page source's free pages.
    fn total_bytes(&self) -> usize {
        let slabs: usize = self
            .caches
            .iter()
            .flatten()
            .map(|c| c.slab_count() * c.slab_bytes())
            .sum();
        slabs + (self.large.pages() + self.source.available_pages()) * P::PAGE_SIZE
    }

    /// Live objects times their object size, plus large blocks' pages.
    fn used_bytes(&self) -> usize {
        let objects: usize = self
            .caches
            .iter()
            .flatten()
            .map(|c| c.active_objects() * c.object_size)
            .sum();
        objects + self.large.pages() * P::PAGE_SIZE
    }

    /// Free object slots in existing slabs, plus the page source's free pages.
    fn available_bytes(&self) -> usize {
        let free_slots: usize = self
            .caches
            .iter()
            .flatten()
            .map(|c| (c.slab_count() * c.objects_per_slab - c.active_objects()) * c.object_size)
            .sum();
        free_slots + self.source.available_pages() * P::PAGE_SIZE
    }
}

impl<P: PageSource> SlabAllocator<P> {
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
    pub unsafe fn check_dealloc(&self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let addr = ptr.addr().get();
        if self.outside(addr) {
            return Err(AllocError::OutOfRange);
        }
        match small_class(layout).or_else(|| class_for_general(layout)) {
            Some(class) => {
                let cache = self.caches[class]
                    .as_ref()
                    .expect("size classes always exist");
                cache.check_live(ptr, self.lo, self.hi).map(drop)
            }
            None => {
                let (pages, align) = self.large_pages_for(layout)?;
                if addr & (align - 1) != 0 {
                    return Err(AllocError::NotAllocated);
                }
                self.large.check(addr, pages)
            }
        }
    }
}
