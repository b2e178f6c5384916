//! The shared layer under the per-CPU caches: what the heap's lock
//! guards. A kalloc [`SlabAllocator`] over any page source is one; a
//! kernel with its own composition (a slab for small classes, TLSF above,
//! a table of large blocks) implements the trait itself.

use core::alloc::Layout;
use core::ptr::NonNull;

use kalloc::byte::{ObjectProbe, PageSource, SlabAllocator};
use kalloc::{AllocResult, ByteAllocator};

/// A heap the per-CPU caches sit on, used only under the heap's lock.
///
/// # Safety
/// Implementors promise what the caches rely on: blocks handed out are
/// disjoint and fit their layout; when [`object_probe`](Self::object_probe)
/// is `Some`, every `kmalloc` class layout is served by a kalloc slab
/// allocator whose probe and [`hull`](Self::hull) these are, and
/// [`alloc_objects`](Self::alloc_objects) hands out objects of that slab
/// allocator that nobody else holds.
pub unsafe trait Depot: Send {
    /// Something found under the lock that must be reported once it is
    /// released (no printing under an allocator lock): a pool the page
    /// source refused back, say.
    type Notice;

    /// The notice the last operation left, if any; the heap asks after
    /// every operation under the lock and passes it to
    /// [`report`](Self::report) after unlocking.
    fn take_notice(&mut self) -> Option<Self::Notice> {
        None
    }

    /// Reports a notice (no lock held).
    fn report(notice: Self::Notice) {
        let _ = notice;
    }

    /// The probe of the slab allocator behind the `kmalloc` classes, if
    /// one serves them (then the caches hold those classes); `None`
    /// sends every request to [`alloc`](Self::alloc) under the lock.
    fn object_probe(&self) -> Option<ObjectProbe>;

    /// That slab allocator's hull ([`SlabAllocator::hull`]).
    fn hull(&self) -> (usize, usize);

    /// Allocates any layout (non-zero size).
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>>;

    /// Frees a block; a bad free is an error and changes nothing.
    ///
    /// # Safety
    /// As [`ByteAllocator::dealloc`].
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult;

    /// The verdict [`dealloc`](Self::dealloc) would give, without freeing.
    ///
    /// # Safety
    /// As [`dealloc`](Self::dealloc).
    unsafe fn check_dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult;

    /// Up to `out.len()` objects of `kmalloc` class `class`
    /// ([`SlabAllocator::alloc_objects`]).
    fn alloc_objects(&mut self, class: usize, out: &mut [NonNull<u8>]) -> AllocResult<usize>;

    /// Takes objects of `class` back ([`SlabAllocator::free_objects`]).
    ///
    /// # Safety
    /// As [`SlabAllocator::free_objects`].
    unsafe fn free_objects(&mut self, class: usize, objects: &[NonNull<u8>]) -> AllocResult;

    /// Gives idle memory back to the page source (memory pressure).
    fn shrink(&mut self) {}
}

// SAFETY: the slab allocator serves the `kmalloc` classes itself, with
// the probe and hull it reports, and hands out disjoint blocks.
unsafe impl<P: PageSource + Send> Depot for SlabAllocator<P> {
    type Notice = core::convert::Infallible;

    fn object_probe(&self) -> Option<ObjectProbe> {
        Some(SlabAllocator::object_probe(self))
    }

    fn hull(&self) -> (usize, usize) {
        SlabAllocator::hull(self)
    }

    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        ByteAllocator::alloc(self, layout)
    }

    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { ByteAllocator::dealloc(self, ptr, layout) }
    }

    unsafe fn check_dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { SlabAllocator::check_dealloc(self, ptr, layout) }
    }

    fn alloc_objects(&mut self, class: usize, out: &mut [NonNull<u8>]) -> AllocResult<usize> {
        SlabAllocator::alloc_objects(self, class, out)
    }

    unsafe fn free_objects(&mut self, class: usize, objects: &[NonNull<u8>]) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { SlabAllocator::free_objects(self, class, objects) }
    }

    fn shrink(&mut self) {
        SlabAllocator::shrink(self);
    }
}
