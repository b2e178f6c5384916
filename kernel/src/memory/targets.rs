//! The kernel's allocators as `workload` targets (the global allocator,
//! the page allocator), and the counter snapshot that the workloads
//! compare before and after a run: the concurrency tests, the stress mode
//! and the monitor's `bench` all drive the same two.

use super::{heap, pages};
use crate::arch::PAGE_SIZE;
use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use kalloc::AllocError;
use workload::Target;

/// The global allocator (`alloc::alloc`), as Rust code reaches it.
pub struct GlobalHeap;

impl Target for GlobalHeap {
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let layout = Layout::from_size_align(size, align).map_err(|_| AllocError::InvalidParam)?;
        if layout.size() == 0 {
            return Err(AllocError::InvalidParam);
        }
        // SAFETY: a non-zero size (checked above).
        NonNull::new(unsafe { alloc::alloc::alloc(layout) }).ok_or(AllocError::NoMemory)
    }

    unsafe fn free(
        &mut self,
        ptr: NonNull<u8>,
        size: usize,
        align: usize,
    ) -> Result<(), AllocError> {
        let layout = Layout::from_size_align(size, align).map_err(|_| AllocError::InvalidParam)?;
        // SAFETY: forwarded from the caller: a live block of this layout.
        unsafe { alloc::alloc::dealloc(ptr.as_ptr(), layout) };
        Ok(())
    }
}

/// The page allocator (`memory::pages`); sizes round up to whole pages,
/// alignments up to the page size.
pub struct Frames;

impl Target for Frames {
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let addr = pages::alloc(size.div_ceil(PAGE_SIZE), align.max(PAGE_SIZE))?;
        NonNull::new(addr as *mut u8).ok_or(AllocError::NoMemory)
    }

    unsafe fn free(
        &mut self,
        ptr: NonNull<u8>,
        size: usize,
        _align: usize,
    ) -> Result<(), AllocError> {
        pages::free(ptr.addr().get(), size.div_ceil(PAGE_SIZE))
    }
}

/// Every counter a workload run must leave as it found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub pages_used: usize,
    pub heap_pages: usize,
    pub live_blocks: usize,
    pub live_bytes: usize,
    pub large_pages: usize,
    pub heap_used_bytes: usize,
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pages used {} (heap {}, large {}), live blocks {}, live bytes {}, heap used bytes {}",
            self.pages_used,
            self.heap_pages,
            self.large_pages,
            self.live_blocks,
            self.live_bytes,
            self.heap_used_bytes
        )
    }
}

/// Gives idle heap memory back (quarantines included), then reads the
/// counters.
pub fn snapshot() -> Snapshot {
    heap::shrink();
    Snapshot {
        pages_used: pages::usage().0,
        heap_pages: heap::COUNTERS.heap_pages.load(Ordering::Relaxed),
        live_blocks: heap::COUNTERS.live_blocks.load(Ordering::Relaxed),
        live_bytes: heap::COUNTERS.live_bytes.load(Ordering::Relaxed),
        large_pages: heap::COUNTERS.large_pages.load(Ordering::Relaxed),
        heap_used_bytes: heap::used_bytes(),
    }
}
