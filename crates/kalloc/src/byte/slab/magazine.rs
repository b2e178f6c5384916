//! A cache's magazine: the objects freed most recently, in a short LIFO
//! array (Bonwick's magazine layer, one per cache). Allocation takes the
//! last freed object back and free parks the object, neither touching a
//! slab list, a slab's use count nor any shared word but the magazine's
//! own, so a free-one-allocate-one pattern over objects scattered across
//! many slabs costs a few stores and no data-dependent branch. An array,
//! not a list through the objects: taking an object back reads the slot
//! its free just wrote, not the object, so a free and the allocation
//! after it are not chained through a load of the object's memory.
//!
//! ```text
//!   slots: [obj, obj, obj, -, -, ..., -]    count = 3, capacity <= MAGAZINE_MAX
//!                     ^ taken back first
//!   each parked object: word 0 = ALONE, a link to itself (free_list.rs)
//! ```
//!
//! A parked object is free for errors (a second free of it is still
//! `DoubleFree`: its first word, marked as a link, makes the free look it
//! up here) and for the counters (`active_objects`), but still in use for
//! its slab's state machine: a slab holding parked objects is never empty,
//! so it is never given back while the magazine points into it.

use core::ptr;

use super::free_list;

/// The most objects one magazine holds: enough for a free-allocate rhythm
/// and short bursts (a per-CPU layer in front holds more), few enough that
/// a whole cache, slots included, fits in 256 bytes.
pub const MAGAZINE_MAX: usize = 8;

/// The parked objects of one cache.
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct Magazine {
    /// Objects parked now: `slots[..count]`.
    count: usize,
    /// The most it holds: half a slab's objects, at most `MAGAZINE_MAX`.
    capacity: usize,
    slots: [*mut u8; MAGAZINE_MAX],
}

impl Magazine {
    /// An empty magazine for a cache of `objects_per_slab` objects per slab:
    /// half a slab's objects, at most [`MAGAZINE_MAX`] (none for caches of
    /// one object per slab, whose single object is its whole slab).
    pub const fn new(objects_per_slab: usize) -> Self {
        let half = objects_per_slab / 2;
        let capacity = if half < MAGAZINE_MAX {
            half
        } else {
            MAGAZINE_MAX
        };
        Self {
            count: 0,
            capacity,
            slots: [ptr::null_mut(); MAGAZINE_MAX],
        }
    }

    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.count == self.capacity
    }

    /// Objects parked now.
    #[inline(always)]
    pub fn parked(&self) -> usize {
        self.count
    }

    /// Parks `object`, marking its first word as a link; returns the
    /// objects parked now.
    ///
    /// # Safety
    /// `object` is a freed object of this magazine's cache, in a slab in
    /// service, on no list, and the magazine is not full.
    #[inline(always)]
    pub unsafe fn push(&mut self, object: *mut u8) -> usize {
        debug_assert!(!self.is_full());
        // SAFETY: `count < capacity <= MAGAZINE_MAX` (not full: the
        // caller's guarantee); the object's first word is the allocator's
        // (objects are word-aligned and at least one word long).
        unsafe {
            *self.slots.get_unchecked_mut(self.count) = object;
            object.cast::<usize>().write(free_list::ALONE);
        }
        self.count += 1;
        self.count
    }

    /// Takes the most recently parked object back (its first word still
    /// marked: the caller clears it when handing it out).
    #[inline(always)]
    pub fn pop(&mut self) -> Option<*mut u8> {
        if self.count == 0 {
            return None;
        }
        self.count -= 1;
        // SAFETY: `count` was below `capacity <= MAGAZINE_MAX`.
        Some(unsafe { *self.slots.get_unchecked(self.count) })
    }

    /// The parked objects, most recent first.
    pub fn objects(&self) -> impl Iterator<Item = *mut u8> + '_ {
        self.slots[..self.count].iter().rev().copied()
    }

    /// Whether `object` is parked: at most [`MAGAZINE_MAX`] steps, on the
    /// error path only.
    pub fn contains(&self, object: *mut u8) -> bool {
        self.slots[..self.count].contains(&object)
    }
}

#[cfg(test)]
mod tests {
    use core::alloc::Layout;
    use core::ptr::NonNull;
    use std::alloc::{alloc_zeroed, dealloc};
    use std::vec::Vec;

    use crate::byte::{PageSource, SlabAllocator};
    use crate::{AllocError, AllocResult, ByteAllocator};

    const PAGE: usize = 4096;

    /// Pages from one aligned host buffer, handed out by a bump pointer;
    /// given-back pages are only counted.
    struct BumpPages {
        base: NonNull<u8>,
        layout: Layout,
        next: usize,
        returned: usize,
    }

