//! One slab cache: objects of one size, in slabs of `2^k` pages aligned to
//! their own size, so an object's slab is its address rounded down (no
//! lookup). Each slab starts with a [`SlabHeader`], followed by the
//! objects. A free checks the header's magic, that the address is an
//! object boundary below the slab's bump (a multiply, no division) and
//! the object's link word (`link.rs`): certainly live, or looked up on the
//! free lists, which makes double-free detection exact without any
//! per-object state to update on allocation and free.

use core::ptr::{self, NonNull};

use super::info::SlabInfo;
use super::link;
use super::magazine::Magazine;
use super::source::PageSource;
use crate::AllocResult;

mod check;
mod lists;
mod retire;

/// At most this many empty slabs stay in a cache; more go back to the
/// page source at once.
pub const MAX_EMPTY_SLABS: usize = 2;
/// The largest slab is `2^MAX_SLAB_ORDER` pages.
const MAX_SLAB_ORDER: u32 = 6;
/// Tells a slab header from other memory: a slab in service holds
/// `SLAB_MAGIC ^ slab address ^ cache index`, so one compare checks that an
/// address lies in a live slab of the expected cache.
const SLAB_MAGIC: usize = 0x51ab_c0de_51ab_c0de_u64 as usize;
/// XORed into the magic of a retired slab (taken out of service because a
/// bad page backs it): its frees fail the fast path's compare and take the
/// slow one, which knows retired slabs.
const RETIRED: usize = 0x7e71_7ed0_7e71_7ed0_u64 as usize;

/// The header at the start of every slab.
#[repr(C)]
pub(super) struct SlabHeader {
    /// `SLAB_MAGIC ^ slab address ^ cache index` while the slab is in
    /// service (`^ RETIRED` once retired), 0 once given back.
    magic: usize,
    /// Freed objects, linked through their first word (`link.rs`).
    free_head: *mut u8,
    /// Bytes of objects handed out from the bump, counted from the first
    /// object: objects at or above it were never handed out.
    carved: usize,
    /// Objects not on this slab's free list: live, parked in the
    /// magazine, or (retired slabs) freed but kept off the free list.
    in_use: usize,
    prev: *mut SlabHeader,
    next: *mut SlabHeader,
}

const FULL: usize = 0;
const PARTIAL: usize = 1;
const EMPTY: usize = 2;

/// A cache of equal-size objects.
#[derive(Clone, Copy)]
pub(super) struct SlabCache {
    pub name: &'static str,
    pub object_size: usize,
    pub pages_per_slab: usize,
    pub objects_per_slab: usize,
    slab_bytes: usize,
    /// Divisibility by `object_size` in a multiply, rotate and compare
    /// (Granlund and Montgomery): `object_size = odd << size_shift`,
    /// `odd_inverse * odd = 1 (mod 2^64)`, `multiple_limit = usize::MAX /
    /// object_size`.
    odd_inverse: usize,
    size_shift: u32,
    multiple_limit: usize,
    first_object: usize,
    /// The slab allocations come from (SLUB's "cpu slab"): on no list and
    /// in no count, so allocating from it and freeing into it never
    /// relists anything. Null until the first allocation, or after
    /// `release_empty` gave it back.
    current: *mut SlabHeader,
    /// Slab lists by state, current slab excluded: partial and empty (the
    /// full slot stays null: full slabs are only counted).
    lists: [*mut SlabHeader; 3],
    counts: [usize; 3],
    /// Recently freed objects, taken back first by `alloc`.
    magazine: Magazine,
    /// Retired slabs still holding live objects.
    retired: usize,
    /// The sum of every slab's `in_use`: live objects plus parked ones
    /// (and freed objects of retired slabs). Changes only when an object
    /// leaves or rejoins a slab, never on the magazine's fast path.
    held: usize,
    index: usize,
}

/// The inverse of odd `odd` modulo `2^64` (Newton's iteration: each step
/// doubles the correct low bits, from 3 at the start: `odd * odd = 1 mod 8`).
const fn odd_inverse(odd: usize) -> usize {
    let mut inverse = odd;
    let mut step = 0;
    while step < 5 {
        inverse = inverse.wrapping_mul(2usize.wrapping_sub(odd.wrapping_mul(inverse)));
        step += 1;
    }
    inverse
}

