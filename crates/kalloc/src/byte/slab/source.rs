//! Where slabs get their pages: a minimal page-source interface, with a
//! blanket implementation for every [`PageAllocator`] so a slab allocator
//! can sit directly on the buddy page allocator (on the host), or on a
//! kernel's own lock-protected global page allocator (via its own impl).

use core::ptr::{self, NonNull};

use crate::{AllocError, AllocResult, BaseAllocator, PageAllocator};

/// A supplier of contiguous, aligned runs of pages.
pub trait PageSource {
    /// The page size in bytes, a power of two.
    const PAGE_SIZE: usize;

    /// Allocates `count` contiguous pages aligned to `align` bytes (a power
    /// of two, at least `PAGE_SIZE`).
    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<NonNull<u8>>;

    /// Gives back `count` pages at `pages`.
    ///
    /// # Safety
    /// `pages` and `count` are exactly those of an earlier successful
    /// `alloc_pages`, and nothing uses the pages any more.
    unsafe fn dealloc_pages(&mut self, pages: NonNull<u8>, count: usize) -> AllocResult;

    /// Pages that could still be allocated.
    fn available_pages(&self) -> usize;

    /// Whether `addr` lies in memory this source manages, if it can tell
    /// cheaply. `None` (the default, and what the blanket impl answers)
    /// makes the slab allocator fall back to the hull of every page it has
    /// taken, which is exact for a single region and best-effort in the gaps
    /// between regions.
    fn contains(&self, addr: usize) -> Option<bool> {
        let _ = addr;
        None
    }

    /// Gives the source more memory, if it can take it (`InvalidParam`
    /// otherwise).
    ///
    /// # Safety
    /// As for [`BaseAllocator::add_memory`].
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        let _ = (start, size);
        Err(AllocError::InvalidParam)
    }
}

impl<A: PageAllocator> PageSource for A {
    const PAGE_SIZE: usize = A::PAGE_SIZE;

    /// The page allocator deals in addresses; they become pointers with
    /// the provenance that `add_memory`'s caller exposed.
    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<NonNull<u8>> {
        let addr = PageAllocator::alloc_pages(self, count, align)?;
        NonNull::new(ptr::with_exposed_provenance_mut(addr)).ok_or(AllocError::NoMemory)
    }

    unsafe fn dealloc_pages(&mut self, pages: NonNull<u8>, count: usize) -> AllocResult {
        PageAllocator::dealloc_pages(self, pages.addr().get(), count)
    }

    fn available_pages(&self) -> usize {
        PageAllocator::available_pages(self)
    }

    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { BaseAllocator::add_memory(self, start, size) }
    }
}
