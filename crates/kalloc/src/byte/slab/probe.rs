//! The slab allocator seen from outside its lock: what a per-CPU cache in
//! front of it (Bonwick's magazine layer, Linux's per-CPU sheaves) needs
//! to hold `kmalloc` objects of its own.
//!
//! - [`SlabAllocator::alloc_objects`] and [`SlabAllocator::free_objects`]
//!   move objects of one class in batches, one lock acquisition each.
//! - An [`ObjectProbe`] tests a free without the lock: a copy of every
//!   class's geometry plus a snapshot of the hull, so it reads only the
//!   slab header's two atomic words and the object's first word, exactly
//!   what the allocator's own fast test reads.
//! - [`mark_parked`] writes into an object parked in a cache the word an
//!   object alone on a free list holds (a link to itself), so that a
//!   second free of it fails the fast test (its first word may be a link)
//!   and is settled under the lock; [`mark_live`] clears it before it is
//!   handed out.
//!
//! ```text
//!   free(obj, class) on a CPU        lock-free        under the lock
//!     probe.certainly_live? ──yes──► park in the CPU's magazine
//!                           └─no───────────────────► check_dealloc, then look
//!                                                    through every magazine
//! ```

use core::alloc::Layout;
use core::ptr::NonNull;

use super::classes::{self, KMALLOC_SIZES};
use super::free_list;
use super::shape::Shape;
use super::{Hull, PageSource, SlabAllocator};
use crate::{AllocError, AllocResult};

/// The number of `kmalloc` classes.
pub const KMALLOC_CLASSES: usize = KMALLOC_SIZES.len();

/// The `kmalloc` class serving `layout` (an index into [`KMALLOC_SIZES`]),
/// or `None` for a request served in pages (or a zero size).
#[inline(always)]
pub fn kmalloc_class(layout: Layout) -> Option<usize> {
    if layout.size() == 0 {
        return None;
    }
    classes::class_for(layout)
}

/// [`kmalloc_class`] in an OR, one compare and a table load, for every
/// layout a class serves (1 B to 2 KiB, aligned to at most 2 KiB); `None`
/// for any other. A per-CPU cache's fast path.
#[inline(always)]
pub fn kmalloc_small_class(layout: Layout) -> Option<usize> {
    classes::small_class(layout)
}

/// The layout every object of `class` satisfies: its size and its
/// alignment (the largest power of two dividing the size).
pub const fn kmalloc_class_layout(class: usize) -> Layout {
    match Layout::from_size_align(KMALLOC_SIZES[class], classes::class_align(class)) {
        Ok(layout) => layout,
        Err(_) => panic!("kmalloc classes have valid layouts"),
    }
}

/// Tests frees of `kmalloc` objects without the allocator's lock. A copy
/// of the classes' geometry, which never changes: it stays right for the
/// allocator's whole life, wherever it is kept.
#[derive(Clone, Copy)]
pub struct ObjectProbe {
    shapes: [Shape; KMALLOC_CLASSES],
}

impl ObjectProbe {
    /// Whether `object` is certainly a live object of `class` in a slab in
    /// service: the allocator's own fast test. `false` is no verdict: the
    /// free must be settled under the lock (an error, a double free, a
    /// live object whose first word looks like a link, a retired slab, or
    /// a `hull` older than the slab).
    ///
    /// # Safety
    /// `class` is a `kmalloc` class (below [`KMALLOC_CLASSES`]). `hull` is
    /// a value [`SlabAllocator::hull`] returned for the allocator this
    /// probe came from (of any age: the hull only grows); the pages it
    /// covers stay mapped. If `object` lies in memory the allocator
    /// manages, it is a pointer the allocator returned (it may have been
    /// freed since, as for `dealloc`).
    #[inline(always)]
    pub unsafe fn certainly_live(
        &self,
        object: NonNull<u8>,
        class: usize,
        hull: (usize, usize),
    ) -> bool {
        let hull = Hull::new(hull.0, hull.1.wrapping_sub(hull.0));
        debug_assert!(class < KMALLOC_CLASSES);
        // SAFETY: forwarded from the caller (`class` is in bounds).
        let shape = unsafe { self.shapes.get_unchecked(class) };
        let object = object.as_ptr();
        // SAFETY: the slab is `object`'s; the rest is forwarded from the
        // caller.
        unsafe { shape.certainly_live::<true>(object, shape.slab_of(object), hull) }
    }
}

