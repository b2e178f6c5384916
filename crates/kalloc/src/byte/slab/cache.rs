//! One slab cache: objects of one size, in slabs of `2^k` pages aligned to
//! their own size, so an object's slab is its address rounded down (no
//! lookup). This file holds the cache's layout and its allocation paths
//! (`alloc_parked`, `alloc_current`, `alloc_from_new_current`); the rest
//! lives beside it (`free.rs`: the fast free, the checked `free` every
//! other free goes through, and the way an object goes back; `check.rs`:
//! naming a bad free's error; `lists.rs`: moving slabs between lists and
//! the page source; `retire.rs`: slabs on bad memory).
//!
//! ```text
//!  slab (2^k pages, aligned to 2^k pages)
//!  +-------------+--------+--------+-----+--------+------+
//!  | SlabHeader  | obj 0  | obj 1  | ... | obj n-1| tail |
//!  +-------------+--------+--------+-----+--------+------+
//!  ^ object address rounded down to the slab size
//!                ^ first_object: indices below are counted from here
//! ```
//!
//! A free is refused unless four things hold (`shape.rs` tests the first
//! three, and the last as far as one load can):
//!
//! 1. the header at the slab boundary is that of a slab of this cache in
//!    service (its stamp, see [`Shape::stamp`]);
//! 2. the address is an object boundary (a multiple of the object size
//!    from the first object; [`ExactDivisor`](super::divisor));
//! 3. the object was handed out at least once: its index is below
//!    `carved`;
//! 4. the object is not free: its first word does not decode to a link
//!    ([`free_list::may_be_free`]), or, if it does, the object is on no
//!    list (`check.rs` looks).
//!
//! Then the object is parked in the magazine, or, when that is full, goes
//! back on its slab's free list.

use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering::Relaxed;

use super::free_list;
pub(super) use super::header::SlabHeader;
use super::magazine::Magazine;
use super::shape::Shape;
use super::source::PageSource;
use crate::AllocResult;

mod check;
mod free;
mod lists;
mod retire;
mod slabinfo;

/// At most this many empty slabs stay in a cache; more go back to the
/// page source at once.
pub const MAX_EMPTY_SLABS: usize = 2;
/// The largest slab is `2^MAX_SLAB_ORDER` pages.
const MAX_SLAB_ORDER: u32 = 6;
/// Mixed into the stamp of a retired slab (taken out of service because a
/// bad page backs it): its frees miss the fast path and take the slow one,
/// which knows retired slabs.
const RETIRED: usize = 0x7e71_7ed0_7e71_7ed0_u64 as usize;

const FULL: usize = 0;
const PARTIAL: usize = 1;
const EMPTY: usize = 2;

/// What a free leaves to do once the object is parked or listed
/// ([`SlabCache::release`]): usually nothing; the rest is one call out of
/// line ([`SlabCache::drain_magazine`] or [`SlabCache::settle`]). The fast
/// free returns it to the allocator, which makes that call itself, so the
/// inline path computes no argument it only needs there (the page
/// source's address); the checked free makes it in the cache.
#[derive(Clone, Copy)]
pub(super) enum AfterFree {
    /// Nothing: the common case.
    Done,
    /// No object of the cache is live any more: empty the magazine.
    Drain,
    /// The object went back to this slab, whose `in_use` dropped from
    /// this: relist the slab if it changed state, then empty the magazine
    /// if no object is live ([`SlabCache::settle`]).
    Settle(*mut SlabHeader, usize),
}

/// Where `check_live` found a live object.
pub(super) enum Live {
    /// In a slab in service: the free parks it or lists it.
    InService(*mut SlabHeader),
    /// In a retired slab: the free lists it there for good (`retire.rs`).
    Retired(*mut SlabHeader),
}

/// A cache of equal-size objects. The fields every fast allocation and
/// free use come first (the magazine's count and capacity right after
/// them, its slots last), so that they share a cache line or two. Its
/// size is 256 bytes, so that a class's cache is its index shifted left,
/// not multiplied.
#[derive(Clone, Copy)]
#[repr(C, align(256))]
pub(super) struct SlabCache {
    /// What the fast test of a free reads.
    pub shape: Shape,
    /// Objects handed out and not freed, plus those parked in the
    /// magazine: parking an object and taking it back leave it as it is,
    /// so neither fast path writes it. The active count is this minus the
    /// magazine's; the free that takes that to zero (every held object
    /// parked) empties the magazine.
    held: usize,
    /// The slab allocations come from (SLUB's "cpu slab"): on no list and
    /// in no count, so allocating from it and freeing into it never
    /// relists anything. Null until the first allocation, or after
    /// `release_empty` gave it back.
    current: *mut SlabHeader,
    pub objects_per_slab: usize,
    pub object_size: usize,
    /// Recently freed objects, taken back first by `alloc` (its count
    /// first, its slots last).
    magazine: Magazine,
    pub name: &'static str,
    pub pages_per_slab: usize,
    /// Slab lists by state, current slab excluded: partial and empty (the
    /// full slot stays null: full slabs are only counted).
    lists: [*mut SlabHeader; 3],
    counts: [usize; 3],
    /// Retired slabs still holding live objects.
    retired: usize,
}

