//! A cache's slab bookkeeping: the partial and empty lists (full slabs
//! are only counted), the moves between them, refilling the current slab,
//! and taking slabs from and giving them back to the page source.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::{EMPTY, FULL, MAX_EMPTY_SLABS, PARTIAL, SlabCache, SlabHeader};
use crate::byte::slab::free_list::FreeList;
use crate::byte::slab::source::PageSource;
use crate::{AllocError, AllocResult};

impl SlabCache {
    /// The list of a slab other than the current one with `in_use` objects.
    #[inline]
    pub(super) fn list_for(&self, in_use: usize) -> usize {
        if in_use == 0 {
            EMPTY
        } else if in_use == self.objects_per_slab {
            FULL
        } else {
            PARTIAL
        }
    }

    /// Full slabs are only counted, not linked: nothing ever looks for
    /// one, and skipping the links saves touching a neighbour slab's header
    /// on most frees and allocations.
    ///
    /// # Safety
    /// `slab` is a slab of this cache on no list.
    #[inline]
    pub(super) unsafe fn push(&mut self, list: usize, slab: *mut SlabHeader) {
        self.counts[list] += 1;
        if list == FULL {
            return;
        }
        let head = self.lists[list];
        // SAFETY: `slab` and `head` are headers of this cache's slabs.
        unsafe {
            (*slab).prev = ptr::null_mut();
            (*slab).next = head;
            if !head.is_null() {
                (*head).prev = slab;
            }
        }
        self.lists[list] = slab;
    }

    /// # Safety
    /// `slab` is on `list`.
    #[inline]
    pub(super) unsafe fn unlink(&mut self, list: usize, slab: *mut SlabHeader) {
        self.counts[list] -= 1;
        if list == FULL {
            return;
        }
        // SAFETY: listed slabs and their neighbours are valid headers.
        unsafe {
            let (prev, next) = ((*slab).prev, (*slab).next);
            if !next.is_null() {
                (*next).prev = prev;
            }
            if prev.is_null() {
                self.lists[list] = next;
            } else {
                (*prev).next = next;
            }
        }
    }

