//! One slab cache: objects of one size, in slabs of `2^k` pages aligned to
//! their own size, so an object's slab is its address rounded down (no
//! lookup). Each slab starts with a [`SlabHeader`] and an allocation
//! bitmap (exact double-free detection), followed by the objects.

use core::ptr::{self, NonNull};

use super::info::SlabInfo;
use super::source::PageSource;
use crate::{AllocError, AllocResult};

/// At most this many empty slabs stay in a cache; more go back to the
/// page source at once.
pub const MAX_EMPTY_SLABS: usize = 2;
/// The largest slab is `2^MAX_SLAB_ORDER` pages.
const MAX_SLAB_ORDER: u32 = 6;
/// Tells a slab header from other memory; XORed with the slab's address.
const SLAB_MAGIC: usize = 0x51ab_c0de_51ab_c0de_u64 as usize;
const WORD_BITS: usize = usize::BITS as usize;

/// The header at the start of every slab; the allocation bitmap follows.
#[repr(C)]
pub(super) struct SlabHeader {
    /// `SLAB_MAGIC ^ slab address` while the slab belongs to a cache.
    magic: usize,
    /// Index of the owning cache.
    cache: usize,
    /// Freed objects, linked through their first word.
    free_head: *mut u8,
    /// Objects `bump..objects_per_slab` were never handed out.
    bump: usize,
    in_use: usize,
    prev: *mut SlabHeader,
    next: *mut SlabHeader,
    /// Taken out of service (a bad page backs it): on no list, never
    /// allocated from again; its pages go back when its last object does.
    retired: bool,
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
    /// instead of a division on every alloc and free.
    reciprocal: u64,
    first_object: usize,
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
    /// Retired slabs still holding live objects.
    retired: usize,
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
            reciprocal: (u64::MAX / object_size as u64).wrapping_add(1),
            first_object,
            bitmap_words: objects.div_ceil(WORD_BITS),
            current: ptr::null_mut(),
            lists: [ptr::null_mut(); 3],
            counts: [0; 3],
            retired: 0,
            active_objects: 0,
            index,
        })
    }

    /// Objects per slab and the offset of the first, or `None` if none fit.
    fn fit(slab_bytes: usize, object_size: usize, align: usize) -> Option<(usize, usize)> {
        let fixed = size_of::<SlabHeader>();
        let mut objects = slab_bytes.checked_sub(fixed)? / object_size;
        while objects > 0 {
            let bitmap = objects.div_ceil(WORD_BITS) * size_of::<usize>();
            let first = (fixed + bitmap).next_multiple_of(align);
            if first + objects * object_size <= slab_bytes {
                return Some((objects, first));
            }
            objects -= 1;
        }
        None
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

    /// Retired slabs still holding live objects.
    pub fn retired_slabs(&self) -> usize {
        self.retired
    }

    /// Slabs per state (full, partial, empty), the current slab included.
    fn state_counts(&self) -> [usize; 3] {
        let mut counts = self.counts;
        if !self.current.is_null() {
            // SAFETY: a non-null current slab is a live slab of this cache.
            counts[self.list_for(unsafe { (*self.current).in_use })] += 1;
        }
        counts
    }

    /// Empty slabs held, the current slab included.
    fn empty_slabs(&self) -> usize {
        // SAFETY: a non-null current slab is a live slab of this cache.
        let current_empty = !self.current.is_null() && unsafe { (*self.current).in_use } == 0;
        self.counts[EMPTY] + usize::from(current_empty)
    }

    pub fn info(&self) -> SlabInfo {
        SlabInfo {
            name: self.name,
            object_size: self.object_size,
            active_objects: self.active_objects,
            total_objects: self.slab_count() * self.objects_per_slab,
            objects_per_slab: self.objects_per_slab,
            pages_per_slab: self.pages_per_slab,
            full_slabs: self.state_counts()[FULL],
            partial_slabs: self.state_counts()[PARTIAL],
            empty_slabs: self.state_counts()[EMPTY],
        }
    }

    /// `offset / object_size`, exact for `offset * object_size < 2^64`
    /// (slabs are far smaller): the error of the rounded-up reciprocal stays
    /// below `1 / object_size`.
    #[inline]
    fn object_index(&self, offset: usize) -> usize {
        ((offset as u128 * u128::from(self.reciprocal)) >> 64) as usize
    }

    #[inline]
    fn list_for(&self, in_use: usize) -> usize {
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
    unsafe fn push(&mut self, list: usize, slab: *mut SlabHeader) {
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
    unsafe fn unlink(&mut self, list: usize, slab: *mut SlabHeader) {
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
    unsafe fn relist(&mut self, slab: *mut SlabHeader, old_in_use: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let (from, to) = (self.list_for(old_in_use), self.list_for((*slab).in_use));
            if from != to {
                self.unlink(from, slab);
                self.push(to, slab);
            }
        }
    }

    #[inline]
    fn bitmap(slab: *mut SlabHeader) -> *mut usize {
        // SAFETY: the bitmap directly follows the header inside the slab.
        unsafe { slab.add(1).cast() }
    }

    /// Allocates one object from the current slab; when it is full (or
    /// there is none), `refill` makes the first partial slab current (else
    /// an empty one, else a new slab from `source`, whose address range is
    /// reported through `on_new_slab`).
    #[inline]
    pub fn alloc<P: PageSource>(
        &mut self,
        source: &mut P,
        on_new_slab: impl FnOnce(usize, usize),
    ) -> AllocResult<NonNull<u8>> {
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
            let index = self.object_index(object.addr() - slab.addr() - self.first_object);
            *Self::bitmap(slab).add(index / WORD_BITS) |= 1 << (index % WORD_BITS);
            header.in_use += 1;
            self.active_objects += 1;
            Ok(NonNull::new_unchecked(object))
        }
    }

    /// Retires a full current slab to the full count and makes another
    /// slab with a free object current.
    #[cold]
    fn refill<P: PageSource>(
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
            on_new_slab(slab.addr(), self.slab_bytes);
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
    fn new_slab<P: PageSource>(&mut self, source: &mut P) -> AllocResult<*mut SlabHeader> {
        let pages = source.alloc_pages(self.pages_per_slab, self.slab_bytes)?;
        if !pages.addr().get().is_multiple_of(self.slab_bytes) {
            // A source that ignores alignment would break address-to-slab
            // lookup; refuse it rather than corrupt memory later.
            // SAFETY: just obtained from `source` with these arguments.
            let _ = unsafe { source.dealloc_pages(pages, self.pages_per_slab) };
            return Err(AllocError::InvalidParam);
        }
        let slab = pages.as_ptr().cast::<SlabHeader>();
        // SAFETY: the slab's pages are ours; header and bitmap fit in them.
        unsafe {
            slab.write(SlabHeader {
                magic: SLAB_MAGIC ^ slab.addr(),
                cache: self.index,
                free_head: ptr::null_mut(),
                bump: 0,
                in_use: 0,
                prev: ptr::null_mut(),
                next: ptr::null_mut(),
                retired: false,
            });
            ptr::write_bytes(Self::bitmap(slab), 0, self.bitmap_words);
            self.push(EMPTY, slab);
        }
        Ok(slab)
    }

    /// Checks that `ptr` is a live object of this cache; returns its slab
    /// and index. `lo..hi` is the address range of every page ever taken
    /// from the source, so the header read stays in memory the slab
    /// allocator had.
    #[inline]
    pub fn check_live(
        &self,
        ptr: NonNull<u8>,
        lo: usize,
        hi: usize,
    ) -> AllocResult<(*mut SlabHeader, usize)> {
        let addr = ptr.addr().get();
        let slab_addr = addr & !(self.slab_bytes - 1);
        if slab_addr < lo || slab_addr + self.first_object > hi {
            return Err(AllocError::NotAllocated);
        }
        let slab = ptr.as_ptr().with_addr(slab_addr).cast::<SlabHeader>();
        // SAFETY: `slab_addr` lies in pages obtained from the source, which
        // stay mapped; a slab header is read only after its magic matched.
        unsafe {
            if (*slab).magic != SLAB_MAGIC ^ slab_addr || (*slab).cache != self.index {
                return Err(AllocError::NotAllocated);
            }
            let offset = addr - slab_addr;
            if offset < self.first_object {
                return Err(AllocError::NotAllocated);
            }
            let index = self.object_index(offset - self.first_object);
            if index * self.object_size != offset - self.first_object {
                return Err(AllocError::NotAllocated);
            }
            if index >= (*slab).bump {
                return Err(AllocError::NotAllocated);
            }
            if *Self::bitmap(slab).add(index / WORD_BITS) & (1 << (index % WORD_BITS)) == 0 {
                return Err(AllocError::DoubleFree);
            }
            Ok((slab, index))
        }
    }

    /// Frees the object `index` of `slab` (validated by `check_live`), and
    /// gives a surplus empty slab back to `source`.
    ///
    /// # Safety
    /// `check_live` returned `(slab, index)` and nothing changed since.
    #[inline]
    pub unsafe fn free<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
        index: usize,
    ) {
        // SAFETY: a live object of a listed slab of this cache.
        unsafe {
            *Self::bitmap(slab).add(index / WORD_BITS) &= !(1 << (index % WORD_BITS));
            let object = slab
                .cast::<u8>()
                .add(self.first_object + index * self.object_size);
            let old_in_use = (*slab).in_use;
            (*slab).in_use = old_in_use - 1;
            self.active_objects -= 1;
            if (*slab).retired {
                // Never reused: the object stays off the free list, and
                // the slab's pages go back with its last object.
                if old_in_use == 1 {
                    self.retired -= 1;
                    self.give_back(source, slab);
                }
                return;
            }
            *object.cast::<*mut u8>() = (*slab).free_head;
            (*slab).free_head = object;
            // Only the first free of a full slab (full -> partial) and the
            // last object (partial -> empty) change a slab's state; the
            // current slab is on no list.
            if old_in_use == self.objects_per_slab || old_in_use == 1 {
                if slab != self.current {
                    self.relist(slab, old_in_use);
                }
                if self.empty_slabs() > MAX_EMPTY_SLABS {
                    self.release_empty(source);
                }
            }
        }
    }

    /// The slab of this cache holding `addr`, if that is a live slab;
    /// `lo..hi` bounds the pages ever taken from the source.
    pub fn slab_holding(&self, addr: NonNull<u8>, lo: usize, hi: usize) -> Option<*mut SlabHeader> {
        let slab_addr = addr.addr().get() & !(self.slab_bytes - 1);
        if slab_addr < lo || slab_addr.saturating_add(self.first_object) > hi {
            return None;
        }
        let slab = addr.as_ptr().with_addr(slab_addr).cast::<SlabHeader>();
        // SAFETY: `slab_addr` lies in pages obtained from the source, which
        // stay mapped (as in `check_live`); only the magic and owner are read.
        let live =
            unsafe { (*slab).magic == SLAB_MAGIC ^ slab_addr && (*slab).cache == self.index };
        live.then_some(slab)
    }

    /// Takes `slab` out of service (memory failure): no object of it is
    /// handed out again; its pages go back to `source` now if it is empty,
    /// else when its last live object is freed. Returns whether the slab
    /// was in service.
    ///
    /// # Safety
    /// [`slab_holding`](Self::slab_holding) returned `slab` and nothing
    /// changed since.
    pub(super) unsafe fn retire<P: PageSource>(
        &mut self,
        source: &mut P,
        slab: *mut SlabHeader,
    ) -> bool {
        // SAFETY: a live slab of this cache (the caller checked it).
        unsafe {
            if (*slab).retired {
                return false;
            }
            if slab == self.current {
                self.current = ptr::null_mut();
            } else {
                self.unlink(self.list_for((*slab).in_use), slab);
            }
            (*slab).retired = true;
            if (*slab).in_use == 0 {
                self.give_back(source, slab);
            } else {
                self.retired += 1;
            }
        }
        true
    }

    /// Returns a retired slab with no live object to `source`.
    ///
    /// # Safety
    /// `slab` is retired, on no list, and holds no live object.
    unsafe fn give_back<P: PageSource>(&mut self, source: &mut P, slab: *mut SlabHeader) {
        // SAFETY: forwarded from the caller; the slab's pages came from
        // `source` with `pages_per_slab` pages.
        unsafe {
            (*slab).magic = 0;
            // A source refusing its own block is a bug elsewhere; the slab
            // is out of service either way, so its pages are only lost.
            let _ = source.dealloc_pages(
                NonNull::new_unchecked(slab.cast::<u8>()),
                self.pages_per_slab,
            );
        }
    }

    /// Gives one empty slab back to `source`: a listed one, else the
    /// current slab if it is empty. Returns whether one was.
    #[cold]
    pub fn release_empty<P: PageSource>(&mut self, source: &mut P) -> bool {
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
            (*slab).magic = 0;
            let pages = NonNull::new_unchecked(slab.cast::<u8>());
            if source.dealloc_pages(pages, self.pages_per_slab).is_err() {
                // The source refused its own block: keep the slab rather
                // than lose or double-count its pages.
                (*slab).magic = SLAB_MAGIC ^ slab.addr();
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
