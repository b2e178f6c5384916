//! One slab cache: objects of one size, in slabs of `2^k` pages aligned to
//! their own size, so an object's slab is its address rounded down (no
//! lookup). This file holds the fast paths, `alloc`, `check_live` and
//! `free`, each complete in one function; the slow paths live beside it
//! (`check.rs`: naming a bad free's error; `lists.rs`: moving slabs
//! between lists and the page source; `retire.rs`: slabs on bad memory).
//!
//! ```text
//!  slab (2^k pages, aligned to 2^k pages)
//!  +-------------+--------+--------+-----+--------+------+
//!  | SlabHeader  | obj 0  | obj 1  | ... | obj n-1| tail |
//!  +-------------+--------+--------+-----+--------+------+
//!  ^ object address rounded down to the slab size
//!                ^ first_object: offsets below are measured from here
//! ```
//!
//! A free is refused unless four things hold, checked in this order by
//! `check_live` (only the last reads memory beyond the header: the
//! object's first word):
//!
//! 1. the header at the slab boundary is that of a slab of this cache in
//!    service (its stamp, see [`SlabCache::stamp`]);
//! 2. the offset from the first object is below `carved`: the object was
//!    handed out at least once;
//! 3. the offset is a multiple of the object size (an object boundary;
//!    [`ExactDivisor`]);
//! 4. the object is not free: its first word does not decode to a link
//!    ([`free_list::may_be_free`]), or, if it does, the object is on no
//!    list (`check.rs` looks).
//!
//! Then the object is parked in the magazine, or, when that is full, goes
//! back on its slab's free list.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::Hull;
use super::divisor::ExactDivisor;
use super::free_list::{self, FreeList};
use super::magazine::Magazine;
use super::source::PageSource;
use crate::{AllocError, AllocResult};

mod check;
mod lists;
mod retire;
mod slabinfo;

/// At most this many empty slabs stay in a cache; more go back to the
/// page source at once.
pub const MAX_EMPTY_SLABS: usize = 2;
/// The largest slab is `2^MAX_SLAB_ORDER` pages.
const MAX_SLAB_ORDER: u32 = 6;
/// Mixed into every slab stamp: a constant no ordinary data (zeros, small
/// integers, pointers) is likely to reproduce.
const SLAB_MAGIC: usize = 0x51ab_c0de_51ab_c0de_u64 as usize;
/// Mixed into the stamp of a retired slab (taken out of service because a
/// bad page backs it): its frees miss the fast path and take the slow one,
/// which knows retired slabs.
const RETIRED: usize = 0x7e71_7ed0_7e71_7ed0_u64 as usize;

/// The header at the start of every slab.
#[repr(C)]
pub(super) struct SlabHeader {
    /// [`SlabCache::stamp`] while the slab is in service, that `^ RETIRED`
    /// once retired, 0 once given back to the page source. Atomic (relaxed,
    /// plain loads and stores) because a per-CPU cache in front of the
    /// allocator reads it without the allocator's lock (`probe.rs`).
    stamp: AtomicUsize,
    /// Objects freed back to this slab (not those parked in the magazine).
    free: FreeList,
    /// Bytes of objects handed out from the bump, counted from the first
    /// object: objects at or above it have never been handed out. Atomic
    /// for the same reason as `stamp`; it only grows while in service.
    carved: AtomicUsize,
    /// Objects not on this slab's free list: live, parked in the
    /// magazine, or (retired slabs) freed but kept off the free list.
    in_use: usize,
    prev: *mut SlabHeader,
    next: *mut SlabHeader,
}

const FULL: usize = 0;
const PARTIAL: usize = 1;
const EMPTY: usize = 2;

/// Where `check_live` found a live object.
pub(super) enum Live {
    /// In a slab in service: the free parks it or lists it.
    InService(*mut SlabHeader),
    /// In a retired slab: the free lists it there for good (`retire.rs`).
    Retired(*mut SlabHeader),
}