/// Marks `object`, a free object parked outside the allocator, so that
/// [`ObjectProbe::certainly_live`] and the allocator's own free test see
/// that it may be free: its first word becomes the link of an object
/// alone on a free list (to itself).
///
/// # Safety
/// `object` is an object of this crate's slab allocator that its owner
/// gave up (the word is the allocator's now).
#[inline(always)]
pub unsafe fn mark_parked(object: NonNull<u8>) {
    let object = object.as_ptr();
    // SAFETY: the caller's guarantee; objects are word-aligned and at
    // least a word long.
    unsafe { object.cast::<usize>().write(free_list::ALONE) }
}

/// Clears the mark of [`mark_parked`] from an object about to be handed
/// out (as the allocator clears a link), so it does not look free.
///
/// # Safety
/// As for [`mark_parked`].
#[inline(always)]
pub unsafe fn mark_live(object: NonNull<u8>) {
    // SAFETY: the caller's guarantee.
    unsafe { object.as_ptr().cast::<usize>().write(0) }
}

impl<P: PageSource> SlabAllocator<P> {
    /// The probe for this allocator's `kmalloc` classes.
    pub fn object_probe(&self) -> ObjectProbe {
        ObjectProbe {
            shapes: core::array::from_fn(|class| self.class_cache(class).shape),
        }
    }

    /// The address range of every page the allocator took from its source
    /// so far, `(lo, hi)`: the argument of
    /// [`ObjectProbe::certainly_live`]. It only grows.
    pub fn hull(&self) -> (usize, usize) {
        (self.hull.lo, self.hull.hi())
    }

    /// Allocates up to `out.len()` objects of `class` into `out`, as
    /// `alloc` would one by one, and returns how many. Only the first may
    /// take a new slab from the page source: the batch stops where the
    /// slabs it has run out, so a batch never holds more slabs than one
    /// allocation would, and a failure of the source is the caller's
    /// error, never hidden in a short batch. An error only if not even
    /// one object could be had (`InvalidParam` for an empty `out` or a
    /// class that does not exist).
    pub fn alloc_objects(&mut self, class: usize, out: &mut [NonNull<u8>]) -> AllocResult<usize> {
        if class >= KMALLOC_CLASSES || out.is_empty() {
            return Err(AllocError::InvalidParam);
        }
        for (taken, slot) in out.iter_mut().enumerate() {
            if taken > 0 && !self.class_cache(class).has_free_object() {
                return Ok(taken);
            }
            // SAFETY: size classes always exist.
            *slot = unsafe { self.alloc_in(class) }?;
        }
        Ok(out.len())
    }

    /// Frees objects of `class`, each with the checks of `dealloc` (after
    /// clearing a [`mark_parked`] mark, which would only send the check the
    /// slow way). Returns the first refusal, having freed every object that
    /// was not refused.
    ///
    /// # Safety
    /// Each object is an object of `class` this allocator handed out that
    /// nobody uses any more, and appears once.
    pub unsafe fn free_objects(&mut self, class: usize, objects: &[NonNull<u8>]) -> AllocResult {
        if class >= KMALLOC_CLASSES {
            return Err(AllocError::InvalidParam);
        }
        let mut result = Ok(());
        for &object in objects {
            // SAFETY: the caller's guarantees: a given-up object of `class`;
            // size classes always exist.
            let freed = unsafe {
                mark_live(object);
                self.free_in(class, object)
            };
            if result.is_ok() {
                result = freed;
            }
        }
        result
    }
}