impl SlabCache {
    /// Lays out a cache for objects of `size` bytes aligned to `align`;
    /// picks the smallest slab (up to `2^MAX_SLAB_ORDER` pages) that wastes
    /// at most 1/8 of its bytes. `None` if no slab holds one object.
    pub fn new(
        name: &'static str,
        index: usize,
        size: usize,
        align: usize,
        page_size: usize,
    ) -> Option<Self> {
        let align = align.max(size_of::<usize>());
        let object_size = size
            .max(size_of::<usize>())
            .checked_next_multiple_of(align)?;
        let mut best = None;
        for order in 0..=MAX_SLAB_ORDER {
            let slab_bytes = page_size.checked_shl(order)?;
            let Some((objects, first)) = Self::fit(slab_bytes, object_size, align) else {
                continue;
            };
            best = Some((order, slab_bytes, objects, first));
            if (slab_bytes - objects * object_size) * 8 <= slab_bytes {
                break;
            }
        }
        let (order, slab_bytes, objects, first_object) = best?;
        let size_shift = object_size.trailing_zeros();
        Some(Self {
            name,
            object_size,
            pages_per_slab: 1 << order,
            objects_per_slab: objects,
            slab_bytes,
            odd_inverse: odd_inverse(object_size >> size_shift),
            size_shift,
            multiple_limit: usize::MAX / object_size,
            first_object,
            current: ptr::null_mut(),
            lists: [ptr::null_mut(); 3],
            counts: [0; 3],
            magazine: Magazine::new(objects),
            retired: 0,
            held: 0,
            index,
        })
    }

    /// Objects per slab and the offset of the first (after the header,
    /// aligned to `align`), or `None` if none fit.
    fn fit(slab_bytes: usize, object_size: usize, align: usize) -> Option<(usize, usize)> {
        let first = size_of::<SlabHeader>().next_multiple_of(align);
        let objects = slab_bytes.checked_sub(first)? / object_size;
        (objects > 0).then_some((objects, first))
    }

    /// The magic of this cache's slab at `slab_addr` while in service.
    #[inline(always)]
    fn live_magic(&self, slab_addr: usize) -> usize {
        SLAB_MAGIC ^ slab_addr ^ self.index
    }

    pub fn slab_bytes(&self) -> usize {
        self.slab_bytes
    }

    /// Objects handed out and not freed.
    pub fn active_objects(&self) -> usize {
        self.held - self.magazine.parked()
    }

    pub fn slab_count(&self) -> usize {
        self.counts.iter().sum::<usize>() + usize::from(!self.current.is_null()) + self.retired
    }

    /// Slabs per state (full, partial, empty), the current slab included,
    /// with parked objects counted as free: a slab's `in_use` counts them
    /// (so it is never released under the magazine), `slabinfo` does not.
    /// O(parked^2), at most `MAGAZINE_MAX^2` steps: statistics only.
    fn state_counts(&self) -> [usize; 3] {
        let mut counts = self.counts;
        if !self.current.is_null() {
            // SAFETY: a non-null current slab is a live slab of this cache.
            counts[self.list_for(unsafe { (*self.current).in_use })] += 1;
        }
        for (position, object) in self.magazine.objects().enumerate() {
            let slab = self.slab_of(object);
            // Each slab once, at its first (most recent) parked object.
            if self
                .magazine
                .objects()
                .take(position)
                .any(|earlier| self.slab_of(earlier) == slab)
            {
                continue;
            }
            let parked = self
                .magazine
                .objects()
                .filter(|&other| self.slab_of(other) == slab)
                .count();
            // SAFETY: a slab holding a parked object is a live slab of
            // this cache.
            let in_use = unsafe { (*slab).in_use };
            counts[self.list_for(in_use)] -= 1;
            counts[self.list_for(in_use - parked)] += 1;
        }
        counts
    }

    /// The slab holding `object` (slabs are aligned to their size).
    #[inline(always)]
    fn slab_of(&self, object: *mut u8) -> *mut SlabHeader {
        object
            .with_addr(object.addr() & !(self.slab_bytes - 1))
            .cast()
    }

    /// Empty slabs held, the current slab included.
    fn empty_slabs(&self) -> usize {
        // SAFETY: a non-null current slab is a live slab of this cache.
        let current_empty = !self.current.is_null() && unsafe { (*self.current).in_use } == 0;
        self.counts[EMPTY] + usize::from(current_empty)
    }

    pub fn info(&self) -> SlabInfo {
        let [full_slabs, partial_slabs, empty_slabs] = self.state_counts();
        SlabInfo {
            name: self.name,
            object_size: self.object_size,
            active_objects: self.active_objects(),
            total_objects: self.slab_count() * self.objects_per_slab,
            objects_per_slab: self.objects_per_slab,
            pages_per_slab: self.pages_per_slab,
            full_slabs,
            partial_slabs,
            empty_slabs,
        }
    }