/// A cache of equal-size objects.
#[derive(Clone, Copy)]
pub(super) struct SlabCache {
    pub name: &'static str,
    pub object_size: usize,
    pub pages_per_slab: usize,
    pub objects_per_slab: usize,
    slab_bytes: usize,
    /// Tells object boundaries: offsets the object size divides.
    size_divisor: ExactDivisor,
    /// Offset of object 0 from the slab start (the header, rounded up to
    /// the objects' alignment).
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

/// A cache's geometry: where its slabs and objects lie and how its
/// stamps are made. The fast test of a free needs nothing else, so a copy
/// of it can test frees without the allocator's lock (`probe.rs`).
#[derive(Clone, Copy)]
pub(super) struct Shape {
    slab_bytes: usize,
    first_object: usize,
    size_divisor: ExactDivisor,
    /// `SLAB_MAGIC ^ cache index`: a stamp is this `^` the slab address.
    stamp_key: usize,
}

impl Shape {
    /// The stamp of this cache's slab at `slab` while it is in service:
    /// `SLAB_MAGIC ^ slab address ^ cache index`. One compare against it
    /// checks the three things a free must know of the memory at a slab
    /// boundary: it is a slab header (user data matches by chance 1 in
    /// 2^64), it was written at this address (a copy of a header in other
    /// pages does not match) and it is a slab of the cache the layout names
    /// (an object freed with another class's layout does not match).
    /// `check.rs` tests that stamps tell these apart.
    #[inline(always)]
    pub fn stamp(&self, slab: *mut SlabHeader) -> usize {
        self.stamp_key ^ slab.addr()
    }

    /// The slab holding `object` (slabs are aligned to their size).
    #[inline(always)]
    pub fn slab_of(&self, object: *mut u8) -> *mut SlabHeader {
        object
            .with_addr(object.addr() & !(self.slab_bytes - 1))
            .cast()
    }

