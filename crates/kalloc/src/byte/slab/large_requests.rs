//! The requests a slab allocator does not serve from a size class's
//! magazine or current slab: a zero size, and blocks above 2 KiB (or
//! aligned beyond), which come from the page source as whole pages and
//! are recorded in the `LargeBlocks` table. Out of line, so that the
//! inline fast paths of `slab.rs` stay short.

use core::alloc::Layout;
use core::ptr::NonNull;

use super::classes::class_for_general;
use super::{Outcome, PageSource, SlabAllocator};
use crate::{AllocError, AllocResult};

impl<P: PageSource> SlabAllocator<P> {
    /// `alloc` of a layout `small_class` does not serve: a zero size, or
    /// pages (above 2 KiB, or aligned beyond).
    #[inline(never)]
    pub(super) fn alloc_other(&mut self, layout: Layout) -> Outcome {
        Outcome::new(self.alloc_large(layout))
    }

    /// [`alloc_other`](Self::alloc_other) as a `Result`.
    #[inline(always)]
    fn alloc_large(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        if layout.size() == 0 {
            return Err(AllocError::InvalidParam);
        }
        if let Some(class) = class_for_general(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.alloc_in(class) };
        }
        let (pages, align) = Self::large_pages_for(layout);
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
        self.hull.cover(block.addr().get(), pages * P::PAGE_SIZE);
        Ok(block)
    }

    /// `dealloc` of a layout `small_class` does not serve: a zero size (a
    /// class's, as `class_for_general` says), or pages.
    ///
    /// # Safety
    /// As for [`ByteAllocator::dealloc`](crate::ByteAllocator::dealloc).
    #[inline(never)]
    pub(super) unsafe fn dealloc_other(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        if let Some(class) = class_for_general(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.free_in(class, ptr) };
        }
        let addr = ptr.addr().get();
        if self.outside(addr) {
            return Err(AllocError::OutOfRange);
        }
        let pages = self.large_block(addr, layout)?;
        // SAFETY: the table holds exactly the live large blocks, so `ptr`
        // is one of `pages` pages, and the caller no longer uses it.
        unsafe { self.source.dealloc_pages(ptr, pages)? };
        self.large.remove(&mut self.source, addr);
        Ok(())
    }

    /// Pages and alignment of a request served from the page source.
    pub(super) fn large_pages_for(layout: Layout) -> (usize, usize) {
        let pages = layout.size().div_ceil(P::PAGE_SIZE);
        (pages, layout.align().max(P::PAGE_SIZE))
    }

    /// The page count of the live large block at `addr` that `layout`
    /// describes: aligned as `layout` asks and recorded in the table with
    /// that count, else `NotAllocated`. The page source alone cannot tell
    /// such a block from a slab that reuses its pages.
    pub(super) fn large_block(&self, addr: usize, layout: Layout) -> AllocResult<usize> {
        let (pages, align) = Self::large_pages_for(layout);
        // `align` is a power of two: a mask test, not a division.
        if addr & (align - 1) != 0 {
            return Err(AllocError::NotAllocated);
        }
        self.large.check(addr, pages)?;
        Ok(pages)
    }
}
