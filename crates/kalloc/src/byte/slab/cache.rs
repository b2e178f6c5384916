//! One slab cache: objects of one size, in slabs of `2^k` pages aligned to
//! their own size, so an object's slab is its address rounded down (no
//! lookup). Each slab starts with a [`SlabHeader`] and an allocation
//! bitmap with one bit per granule of the slab (set where a live object
//! starts: exact double-free and interior-pointer detection with a shift,
//! no division), followed by the objects.

use core::ptr::{self, NonNull};

use super::info::SlabInfo;
use super::magazine::Magazine;
use super::source::PageSource;
use crate::{AllocError, AllocResult};

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
const WORD_BITS: usize = usize::BITS as usize;
/// The allocation bitmap has one bit per granule: the largest power of two
/// dividing the object size, at most this (more would only pad the first
/// object further).
const MAX_GRANULE: usize = 64;

/// The header at the start of every slab; the allocation bitmap follows.
#[repr(C)]
pub(super) struct SlabHeader {
    /// `SLAB_MAGIC ^ slab address ^ cache index` while the slab is in
    /// service (`^ RETIRED` once retired), 0 once given back.
    magic: usize,
    /// Freed objects, linked through their first word.
    free_head: *mut u8,
    /// Objects `bump..objects_per_slab` were never handed out.
    bump: usize,
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
    /// `ceil(2^64 / object_size)`: object indices by multiply and shift
    /// (only the error path needs one).
    reciprocal: u64,
    first_object: usize,
    /// log2 of the bitmap's granule; object starts are granule-aligned.
    granule_shift: u32,
    bitmap_words: usize,
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
    /// Objects handed out and not freed (parked objects excluded).
    active_objects: usize,
    index: usize,
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
        let granule = (1 << object_size.trailing_zeros()).min(MAX_GRANULE);
        let mut best = None;
        for order in 0..=MAX_SLAB_ORDER {
            let slab_bytes = page_size.checked_shl(order)?;
            let Some((objects, first)) = Self::fit(slab_bytes, object_size, align, granule) else {
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
            reciprocal: (u64::MAX / object_size as u64).wrapping_add(1),
            first_object,
            granule_shift: granule.trailing_zeros(),
            bitmap_words: Self::bitmap_words(slab_bytes, granule),
            current: ptr::null_mut(),
            lists: [ptr::null_mut(); 3],
            counts: [0; 3],
            magazine: Magazine::new(objects),
            retired: 0,
            active_objects: 0,
            index,
        })
    }

    fn bitmap_words(slab_bytes: usize, granule: usize) -> usize {
        (slab_bytes / granule).div_ceil(WORD_BITS)
    }

    /// Objects per slab and the offset of the first (after the header and
    /// the bitmap, aligned to `align` and to the granule, so every object
    /// starts on a granule), or `None` if none fit.
    fn fit(
        slab_bytes: usize,
        object_size: usize,
        align: usize,
        granule: usize,
    ) -> Option<(usize, usize)> {
        let bitmap = Self::bitmap_words(slab_bytes, granule) * size_of::<usize>();
        let first = (size_of::<SlabHeader>() + bitmap).next_multiple_of(align.max(granule));
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

    pub fn active_objects(&self) -> usize {
        self.active_objects
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
            active_objects: self.active_objects,
            total_objects: self.slab_count() * self.objects_per_slab,
            objects_per_slab: self.objects_per_slab,
            pages_per_slab: self.pages_per_slab,
            full_slabs,
            partial_slabs,
            empty_slabs,
        }
    }

    /// `offset / object_size`, exact for `offset * object_size < 2^64`
    /// (slabs are far smaller): the error of the rounded-up reciprocal stays
    /// below `1 / object_size`.
    #[inline]
    fn object_index(&self, offset: usize) -> usize {
        ((offset as u128 * u128::from(self.reciprocal)) >> 64) as usize
    }

    #[inline(always)]
    fn bitmap(slab: *mut SlabHeader) -> *mut usize {
        // SAFETY: the bitmap directly follows the header inside the slab.
        unsafe { slab.add(1).cast() }
    }

    /// The bitmap bit of the object at `offset` in its slab.
    #[inline(always)]
    fn bit_of(&self, offset: usize) -> usize {
        offset >> self.granule_shift
    }

    /// Sets bit `bit` of `slab`'s bitmap: a live object starts there.
    ///
    /// # Safety
    /// `slab` is a live slab of this cache and `bit` the bit of one of its
    /// objects.
    #[inline(always)]
    unsafe fn mark(slab: *mut SlabHeader, bit: usize) {
        // SAFETY: the caller's guarantees; the bit's word lies in the bitmap.
        unsafe { *Self::bitmap(slab).add(bit / WORD_BITS) |= 1 << (bit % WORD_BITS) };
    }

    /// Whether bit `bit` of `slab`'s bitmap is set.
    ///
    /// # Safety
    /// `slab` is a live slab of this cache and `bit` lies in its bitmap.
    #[inline(always)]
    unsafe fn is_marked(slab: *mut SlabHeader, bit: usize) -> bool {
        // SAFETY: the caller's guarantees.
        unsafe { *Self::bitmap(slab).add(bit / WORD_BITS) & (1 << (bit % WORD_BITS)) != 0 }
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
            let slab = self.slab_of(object);
            // SAFETY: a parked object is a free object of a live slab of
            // this cache; its bitmap word lies in that slab. The slab's
            // `in_use` already counts it.
            unsafe {
                Self::mark(slab, self.bit_of(object.addr() - slab.addr()));
                self.active_objects += 1;
                return Ok(NonNull::new_unchecked(object));
            }
        }
        let mut slab = self.current;
        // SAFETY: a non-null current slab is a live slab of this cache.
        if slab.is_null() || unsafe { (*slab).in_use } == self.objects_per_slab {
            slab = self.refill(source, on_new_slab)?;
        }
        // SAFETY: `slab` is the current slab and has a free object;
        // objects and bitmap words lie inside it.
        unsafe {
            let header = &mut *slab;
            let object = if !header.free_head.is_null() {
                let object = header.free_head;
                header.free_head = *object.cast::<*mut u8>();
                object
            } else {
                let object = slab
                    .cast::<u8>()
                    .add(self.first_object + header.bump * self.object_size);
                header.bump += 1;
                object
            };
            Self::mark(slab, self.bit_of(object.addr() - slab.addr()));
            header.in_use += 1;
            self.active_objects += 1;
            Ok(NonNull::new_unchecked(object))
        }
    }

    /// Checks that `ptr` is a live object of this cache; returns its slab
    /// and its bitmap bit. `ptr` lies in `lo..hi`, the address range of
    /// every page ever taken from the source, so the header read stays in
    /// memory the slab allocator had. The common case costs a mask, one
    /// compare of the header's magic and one bit test; anything else (an
    /// error, or a retired slab) goes to [`classify`](Self::classify).
    #[inline(always)]
    pub fn check_live(&self, ptr: NonNull<u8>, lo: usize) -> AllocResult<(*mut SlabHeader, usize)> {
        let addr = ptr.addr().get();
        let slab_addr = addr & !(self.slab_bytes - 1);
        let offset = addr - slab_addr;
        let granule_mask = (1 << self.granule_shift) - 1;
        if slab_addr < lo || offset < self.first_object || offset & granule_mask != 0 {
            return Err(AllocError::NotAllocated);
        }
        let slab = ptr.as_ptr().with_addr(slab_addr).cast::<SlabHeader>();
        let bit = self.bit_of(offset);
        // SAFETY: `lo <= slab_addr` and `slab_addr + first_object <= addr <
        // hi`: the header and bitmap lie in pages obtained from the source,
        // which stay mapped; the bitmap is read only after the magic
        // matched.
        unsafe {
            if (*slab).magic == self.live_magic(slab_addr) && Self::is_marked(slab, bit) {
                return Ok((slab, bit));
            }
        }
        self.classify(slab, offset)
    }

    /// The slow half of [`check_live`](Self::check_live): a live object of
    /// a retired slab is fine; otherwise the error: `DoubleFree` for an
    /// object boundary below the slab's bump (handed out before, free now),
    /// `NotAllocated` for anything else (no slab of this cache, an address
    /// between objects, an object never handed out).
    #[cold]
    fn classify(
        &self,
        slab: *mut SlabHeader,
        offset: usize,
    ) -> AllocResult<(*mut SlabHeader, usize)> {
        let live = self.live_magic(slab.addr());
        // SAFETY: as in `check_live`, whose checks passed: the header lies
        // in pages obtained from the source.
        let magic = unsafe { (*slab).magic };
        if magic != live && magic != live ^ RETIRED {
            return Err(AllocError::NotAllocated);
        }
        let index = self.object_index(offset - self.first_object);
        // SAFETY: a slab of this cache (its magic matched): header and
        // bitmap are valid, and an object's bit lies in the bitmap.
        unsafe {
            if index * self.object_size != offset - self.first_object || index >= (*slab).bump {
                return Err(AllocError::NotAllocated);
            }
            let bit = self.bit_of(offset);
            if !Self::is_marked(slab, bit) {
                return Err(AllocError::DoubleFree);
            }
            Ok((slab, bit))
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

    /// Frees `object`, bit `bit` of `slab` (validated by `check_live`):
    /// parks it in the magazine, or, when that is full, gives it back to
    /// its slab (and a surplus empty slab back to `source`). The last live
    /// object of the cache empties the magazine, so a cache with nothing
    /// allocated holds exactly its empty slabs.
    ///
    /// # Safety
    /// `check_live(object)` returned `(slab, bit)` and nothing changed since.
    #[inline(always)]
    pub unsafe fn free<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        object: *mut u8,
        bit: usize,
    ) {
        // SAFETY: a live object of a slab of this cache.
        unsafe {
            *Self::bitmap(slab).add(bit / WORD_BITS) &= !(1 << (bit % WORD_BITS));
            self.active_objects -= 1;
            if self.is_retired(slab) {
                self.free_retired(source, slab);
            } else if !self.magazine.is_full() {
                self.magazine.push(object);
            } else {
                self.return_to_slab(source, slab, object);
            }
            if self.active_objects == 0 {
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
    /// `object` is an object of `slab`, a slab of this cache, free in the
    /// bitmap, on no list, and still counted in the slab's `in_use`.
    #[inline]
    unsafe fn return_to_slab<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        object: *mut u8,
    ) {
        // SAFETY: the caller's guarantees.
        unsafe {
            *object.cast::<*mut u8>() = (*slab).free_head;
            (*slab).free_head = object;
            let old_in_use = (*slab).in_use;
            (*slab).in_use = old_in_use - 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_division_is_exact_within_a_slab() {
        let largest_slab = 4096usize << MAX_SLAB_ORDER;
        let step = if cfg!(miri) { 8 * 61 } else { 8 };
        for size in (8..=largest_slab / 2).step_by(step) {
            let cache = SlabCache::new("t", 0, size, 8, 4096).unwrap();
            let last = largest_slab / size;
            for k in [0, 1, 2, 3, last / 2, last - 1, last] {
                assert_eq!(cache.object_index(k * size), k, "size {size}");
                assert_eq!(cache.object_index(k * size + size - 1), k, "size {size}");
            }
        }
    }
}