    /// The fast test of a free: `true` if `object` is certainly a live
    /// object of this cache in a slab in service (the four checks of the
    /// module doc pass), `false` if anything needs a closer look.
    ///
    /// # Safety
    /// If `object`'s slab boundary lies in `hull`, the hull is (a snapshot
    /// of) the pages the allocator took from its source, which stay
    /// mapped. If `object` is an object the allocator handed out, its slab
    /// is in service until it is freed.
    #[inline(always)]
    pub unsafe fn certainly_live(&self, object: *mut u8, hull: Hull) -> bool {
        let slab = self.slab_of(object);
        if !hull.contains(slab.addr()) {
            return false;
        }
        // Wraps to a huge value for an address inside the header.
        let offset = object.addr().wrapping_sub(slab.addr() + self.first_object);
        // SAFETY: the header lies in the hull, in pages taken from the
        // source (the caller's guarantee); its two words are atomics, so a
        // racing writer (a slab set up or given back under the lock) is no
        // data race. The object's first word is read only once the stamp
        // names a slab of this cache in service and the offset an object
        // it handed out, so it is initialised; it is the caller's object,
        // or the allocator's if this is a double free.
        unsafe {
            (*slab).stamp.load(Relaxed) == self.stamp(slab)
                && offset < (*slab).carved.load(Relaxed)
                && self.size_divisor.divides(offset)
                && !free_list::may_be_free(object, hull)
        }
    }
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
        Some(Self {
            name,
            object_size,
            pages_per_slab: 1 << order,
            objects_per_slab: objects,
            slab_bytes,
            size_divisor: ExactDivisor::new(object_size),
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

    /// What a free needs to know of this cache without its lists: fixed
    /// when the cache is created, so a copy stays right for its life.
    #[inline(always)]
    pub(super) fn shape(&self) -> Shape {
        Shape {
            slab_bytes: self.slab_bytes,
            first_object: self.first_object,
            size_divisor: self.size_divisor,
            stamp_key: SLAB_MAGIC ^ self.index,
        }
    }

    #[inline(always)]
    fn stamp(&self, slab: *mut SlabHeader) -> usize {
        self.shape().stamp(slab)
    }

    #[inline(always)]
    fn slab_of(&self, object: *mut u8) -> *mut SlabHeader {
        self.shape().slab_of(object)
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

    /// Allocates one object: the one freed last if the magazine holds
    /// any, else from the current slab (its free list, else its bump);
    /// when that is full (or there is none), `refill` makes the first
    /// partial slab current (else an empty one, else a new slab from
    /// `source`, whose address range is reported through `on_new_slab`).
    #[inline(always)]
    pub fn alloc<P: PageSource>(
        &mut self,
        source: &mut P,
        on_new_slab: impl FnOnce(usize, usize),
    ) -> AllocResult<NonNull<u8>> {
        if let Some(object) = self.magazine.pop() {
            // SAFETY: a parked object is a free object of a slab in service
            // of this cache, already counted in its slab's `in_use`.
            unsafe {
                free_list::clear_link(object);
                return Ok(NonNull::new_unchecked(object));
            }
        }
        let mut slab = self.current;
        // SAFETY: a non-null current slab is a slab in service of this cache.
        if slab.is_null() || unsafe { (*slab).in_use } == self.objects_per_slab {
            slab = self.refill(source, on_new_slab)?;
        }
        // SAFETY: `slab` is the current slab and has a free object: on its
        // free list, or at its bump, below its end.
        unsafe {
            // Field by field, never a `&mut` to the whole header: the
            // probe reads `stamp` and `carved` without the lock.
            let object = match (*slab).free.pop() {
                Some(object) => object,
                None => {
                    let carved = (*slab).carved.load(Relaxed);
                    let object = slab.cast::<u8>().add(self.first_object + carved);
                    (*slab).carved.store(carved + self.object_size, Relaxed);
                    object
                }
            };
            free_list::clear_link(object);
            (*slab).in_use += 1;
            self.held += 1;
            Ok(NonNull::new_unchecked(object))
        }
    }

    /// Checks that `object` is a live object of this cache (the four
    /// checks of the module doc); returns its slab. The common case costs
    /// a mask, the header's stamp and bump, a multiply and the object's
    /// first word ([`Shape::certainly_live`]); anything else (an error, an
    /// object that may be free, a retired slab) goes to
    /// [`classify`](Self::classify).
    ///
    /// # Safety
    /// `object` lies in `hull`, the pages the slab allocator took from its
    /// source (which stay mapped), and, as `dealloc` requires, if it lies
    /// in memory the allocator manages it is a pointer the allocator
    /// returned.
    #[inline(always)]
    pub unsafe fn check_live(&self, object: NonNull<u8>, hull: Hull) -> AllocResult<Live> {
        let object = object.as_ptr();
        let shape = self.shape();
        // SAFETY: forwarded from the caller.
        if unsafe { shape.certainly_live(object, hull) } {
            return Ok(Live::InService(shape.slab_of(object)));
        }
        let slab = shape.slab_of(object);
        if slab.addr() < hull.lo {
            return Err(AllocError::NotAllocated);
        }
        let offset = object.addr().wrapping_sub(slab.addr() + self.first_object);
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
    #[inline(always)]
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
        // this cache; the caller gives it up.
        unsafe {
            match live {
                Live::Retired(slab) => self.free_retired(source, slab, object),
                Live::InService(_) if !self.magazine.is_full() => self.magazine.push(object),
                Live::InService(slab) => self.return_to_slab(source, slab, object),
            }
        }
        if self.active_objects() == 0 {
            self.drain_magazine(source);
        }
        Ok(())
    }

    /// Gives every parked object back to its slab.
    #[cold]
    pub fn drain_magazine<P: PageSource>(&mut self, source: &mut P) {
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
    #[inline]
    unsafe fn return_to_slab<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        object: *mut u8,
    ) {
        // SAFETY: the caller's guarantees.
        unsafe {
            (*slab).free.push(object);
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
