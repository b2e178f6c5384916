//! Freeing into a cache: the fast free the allocator inlines
//! (`free_fast`), the checked free every other one goes through (`free`,
//! after `check_live`), and what follows a free (parking the object or
//! putting it back on its slab, relisting a slab that changed state,
//! emptying the magazine once nothing is live).

use core::ptr::NonNull;

use super::{AfterFree, Live, SlabCache, SlabHeader};
use crate::byte::slab::Hull;
#[cfg(doc)]
use crate::byte::slab::shape::Shape;
use crate::byte::slab::source::PageSource;
use crate::{AllocError, AllocResult};

impl SlabCache {
    /// The common free: if `object` passes the fast test
    /// ([`Shape::certainly_live`]), releases it
    /// ([`release`](Self::release)) and returns what is left to do, for
    /// the caller to do out of line unless it is `Done`. `None`
    /// changes nothing: the caller then takes the checked way,
    /// [`free`](Self::free), which names the error or frees what only
    /// looked doubtful.
    ///
    /// # Safety
    /// `hull` is the range of pages the slab allocator took from its
    /// source, which stay mapped; if `object` lies in memory the allocator
    /// manages, it is a pointer the allocator returned; if the free
    /// succeeds, no reference into the object is used after it.
    #[inline(always)]
    pub unsafe fn free_fast<P: PageSource>(
        &mut self,
        source: &mut P,
        object: *mut u8,
        hull: Hull,
    ) -> Option<AfterFree> {
        let slab = self.slab_of(object);
        // A header is read only in pages taken from the source: inside the
        // hull (`certainly_live` checks), and not in a gap between the
        // source's regions.
        if source.contains(slab.addr()) == Some(false) {
            return None;
        }
        // SAFETY: `slab` is `object`'s slab; `hull` is the range of pages
        // taken from the source, which stay mapped, and a slab boundary in
        // a gap between its regions was refused above; the rest is the
        // caller's contract.
        if !unsafe { self.shape.certainly_live::<false>(object, slab, hull) } {
            return None;
        }
        // SAFETY: `object` is a live object of `slab`, a slab in service
        // of this cache (the fast test), which the caller gives up.
        Some(unsafe { self.release(slab, object) })
    }

    /// Parks the live `object` of `slab` in the magazine or, when that is
    /// full, gives it back to its slab. Whatever else there is to do (a
    /// slab that changed state; the cache's last live object, which
    /// empties the magazine, so that a cache with nothing allocated holds
    /// exactly its empty slabs) is returned, for one call out of line
    /// ([`drain_magazine`](Self::drain_magazine) or
    /// [`settle`](Self::settle)), so the common way needs no stack.
    ///
    /// # Safety
    /// `object` is a live object of `slab`, a slab in service of this
    /// cache, and its user gives it up.
    #[inline(always)]
    unsafe fn release(&mut self, slab: *mut SlabHeader, object: *mut u8) -> AfterFree {
        // SAFETY: the caller's guarantees.
        unsafe {
            if !self.magazine.is_full() {
                // `held` stays: the object goes from live to parked. It
                // was the last live one if every held object is parked.
                if self.magazine.push(object) == self.held {
                    return AfterFree::Drain;
                }
            } else {
                self.held -= 1;
                let old_in_use = self.push_to_slab(slab, object);
                if self.changes_state(old_in_use) || self.active_objects() == 0 {
                    return AfterFree::Settle(slab, old_in_use);
                }
            }
        }
        AfterFree::Done
    }

