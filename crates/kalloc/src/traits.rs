//! The allocator interfaces: what every algorithm of the crate implements,
//! so kernels can swap algorithms without touching their callers.
//!
//! The shape follows ArceOS's `allocator` crate (`BaseAllocator`,
//! `ByteAllocator`, `PageAllocator`, `IdAllocator`) with four changes:
//! every operation that can be misused returns an
//! [`AllocError`](crate::AllocError) instead of panicking or corrupting
//! state, every allocator takes several disjoint regions, the operations
//! that write into memory handed over by the caller are `unsafe` with
//! their contract spelled out, and [`IdAllocator`] is not a
//! [`BaseAllocator`]: IDs are numbers, not memory, so it adds its ranges
//! with a safe method of its own.

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::AllocResult;

/// Setup shared by the memory allocators (page and byte): the first
/// region, then more.
pub trait BaseAllocator {
    /// Starts managing `[start, start + size)`. The default is
    /// [`add_memory`](Self::add_memory), which is right for every allocator
    /// of this crate; a wrapper overrides it to forward `init` itself.
    ///
    /// # Safety
    /// Same contract as [`add_memory`](Self::add_memory).
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: the caller upholds `add_memory`'s contract, which is this
        // method's.
        unsafe { self.add_memory(start, size) }
    }

    /// Adds the region `[start, start + size)`. Regions must not overlap
    /// memory already managed ([`AllocError::MemoryOverlap`]); a region
    /// too small to hold anything is [`AllocError::InvalidParam`].
    ///
    /// # Safety
    /// The range must be valid, writable memory that nothing else uses for
    /// as long as the allocator exists: the allocator keeps its metadata
    /// inside it and hands it out.
    ///
    /// [`AllocError::MemoryOverlap`]: crate::AllocError::MemoryOverlap
    /// [`AllocError::InvalidParam`]: crate::AllocError::InvalidParam
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult;
}

/// An allocator of byte-granular blocks (the backend of `malloc`).
///
/// `used_bytes` means the same for every algorithm: the bytes currently
/// handed out, including the rounding the algorithm applies to each request
/// (a 17-byte request served from a 32-byte class counts 32), excluding the
/// allocator's own headers and metadata. `available_bytes` is what a
/// sequence of allocations could still obtain.
pub trait ByteAllocator: BaseAllocator {
    /// Allocates a block that fits `layout`. A zero-size layout is
    /// [`AllocError::InvalidParam`](crate::AllocError::InvalidParam).
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>>;

    /// Frees the block at `ptr`, allocated with `layout`.
    ///
    /// Errors: a pointer outside every pool is `OutOfRange`; a block already
    /// free is `DoubleFree`; an address that is not the start of a live
    /// block, or a layout that does not match the block, is `NotAllocated`.
    /// On error nothing changes. Each algorithm documents which of these it
    /// detects exactly and which only on a best-effort basis.
    ///
    /// # Safety
    /// If `ptr` lies inside memory this allocator manages, it must be a
    /// pointer this allocator returned (it may have been freed since: that is
    /// a double free, which is reported) and no reference into the block may
    /// be used after the call succeeds.
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult;

    /// Resizes the block at `ptr` to `new_size` bytes with the same
    /// alignment, in place when possible, else by moving it (the first
    /// `min(old, new)` bytes are preserved). On error the old block is
    /// untouched and still owned by the caller.
    ///
    /// # Safety
    /// Same contract as [`dealloc`](Self::dealloc).
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_size: usize,
    ) -> AllocResult<NonNull<u8>> {
        let new_layout = resized_layout(old_layout, new_size)?;
        // SAFETY: forwarded from the caller's contract.
        unsafe { move_block(self, ptr, old_layout, new_layout) }
    }

    /// Bytes under management (the sum of the pools, minus metadata).
    fn total_bytes(&self) -> usize;
    /// Bytes handed out, including per-request rounding (see the trait doc).
    fn used_bytes(&self) -> usize;
    /// Bytes that allocations could still obtain.
    fn available_bytes(&self) -> usize;
}