    impl BumpPages {
        fn new(pages: usize) -> Self {
            let layout = Layout::from_size_align(pages * PAGE, 1 << 18).unwrap();
            // SAFETY: a non-zero size.
            let base = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
            Self {
                base,
                layout,
                next: 0,
                returned: 0,
            }
        }
    }

    impl Drop for BumpPages {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { dealloc(self.base.as_ptr(), self.layout) }
        }
    }

    impl PageSource for BumpPages {
        const PAGE_SIZE: usize = PAGE;

        fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<NonNull<u8>> {
            let start = (self.next * PAGE).next_multiple_of(align);
            if start + count * PAGE > self.layout.size() {
                return Err(AllocError::NoMemory);
            }
            self.next = start / PAGE + count;
            // SAFETY: inside the buffer (checked above).
            Ok(unsafe { self.base.add(start) })
        }

        unsafe fn dealloc_pages(&mut self, _pages: NonNull<u8>, count: usize) -> AllocResult {
            self.returned += count;
            Ok(())
        }

        fn available_pages(&self) -> usize {
            self.layout.size() / PAGE - self.next + self.returned
        }
    }

    fn kmalloc_64(slab: &SlabAllocator<BumpPages>) -> crate::byte::SlabInfo {
        slab.slabinfo()
            .find(|row| row.name == "kmalloc-64")
            .unwrap()
    }

    #[test]
    fn parked_objects_are_free_for_errors_counters_and_slabinfo() {
        let mut slab = SlabAllocator::new(BumpPages::new(64));
        let layout = Layout::from_size_align(64, 8).unwrap();
        let per_slab = kmalloc_64(&slab).objects_per_slab;
        let objects: Vec<_> = (0..per_slab * 3)
            .map(|_| slab.alloc(layout).unwrap())
            .collect();
        let victim = objects[per_slab + 1];
        // SAFETY: a live object of this layout.
        unsafe { slab.dealloc(victim, layout).unwrap() };
        let info = kmalloc_64(&slab);
        assert_eq!(info.active_objects, per_slab * 3 - 1);
        assert_eq!((info.full_slabs, info.partial_slabs), (2, 1));
        assert_eq!(slab.used_bytes(), (per_slab * 3 - 1) * 64);
        // SAFETY: a parked object: the allocator must refuse it.
        let second = unsafe { slab.dealloc(victim, layout) };
        assert_eq!(second, Err(AllocError::DoubleFree));
        assert_eq!(kmalloc_64(&slab).active_objects, per_slab * 3 - 1);
        // Last freed, first reused; the slab is full again.
        assert_eq!(slab.alloc(layout).unwrap(), victim);
        let info = kmalloc_64(&slab);
        assert_eq!((info.full_slabs, info.partial_slabs), (3, 0));
        for object in objects {
            // SAFETY: live objects, each freed once.
            unsafe { slab.dealloc(object, layout).unwrap() };
        }
        // The last free emptied the magazine, so the surplus empty slabs
        // went back at once.
        let info = kmalloc_64(&slab);
        assert_eq!((info.active_objects, info.empty_slabs), (0, 2));
        assert_eq!(slab.source().returned, 1);
        slab.shrink();
        assert_eq!(slab.source().returned, 3);
    }

    #[test]
    fn user_data_that_mimics_a_link_costs_a_lookup_not_a_wrong_answer() {
        let mut slab = SlabAllocator::new(BumpPages::new(64));
        let layout = Layout::from_size_align(64, 8).unwrap();
        let objects: Vec<_> = (0..8).map(|_| slab.alloc(layout).unwrap()).collect();
        // Link words as a free object would hold them: the end of a list,
        // and a link to another object of the cache.
        let ends_list = super::super::free_list::encode(objects[0].as_ptr(), objects[0].as_ptr());
        let links_on = super::super::free_list::encode(objects[1].as_ptr(), objects[2].as_ptr());
        // SAFETY: live 64-byte objects, written by their owner, freed once,
        // then freed again (reported).
        unsafe {
            objects[0].cast::<usize>().write(ends_list);
            objects[1].cast::<usize>().write(links_on);
            slab.dealloc(objects[0], layout).unwrap();
            slab.dealloc(objects[1], layout).unwrap();
            assert_eq!(
                slab.dealloc(objects[0], layout),
                Err(AllocError::DoubleFree)
            );
            assert_eq!(
                slab.dealloc(objects[1], layout),
                Err(AllocError::DoubleFree)
            );
            for &object in &objects[2..] {
                slab.dealloc(object, layout).unwrap();
            }
        }
        assert_eq!(kmalloc_64(&slab).active_objects, 0);
    }
}