    /// The rest of a [`release`](Self::release) into `slab`, whose
    /// `in_use` just dropped from `old_in_use`: relists a slab that
    /// changed state, then empties the magazine if no object is live.
    ///
    /// # Safety
    /// As for [`changed_state`](Self::changed_state).
    #[inline(never)]
    pub unsafe fn settle<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        old_in_use: usize,
    ) {
        if self.changes_state(old_in_use) {
            // SAFETY: forwarded from the caller.
            unsafe { self.changed_state(source, slab, old_in_use) };
        }
        if self.active_objects() == 0 {
            self.drain_magazine(source);
        }
    }

    /// Checks that `object` is a live object of this cache (the four
    /// checks of the module doc); returns its slab. The common case is
    /// [`Shape::certainly_live`]; anything else (an error, an object that
    /// may be free, a retired slab) goes to [`classify`](Self::classify).
    ///
    /// # Safety
    /// `object` lies in `hull`, the pages the slab allocator took from its
    /// source (which stay mapped), and, as `dealloc` requires, if it lies
    /// in memory the allocator manages it is a pointer the allocator
    /// returned.
    #[inline]
    pub unsafe fn check_live(&self, object: NonNull<u8>, hull: Hull) -> AllocResult<Live> {
        let object = object.as_ptr();
        let slab = self.slab_of(object);
        // SAFETY: `slab` is `object`'s slab; the rest is forwarded from
        // the caller.
        if unsafe { self.shape.certainly_live::<false>(object, slab, hull) } {
            return Ok(Live::InService(slab));
        }
        if slab.addr() < hull.lo {
            return Err(AllocError::NotAllocated);
        }
        let offset = object
            .addr()
            .wrapping_sub(slab.addr() + self.shape.first_object);
        self.classify(slab, offset, object)
    }

    /// Frees `object`, after [`check_live`](Self::check_live): parks it in
    /// the magazine, or, when that is full, gives it back to its slab (and
    /// a surplus empty slab back to `source`). The last live object of the
    /// cache empties the magazine, so a cache with nothing allocated holds
    /// exactly its empty slabs.
    ///
    /// # Safety
    /// As for `check_live`; and, if the free succeeds, no reference into
    /// the object is used after it.
    pub unsafe fn free<P: PageSource>(
        &mut self,
        source: &mut P,
        object: NonNull<u8>,
        hull: Hull,
    ) -> AllocResult {
        // SAFETY: forwarded from the caller.
        let live = unsafe { self.check_live(object, hull)? };
        let object = object.as_ptr();
        // SAFETY: `check_live` found `object` live in `slab`, a slab of
        // this cache; the caller gives it up. A `Settle` carries the slab
        // and count of the release just made.
        unsafe {
            match live {
                Live::InService(slab) => match self.release(slab, object) {
                    AfterFree::Done => {}
                    AfterFree::Drain => self.drain_magazine(source),
                    AfterFree::Settle(slab, old_in_use) => self.settle(source, slab, old_in_use),
                },
                Live::Retired(slab) => {
                    self.free_retired(source, slab, object);
                    self.held -= 1;
                    if self.active_objects() == 0 {
                        self.drain_magazine(source);
                    }
                }
            }
        }
        Ok(())
    }

    /// Gives every parked object back to its slab.
    #[cold]
    #[inline(never)]
    pub fn drain_magazine<P: PageSource>(&mut self, source: &mut P) {
        self.held -= self.magazine.parked();
        while let Some(object) = self.magazine.pop() {
            let slab = self.slab_of(object);
            // SAFETY: a parked object is a free object of a slab in service
            // of this cache, counted in its `in_use`, on no free list.
            unsafe { self.return_to_slab(source, slab, object) };
        }
    }

    /// Pushes a free `object` on its slab's free list and updates the
    /// slab's state.
    ///
    /// # Safety
    /// `object` is a freed object of `slab`, a slab of this cache in
    /// service, on no list, and still counted in the slab's `in_use`.
    #[inline(always)]
    unsafe fn return_to_slab<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        object: *mut u8,
    ) {
        // SAFETY: the caller's guarantees.
        unsafe {
            let old_in_use = self.push_to_slab(slab, object);
            if self.changes_state(old_in_use) {
                self.changed_state(source, slab, old_in_use);
            }
        }
    }

    /// Pushes a free `object` on its slab's free list; returns the slab's
    /// `in_use` before.
    ///
    /// # Safety
    /// As for [`return_to_slab`](Self::return_to_slab).
    #[inline(always)]
    unsafe fn push_to_slab(&mut self, slab: *mut SlabHeader, object: *mut u8) -> usize {
        // SAFETY: the caller's guarantees; field by field, never a `&mut`
        // to the whole header (the probe reads it without the lock).
        unsafe {
            (*slab).free.push(object);
            let old_in_use = (*slab).in_use;
            (*slab).in_use = old_in_use - 1;
            old_in_use
        }
    }

    /// Whether a slab whose `in_use` drops from `old_in_use` changes
    /// state: the first free of a full slab (full -> partial) and the last
    /// object (partial -> empty).
    #[inline(always)]
    fn changes_state(&self, old_in_use: usize) -> bool {
        old_in_use == self.objects_per_slab || old_in_use == 1
    }
}
