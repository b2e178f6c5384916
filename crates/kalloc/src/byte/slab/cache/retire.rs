//! Retiring a slab (memory failure: a bad page backs it). A retired slab
//! is on no list and never allocated from again; its objects are not
//! reused once freed, and its pages go back to the source with its last
//! live object (at once if it has none).

use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering::Relaxed;

use super::{RETIRED, SlabCache, SlabHeader};
use crate::byte::slab::Hull;
use crate::byte::slab::source::PageSource;

impl SlabCache {
    /// Retired slabs still holding live objects.
    pub fn retired_slabs(&self) -> usize {
        self.retired
    }

    /// The slab of this cache holding `addr`, if that is a live slab;
    /// `hull` bounds the pages ever taken from the source.
    pub fn slab_holding(&self, addr: NonNull<u8>, hull: Hull) -> Option<*mut SlabHeader> {
        let slab = self.slab_of(addr.as_ptr());
        let slab_addr = slab.addr();
        if slab_addr < hull.lo || slab_addr.saturating_add(self.shape.first_object) > hull.hi() {
            return None;
        }
        self.is_live(slab).then_some(slab)
    }

    /// Whether `slab` (an address inside pages taken from the source) is a
    /// live slab of this cache, in service or retired.
    fn is_live(&self, slab: *mut SlabHeader) -> bool {
        // SAFETY: the caller's address lies in pages obtained from the
        // source, which stay mapped (as in `check_live`); only the stamp
        // is read.
        let stamp = unsafe { (*slab).stamp.load(Relaxed) };
        stamp == self.stamp(slab) || stamp == self.stamp(slab) ^ RETIRED
    }

    /// Takes `slab` out of service. Parked objects go back to their slabs
    /// first, so none of `slab`'s is handed out from the magazine; if that
    /// emptied `slab` and the cache gave it back, it is out of service
    /// already. Returns whether the slab was in service.
    ///
    /// # Safety
    /// [`slab_holding`](Self::slab_holding) returned `slab` and nothing
    /// changed since.
    pub(in crate::byte::slab) unsafe fn retire<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
    ) -> bool {
        self.drain_magazine(source);
        if !self.is_live(slab) {
            return true;
        }
        // SAFETY: a live slab of this cache (checked just above); the
        // current slab is on no list, any other is on the list for its
        // `in_use`.
        unsafe {
            if (*slab).stamp.load(Relaxed) != self.stamp(slab) {
                return false; // retired already
            }
            if slab == self.current {
                self.current = ptr::null_mut();
            } else {
                self.unlink(self.list_for((*slab).in_use), slab);
            }
            (*slab).stamp.store(self.stamp(slab) ^ RETIRED, Relaxed);
            if (*slab).in_use == 0 {
                self.give_back(source, slab);
            } else {
                self.retired += 1;
            }
        }
        true
    }

    /// `object`, a live object of the retired `slab`, was freed. It goes
    /// on the slab's free list, which nothing allocates from any more, so
    /// a second free of it still finds it there (`DoubleFree`); the slab's
    /// pages go back with its last object.
    ///
    /// # Safety
    /// `slab` is a retired slab of this cache and `object` one of its live
    /// objects.
    pub(super) unsafe fn free_retired<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        object: *mut u8,
    ) {
        // SAFETY: the caller's guarantees.
        unsafe {
            (*slab).free.push(object);
            (*slab).in_use -= 1;
            if (*slab).in_use == 0 {
                self.retired -= 1;
                self.give_back(source, slab);
            }
        }
    }

    /// Returns a retired slab with no live object to `source`.
    ///
    /// # Safety
    /// `slab` is retired, on no list, and holds no live object.
    unsafe fn give_back<P: PageSource>(&mut self, source: &mut P, slab: *mut SlabHeader) {
        // SAFETY: forwarded from the caller; the slab's pages came from
        // `source` with `pages_per_slab` pages.
        unsafe {
            (*slab).stamp.store(0, Relaxed);
            // A source refusing its own block is a bug elsewhere; the slab
            // is out of service either way, so its pages are only lost.
            let _ = source.dealloc_pages(
                NonNull::new_unchecked(slab.cast::<u8>()),
                self.pages_per_slab,
            );
        }
    }
}
