//! Blocks of the global allocator held by address ([`Block`], and what a
//! free leaves, [`FreedBlock`]) and a fallible `Box` ([`try_box`]).

use super::check_free;
use alloc::boxed::Box;
use core::alloc::Layout;
use core::ptr::NonNull;
use kalloc::AllocError;

/// A block of the global allocator held by address rather than by a Rust
/// type (the monitor's `alloc` and `free`, the workload targets). Freeing
/// consumes it, so it is freed once, with the layout it was allocated
/// with; what is left, a [`FreedBlock`], can only ask for a verdict.
#[derive(Debug)]
pub struct Block {
    start: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a `Block` owns its allocation as a `Box` does; the global
// allocator may free it from any hart.
unsafe impl Send for Block {}

impl Block {
    /// Allocates `layout` from the global allocator; `None` for a zero
    /// size or when the allocation fails (reported as any failure is).
    pub fn alloc(layout: Layout) -> Option<Self> {
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: a non-zero size (checked above).
        let start = NonNull::new(unsafe { alloc::alloc::alloc(layout) })?;
        Some(Self { start, layout })
    }

    pub fn addr(&self) -> usize {
        self.start.addr().get()
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Frees the block.
    pub fn free(self) -> FreedBlock {
        // SAFETY: the block came from the global allocator with this
        // layout and, consumed here, is freed once.
        unsafe { alloc::alloc::dealloc(self.start.as_ptr(), self.layout) };
        FreedBlock {
            start: self.start,
            layout: self.layout,
        }
    }
}

/// Where a freed [`Block`] was. Only the global allocator's blocks leave
/// one, which is what makes asking for the verdict on a second free safe.
#[derive(Clone, Copy, Debug)]
pub struct FreedBlock {
    start: NonNull<u8>,
    layout: Layout,
}

// SAFETY: only an address and a layout; nothing is reached through them.
unsafe impl Send for FreedBlock {}

impl FreedBlock {
    /// The verdict the global allocator would give a second free of this
    /// block, without freeing ([`check_free`]).
    #[track_caller]
    pub fn check_free(&self) -> Result<(), AllocError> {
        // SAFETY: the address came from the global allocator (a `Block`).
        unsafe { check_free(self.start, self.layout) }
    }
}

/// Why a fallible allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocFailure {
    pub layout: Layout,
}

/// `Box::new` that reports failure instead of stopping the kernel
/// (`Box::try_new` is not stable yet).
pub fn try_box<T>(value: T) -> Result<Box<T>, AllocFailure> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(value));
    }
    // SAFETY: non-zero size checked above.
    let ptr = unsafe { alloc::alloc::alloc(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(AllocFailure { layout });
    }
    // SAFETY: `ptr` is a fresh, suitably aligned block for one `T`, which
    // `Box` frees with the same layout through the global allocator.
    unsafe {
        ptr.write(value);
        Ok(Box::from_raw(ptr))
    }
}