const _: () = assert!(size_of::<Option<SlabCache>>() == 256);

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
            shape: Shape::new(index, slab_bytes, first_object, object_size),
            held: 0,
            current: ptr::null_mut(),
            objects_per_slab: objects,
            object_size,
            magazine: Magazine::new(objects),
            name,
            pages_per_slab: 1 << order,
            lists: [ptr::null_mut(); 3],
            counts: [0; 3],
            retired: 0,
        })
    }

    /// Objects per slab and the offset of the first (after the header,
    /// aligned to `align`), or `None` if none fit.
    fn fit(slab_bytes: usize, object_size: usize, align: usize) -> Option<(usize, usize)> {
        let first = size_of::<SlabHeader>().next_multiple_of(align);
        let objects = slab_bytes.checked_sub(first)? / object_size;
        (objects > 0).then_some((objects, first))
    }

    #[inline(always)]
    fn stamp(&self, slab: *mut SlabHeader) -> usize {
        self.shape.stamp(slab)
    }

    #[inline(always)]
    fn slab_of(&self, object: *mut u8) -> *mut SlabHeader {
        self.shape.slab_of(object)
    }

    #[inline(always)]
    pub fn slab_bytes(&self) -> usize {
        self.shape.slab_bytes()
    }

    /// Objects handed out and not freed.
    #[inline(always)]
    pub fn active_objects(&self) -> usize {
        self.held - self.magazine.parked()
    }

    pub fn slab_count(&self) -> usize {
        self.counts.iter().sum::<usize>() + usize::from(!self.current.is_null()) + self.retired
    }

    /// Takes back the object freed last, if the magazine holds one: a pop
    /// and a store, the whole of a common allocation (`held` counts the
    /// object either way).
    #[inline(always)]
    pub fn alloc_parked(&mut self) -> Option<NonNull<u8>> {
        let object = self.magazine.pop()?;
        // SAFETY: a parked object is a free object of a slab in service of
        // this cache, already counted in its slab's `in_use`; its link word
        // is the allocator's until it is handed out.
        unsafe {
            free_list::clear_link(object);
            Some(NonNull::new_unchecked(object))
        }
    }

    /// Allocates one object from the current slab, if there is one with a
    /// free object: its free list, else its bump.
    #[inline(always)]
    pub fn alloc_current(&mut self) -> Option<NonNull<u8>> {
        let slab = self.current;
        // SAFETY: a non-null current slab is a slab in service of this cache.
        if slab.is_null() || unsafe { (*slab).in_use } == self.objects_per_slab {
            return None;
        }
        // SAFETY: just checked.
        Some(unsafe { self.take_from(slab) })
    }

    /// [`alloc_current`](Self::alloc_current) when the current slab is
    /// full (or there is none): `refill` makes the first partial slab
    /// current (else an empty one, else a new slab from `source`, whose
    /// address range is reported through `on_new_slab`), then allocates
    /// from it.
    #[inline(always)]
    pub fn alloc_from_new_current<P: PageSource>(
        &mut self,
        source: &mut P,
        on_new_slab: impl FnOnce(usize, usize),
    ) -> AllocResult<NonNull<u8>> {
        let slab = self.refill(source, on_new_slab)?;
        // SAFETY: `refill` returns a current slab with a free object.
        Ok(unsafe { self.take_from(slab) })
    }

    /// Hands out a free object of `slab`: from its free list, else from
    /// its bump.
    ///
    /// # Safety
    /// `slab` is the current slab and has a free object: on its free list,
    /// or at its bump, below its end.
    #[inline(always)]
    unsafe fn take_from(&mut self, slab: *mut SlabHeader) -> NonNull<u8> {
        // SAFETY: the caller's guarantee. Field by field, never a `&mut`
        // to the whole header: the probe reads `stamp` and `carved`
        // without the lock.
        unsafe {
            let object = match (*slab).free.pop() {
                Some(object) => object,
                None => {
                    let carved = (*slab).carved.as_ptr().read();
                    let offset = self.shape.first_object + carved * self.object_size;
                    (*slab).carved.store(carved + 1, Relaxed);
                    slab.cast::<u8>().add(offset)
                }
            };
            free_list::clear_link(object);
            (*slab).in_use += 1;
            self.held += 1;
            NonNull::new_unchecked(object)
        }
    }
}