    /// Allocates one object: the one freed last if the magazine holds
    /// any, else from the current slab; when that is full (or there is
    /// none), `refill` makes the first partial slab current (else an empty
    /// one, else a new slab from `source`, whose address range is reported
    /// through `on_new_slab`).
    #[inline(always)]
    pub fn alloc<P: PageSource>(
        &mut self,
        source: &mut P,
        on_new_slab: impl FnOnce(usize, usize),
    ) -> AllocResult<NonNull<u8>> {
        if let Some(object) = self.magazine.pop() {
            // SAFETY: a parked object is a free object of a live slab of
            // this cache, already counted in its slab's `in_use`.
            unsafe {
                link::clear(object);
                return Ok(NonNull::new_unchecked(object));
            }
        }
        let mut slab = self.current;
        // SAFETY: a non-null current slab is a live slab of this cache.
        if slab.is_null() || unsafe { (*slab).in_use } == self.objects_per_slab {
            slab = self.refill(source, on_new_slab)?;
        }
        // SAFETY: `slab` is the current slab and has a free object: on
        // its free list (linked by `link::write`) or below its end.
        unsafe {
            let header = &mut *slab;
            let object = if !header.free_head.is_null() {
                let object = header.free_head;
                header.free_head = link::read(object);
                object
            } else {
                let object = slab.cast::<u8>().add(self.first_object + header.carved);
                header.carved += self.object_size;
                object
            };
            link::clear(object);
            header.in_use += 1;
            self.held += 1;
            Ok(NonNull::new_unchecked(object))
        }
    }

    /// Whether `slab`, a live slab of this cache, is retired.
    ///
    /// # Safety
    /// `slab` is a live slab of this cache.
    #[inline(always)]
    unsafe fn is_retired(&self, slab: *mut SlabHeader) -> bool {
        // SAFETY: the caller's guarantee.
        unsafe { (*slab).magic != self.live_magic(slab.addr()) }
    }

    /// Frees `object` of `slab` (validated by `check_live`, which said
    /// whether the slab is `retired`): parks it in the magazine, or, when
    /// that is full, gives it back to its slab (and a surplus empty slab
    /// back to `source`). The last live object of the cache empties the
    /// magazine, so a cache with nothing allocated holds exactly its empty
    /// slabs.
    ///
    /// # Safety
    /// `check_live(object)` returned `(slab, retired)` and nothing changed
    /// since.
    #[inline(always)]
    pub unsafe fn free<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        object: *mut u8,
        retired: bool,
    ) {
        // SAFETY: a live object of a slab of this cache.
        unsafe {
            if retired {
                self.free_retired(source, slab, object);
            } else if !self.magazine.is_full() {
                self.magazine.push(object);
            } else {
                self.return_to_slab(source, slab, object);
            }
            if self.active_objects() == 0 {
                self.drain_magazine(source);
            }
        }
    }

    /// Gives every parked object back to its slab.
    #[cold]
    pub fn drain_magazine<P: PageSource>(&mut self, source: &mut P) {
        while let Some(object) = self.magazine.pop() {
            let slab = self.slab_of(object);
            // SAFETY: a parked object is a free object of a live slab of
            // this cache, counted in its `in_use`, on no free list.
            unsafe { self.return_to_slab(source, slab, object) };
        }
    }

    /// Pushes a free `object` on its slab's free list and updates the
    /// slab's state.
    ///
    /// # Safety
    /// `object` is a freed object of `slab`, a slab of this cache in
    /// service, on no list, and still counted in the slab's `in_use`.
    #[inline]
    unsafe fn return_to_slab<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        object: *mut u8,
    ) {
        // SAFETY: the caller's guarantees.
        unsafe {
            link::write(object, (*slab).free_head);
            (*slab).free_head = object;
            let old_in_use = (*slab).in_use;
            (*slab).in_use = old_in_use - 1;
            self.held -= 1;
            // Only the first free of a full slab (full -> partial) and the
            // last object (partial -> empty) change a slab's state; the
            // current slab is on no list.
            if old_in_use == self.objects_per_slab || old_in_use == 1 {
                if slab != self.current {
                    self.on_transition(slab, old_in_use);
                }
                if old_in_use == 1 && self.empty_slabs() > MAX_EMPTY_SLABS {
                    self.release_empty(source);
                }
            }
        }
    }
}
