//! What a workload drives: anything that allocates and frees blocks of a
//! size and alignment. Adapters for the `kalloc` interfaces are here; the
//! kernel adds its global allocator.

use core::alloc::Layout;
use core::ptr::NonNull;

use kalloc::{AllocError, ByteAllocator, PageAllocator};

/// An allocator under test.
pub trait Target {
    /// Allocates `size` bytes aligned to `align` (a power of two).
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError>;

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` was returned by `alloc(size, align)` of this target and is
    /// still live.
    unsafe fn free(
        &mut self,
        ptr: NonNull<u8>,
        size: usize,
        align: usize,
    ) -> Result<(), AllocError>;
}

/// Drives a [`ByteAllocator`].
pub struct Bytes<'a, A: ByteAllocator>(pub &'a mut A);

impl<A: ByteAllocator> Target for Bytes<'_, A> {
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let layout = Layout::from_size_align(size, align).map_err(|_| AllocError::InvalidParam)?;
        self.0.alloc(layout)
    }

    unsafe fn free(
        &mut self,
        ptr: NonNull<u8>,
        size: usize,
        align: usize,
    ) -> Result<(), AllocError> {
        let layout = Layout::from_size_align(size, align).map_err(|_| AllocError::InvalidParam)?;
        // SAFETY: forwarded from the caller.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// Drives a [`PageAllocator`]: sizes round up to whole pages, alignments
/// up to the page size. Its addresses must be dereferenceable (host memory
/// in tests, the linear map in the kernel).
pub struct Pages<'a, P: PageAllocator>(pub &'a mut P);

impl<P: PageAllocator> Target for Pages<'_, P> {
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let addr = self
            .0
            .alloc_pages(size.div_ceil(P::PAGE_SIZE), align.max(P::PAGE_SIZE))?;
        NonNull::new(core::ptr::with_exposed_provenance_mut(addr)).ok_or(AllocError::InvalidParam)
    }

    unsafe fn free(
        &mut self,
        ptr: NonNull<u8>,
        size: usize,
        _align: usize,
    ) -> Result<(), AllocError> {
        self.0
            .dealloc_pages(ptr.addr().get(), size.div_ceil(P::PAGE_SIZE))
    }
}