    /// Moves `slab` to the list matching its new use count.
    ///
    /// # Safety
    /// `slab` is on the list for `old_in_use`.
    #[inline]
    pub(super) unsafe fn relist(&mut self, slab: *mut SlabHeader, old_in_use: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let (from, to) = (self.list_for(old_in_use), self.list_for((*slab).in_use));
            if from != to {
                self.unlink(from, slab);
                self.push(to, slab);
            }
        }
    }

    /// Whether an allocation would find a free object without taking a
    /// new slab from the source.
    pub(in crate::byte::slab) fn has_free_object(&self) -> bool {
        // SAFETY: a non-null current slab is a live slab of this cache.
        let current_has_room =
            !self.current.is_null() && unsafe { (*self.current).in_use } < self.objects_per_slab;
        self.magazine.parked() != 0
            || current_has_room
            || !self.lists[PARTIAL].is_null()
            || !self.lists[EMPTY].is_null()
    }

    /// Retires a full current slab to the full count and makes another
    /// slab with a free object current.
    #[cold]
    pub(super) fn refill<P: PageSource>(
        &mut self,
        source: &mut P,
        on_new_slab: impl FnOnce(usize, usize),
    ) -> AllocResult<*mut SlabHeader> {
        let slab = if !self.lists[PARTIAL].is_null() {
            self.lists[PARTIAL]
        } else if !self.lists[EMPTY].is_null() {
            self.lists[EMPTY]
        } else {
            let slab = self.new_slab(source)?;
            on_new_slab(slab.addr(), self.slab_bytes());
            slab
        };
        // SAFETY: `slab` heads its list; the old current slab, if any, is
        // full (the only reason to refill with one) and on no list.
        unsafe {
            self.unlink(self.list_for((*slab).in_use), slab);
            if !self.current.is_null() {
                self.push(FULL, self.current);
            }
        }
        self.current = slab;
        Ok(slab)
    }

    /// Takes a fresh slab from `source`, initialises it and puts it on the
    /// empty list.
    #[cold]
    pub(super) fn new_slab<P: PageSource>(
        &mut self,
        source: &mut P,
    ) -> AllocResult<*mut SlabHeader> {
        let slab_bytes = self.slab_bytes();
        let pages = source.alloc_pages(self.pages_per_slab, slab_bytes)?;
        if !pages.addr().get().is_multiple_of(slab_bytes) {
            // A source that ignores alignment would break address-to-slab
            // lookup; refuse it rather than corrupt memory later.
            // SAFETY: just obtained from `source` with these arguments.
            let _ = unsafe { source.dealloc_pages(pages, self.pages_per_slab) };
            return Err(AllocError::InvalidParam);
        }
        let slab = pages.as_ptr().cast::<SlabHeader>();
        // SAFETY: the slab's pages are ours; the header fits in them.
        unsafe {
            slab.write(SlabHeader {
                stamp: AtomicUsize::new(self.stamp(slab)),
                free: FreeList::EMPTY,
                carved: AtomicUsize::new(0),
                in_use: 0,
                prev: ptr::null_mut(),
                next: ptr::null_mut(),
            });
            self.push(EMPTY, slab);
        }
        Ok(slab)
    }

    /// `slab`'s `in_use` just dropped from `old_in_use`, the count of a
    /// full slab or 1: it changed state. Relists it (unless it is the
    /// current slab, which is on no list) and gives a surplus empty slab
    /// back to `source`.
    ///
    /// # Safety
    /// `slab` is a slab of this cache in service, on the list for
    /// `old_in_use` unless it is the current one.
    #[inline(never)]
    pub(super) unsafe fn changed_state<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        old_in_use: usize,
    ) {
        if slab != self.current {
            // SAFETY: forwarded from the caller.
            unsafe { self.on_transition(slab, old_in_use) };
        }
        if old_in_use == 1 && self.empty_slabs() > MAX_EMPTY_SLABS {
            self.release_empty(source);
        }
    }

    /// A slab other than the current one changed state. A full slab that
    /// just got a free object replaces a current slab that is full (or
    /// missing): the next allocation then takes the object just freed
    /// from a header still in cache, and no list is touched (the old
    /// current slab only joins the full count). Otherwise the slab moves
    /// to the list of its new state.
    ///
    /// # Safety
    /// `slab` is a slab of this cache, not the current one, on the list
    /// for `old_in_use`, and its `in_use` is already updated.
    #[inline]
    pub(super) unsafe fn on_transition(&mut self, slab: *mut SlabHeader, old_in_use: usize) {
        let current = self.current;
        // SAFETY: a non-null current slab is a live slab of this cache;
        // `slab` is on the list for `old_in_use` (the caller's guarantee).
        unsafe {
            let current_full = current.is_null() || (*current).in_use == self.objects_per_slab;
            if old_in_use == self.objects_per_slab && current_full {
                self.unlink(FULL, slab);
                if !current.is_null() {
                    self.push(FULL, current);
                }
                self.current = slab;
            } else {
                self.relist(slab, old_in_use);
            }
        }
    }

    /// Empty slabs held, the current slab included.
    #[inline]
    pub(super) fn empty_slabs(&self) -> usize {
        // SAFETY: a non-null current slab is a slab in service of this cache.
        let current_empty = !self.current.is_null() && unsafe { (*self.current).in_use } == 0;
        self.counts[EMPTY] + usize::from(current_empty)
    }

    /// Gives one empty slab back to `source`: a listed one, else the
    /// current slab if it is empty. Returns whether one was.
    #[cold]
    pub(in crate::byte::slab) fn release_empty<P: PageSource>(&mut self, source: &mut P) -> bool {
        let listed = self.lists[EMPTY];
        // SAFETY: a non-null current slab is a live slab of this cache.
        let current_empty = !self.current.is_null() && unsafe { (*self.current).in_use } == 0;
        let slab = if !listed.is_null() {
            // SAFETY: `listed` heads the empty list.
            unsafe { self.unlink(EMPTY, listed) };
            listed
        } else if current_empty {
            let slab = self.current;
            self.current = ptr::null_mut();
            slab
        } else {
            return false;
        };
        // SAFETY: `slab` is on no list now; its pages came from `source`
        // with `pages_per_slab` pages and no object in it is live.
        unsafe {
            (*slab).stamp.store(0, Relaxed);
            let pages = NonNull::new_unchecked(slab.cast::<u8>());
            if source.dealloc_pages(pages, self.pages_per_slab).is_err() {
                // The source refused its own block: keep the slab rather
                // than lose or double-count its pages.
                (*slab).stamp.store(self.stamp(slab), Relaxed);
                if current_empty && listed.is_null() {
                    self.current = slab;
                } else {
                    self.push(EMPTY, slab);
                }
                return false;
            }
        }
        true
    }
}
