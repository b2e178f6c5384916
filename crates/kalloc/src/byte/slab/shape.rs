//! A cache's geometry: where its slabs and objects lie and how its stamps
//! are made, fixed when the cache is created. The fast test of a free
//! needs nothing else, so the cache keeps it at its start (one cache line
//! for a whole fast free, with the counters beside it), and a copy of it
//! tests frees without the allocator's lock (`probe.rs`).
//!
//! The fast test, [`Shape::live_in_service`], is three loads and three
//! compares:
//!
//! ```text
//!   slab  = object & slab_mask                       (slabs are aligned to their size)
//!   1. header.stamp == stamp_key ^ slab              a slab of this cache, in service
//!   2. index(object - slab - first_object) < header.carved
//!                                                    an object boundary handed out
//!   3. object's word 0 does not decode into the hull not free (free_list.rs)
//! ```
//!
//! Check 2 is one compare for two questions: [`ExactDivisor::quotient`]
//! maps the offset of an object boundary to the object's index and any
//! other offset (inside an object, or below the first, which wraps) to a
//! value above every index, so "below the objects handed out" implies
//! "on a boundary".

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::Hull;
use super::divisor::ExactDivisor;
use super::free_list;
use super::header::SlabHeader;

/// Mixed into every slab stamp: a constant no ordinary data (zeros, small
/// integers, pointers) is likely to reproduce.
const SLAB_MAGIC: usize = 0x51ab_c0de_51ab_c0de_u64 as usize;

/// A cache's geometry (see the module doc).
#[derive(Clone, Copy)]
pub(super) struct Shape {
    /// `!(slab bytes - 1)`: an object's slab is its address masked.
    slab_mask: usize,
    /// Offset of object 0 from the slab start (the header, rounded up to
    /// the objects' alignment).
    pub first_object: usize,
    /// Object boundaries and indices: offsets the object size divides.
    size_divisor: ExactDivisor,
    /// `first_object`'s share of an index, multiplied ahead
    /// ([`ExactDivisor::premultiply`]).
    first_premultiplied: usize,
    /// `SLAB_MAGIC ^ cache index`: a stamp is this `^` the slab address.
    stamp_key: usize,
}

impl Shape {
    /// The geometry of cache `index`: slabs of `slab_bytes` (a power of
    /// two), objects of `object_size` from `first_object` on.
    pub const fn new(
        index: usize,
        slab_bytes: usize,
        first_object: usize,
        object_size: usize,
    ) -> Self {
        let size_divisor = ExactDivisor::new(object_size);
        Self {
            slab_mask: !(slab_bytes - 1),
            first_object,
            size_divisor,
            first_premultiplied: size_divisor.premultiply(first_object),
            stamp_key: SLAB_MAGIC ^ index,
        }
    }

    /// The stamp of this cache's slab at `slab` while it is in service:
    /// `SLAB_MAGIC ^ slab address ^ cache index`. One compare against it
    /// checks the three things a free must know of the memory at a slab
    /// boundary: it is a slab header (user data matches by chance 1 in
    /// 2^64), it was written at this address (a copy of a header in other
    /// pages does not match) and it is a slab of the cache the layout names
    /// (an object freed with another class's layout does not match).
    /// `cache/check.rs` tests that stamps tell these apart.
    #[inline(always)]
    pub fn stamp(&self, slab: *mut SlabHeader) -> usize {
        self.stamp_key ^ slab.addr()
    }

    /// The size of a slab in bytes, a power of two.
    #[inline(always)]
    pub fn slab_bytes(&self) -> usize {
        (!self.slab_mask).wrapping_add(1)
    }

    /// The slab holding `object` (slabs are aligned to their size).
    #[inline(always)]
    pub fn slab_of(&self, object: *mut u8) -> *mut SlabHeader {
        object.with_addr(object.addr() & self.slab_mask).cast()
    }

    /// The index of `object` in `slab` if it lies on an object boundary at
    /// or after the first object, else a value above any slab's object
    /// count ([`ExactDivisor::quotient`]; an address inside the header
    /// wraps to a huge offset).
    #[inline(always)]
    pub fn index_of(&self, object: *mut u8, slab: *mut SlabHeader) -> usize {
        let in_slab = object.addr().wrapping_sub(slab.addr());
        self.size_divisor
            .quotient_from(in_slab, self.first_premultiplied)
    }

    /// The fast test of a free: `true` if `object`, in `slab`, is
    /// certainly a live object of this cache in a slab in service (the
    /// three checks of the module doc), `false` if anything needs a
    /// closer look.
    ///
    /// `SHARED` reads the header's two words with atomic loads, for a
    /// caller without the allocator's lock (a per-CPU cache's probe,
    /// racing with slabs set up or given back under the lock). The
    /// allocator itself reads them plainly, which the compiler can fold
    /// into the compares: it writes a header only under `&mut self`, so
    /// under its own borrow nothing writes one.
    ///
    /// # Safety
    /// `slab` is `slab_of(object)` and its header is readable: it lies in
    /// pages the allocator took from its source, which stay mapped.
    /// Without `SHARED`, the caller borrows the allocator. If `object` is
    /// an object the allocator handed out, its slab is in service until it
    /// is freed.
    #[inline(always)]
    pub unsafe fn live_in_service<const SHARED: bool>(
        &self,
        object: *mut u8,
        slab: *mut SlabHeader,
        hull: Hull,
    ) -> bool {
        /// A header word, as `SHARED` says.
        ///
        /// # Safety
        /// As for `live_in_service`.
        #[inline(always)]
        unsafe fn read<const SHARED: bool>(word: *const AtomicUsize) -> usize {
            // SAFETY: forwarded from the caller: a shared reader loads
            // atomically; otherwise no write races with the read.
            unsafe {
                if SHARED {
                    (*word).load(Relaxed)
                } else {
                    (*word).as_ptr().read()
                }
            }
        }
        // SAFETY: the header is readable (the caller's guarantee). The
        // object's first word is read only once the stamp names a slab of
        // this cache in service and the index an object it handed out, so
        // it is initialised; it is the caller's object, or the allocator's
        // if this is a double free.
        unsafe {
            read::<SHARED>(&raw const (*slab).stamp) == self.stamp(slab)
                && self.index_of(object, slab) < read::<SHARED>(&raw const (*slab).carved)
                && !free_list::may_be_free(object, hull)
        }
    }

    /// [`live_in_service`](Self::live_in_service) for an object not yet
    /// known to lie in the allocator's pages: `false` unless its slab
    /// boundary lies in `hull`.
    ///
    /// # Safety
    /// `slab` is `slab_of(object)`. `hull` is (a snapshot of) the range of
    /// pages the allocator took from its source, and all of it stays
    /// mapped; the rest as for `live_in_service`.
    #[inline(always)]
    pub unsafe fn certainly_live<const SHARED: bool>(
        &self,
        object: *mut u8,
        slab: *mut SlabHeader,
        hull: Hull,
    ) -> bool {
        debug_assert_eq!(slab, self.slab_of(object));
        // SAFETY: a slab boundary in the hull: its header is readable.
        hull.contains(slab.addr()) && unsafe { self.live_in_service::<SHARED>(object, slab, hull) }
    }
}