/// The layout `realloc` asks for: `new_size` bytes at the old alignment.
/// A zero or unrepresentable size is `InvalidParam`, as in `alloc`.
pub(crate) fn resized_layout(old_layout: Layout, new_size: usize) -> AllocResult<Layout> {
    if new_size == 0 {
        return Err(crate::AllocError::InvalidParam);
    }
    Layout::from_size_align(new_size, old_layout.align())
        .map_err(|_| crate::AllocError::InvalidParam)
}

/// `realloc` by moving: a new block of `new_layout`, the first `min(old,
/// new)` bytes copied, then the old block freed. If that free fails, the
/// new block is freed again and the error returned, the old block intact.
///
/// # Safety
/// As [`ByteAllocator::realloc`], for `ptr` and `old_layout`.
pub(crate) unsafe fn move_block<A: ByteAllocator + ?Sized>(
    allocator: &mut A,
    ptr: NonNull<u8>,
    old_layout: Layout,
    new_layout: Layout,
) -> AllocResult<NonNull<u8>> {
    let new_ptr = allocator.alloc(new_layout)?;
    // SAFETY: both blocks are live and distinct (the new one was just
    // handed out), and each is at least `min(old, new)` bytes long.
    unsafe {
        core::ptr::copy_nonoverlapping(
            ptr.as_ptr(),
            new_ptr.as_ptr(),
            old_layout.size().min(new_layout.size()),
        );
    }
    // SAFETY: forwarded from the caller's contract.
    if let Err(e) = unsafe { allocator.dealloc(ptr, old_layout) } {
        // SAFETY: `new_ptr` was returned by `alloc` just above.
        let _ = unsafe { allocator.dealloc(new_ptr, new_layout) };
        return Err(e);
    }
    Ok(new_ptr)
}

/// An allocator of page-granular blocks (the physical frame allocator).
///
/// Addresses are whatever the caller handed to `add_memory` (a kernel
/// usually passes the linear-map virtual address of RAM).
pub trait PageAllocator: BaseAllocator {
    /// The page size in bytes, a power of two.
    const PAGE_SIZE: usize;

    /// Allocates `count` contiguous pages whose start is aligned to `align`
    /// bytes (a power of two; values below `PAGE_SIZE` mean `PAGE_SIZE`).
    /// `count == 0` or a bad alignment is `InvalidParam`.
    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize>;

    /// Allocates exactly the `count` pages starting at `addr`, which must be
    /// aligned to `align` (and to `PAGE_SIZE`). Fails with `NoMemory` if any
    /// of them is in use, `OutOfRange` if any is outside every region.
    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize>;

    /// Frees `count` pages at `addr`, which must be exactly a block (or the
    /// whole of a block) returned by an allocation of `count` pages.
    /// Errors as for [`ByteAllocator::dealloc`]; on error nothing changes.
    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult;

    /// Pages under management.
    fn total_pages(&self) -> usize;
    /// Pages handed out.
    fn used_pages(&self) -> usize;
    /// Pages free.
    fn available_pages(&self) -> usize {
        self.total_pages() - self.used_pages()
    }
}

/// An allocator of unique integer IDs (PIDs, ASIDs, IRQ numbers).
///
/// Not a [`BaseAllocator`]: the ranges it manages are sets of numbers, with
/// no memory behind them, so adding one is safe.
pub trait IdAllocator {
    /// Adds the IDs `[start, start + count)` to those managed. An empty
    /// range, or one the allocator cannot hold, is `InvalidParam`; a range
    /// overlapping IDs already managed is `MemoryOverlap`. On error nothing
    /// changes.
    fn add_ids(&mut self, start: usize, count: usize) -> AllocResult;
    /// Allocates `count` consecutive IDs whose first is a multiple of
    /// `align` (a power of two).
    fn alloc_id(&mut self, count: usize, align: usize) -> AllocResult<usize>;
    /// Allocates the given ID; `NoMemory` if it is taken.
    fn alloc_fixed_id(&mut self, id: usize) -> AllocResult;
    /// Frees `count` IDs from `start_id`; all must be allocated.
    fn dealloc_id(&mut self, start_id: usize, count: usize) -> AllocResult;
    /// Whether `id` is currently allocated.
    fn is_allocated(&self, id: usize) -> bool;
    /// IDs under management.
    fn size(&self) -> usize;
    /// IDs allocated.
    fn used(&self) -> usize;
    /// IDs free.
    fn available(&self) -> usize {
        self.size() - self.used()
    }
}
