//! A slab allocator: named caches of equal-size objects (`task`, `inode`,
//! page-table nodes ...) plus `kmalloc`-style size classes from 8 B to
//! 2 KiB, on slabs of pages taken from any [`PageSource`]. Requests above
//! the largest class, or aligned beyond it, go straight to the page source
//! as whole pages, recorded in a [`LargeBlocks`] table so that only a
//! recorded block of that size is ever passed back to the source.
//!
//! Allocation and free are O(1): a cache first takes back the object freed
//! last (its magazine, see `magazine.rs`), else allocates from its current
//! slab; an object's slab is its address rounded down to the slab size
//! (slabs are aligned to their size), and an empty slab beyond
//! [`MAX_EMPTY_SLABS`] goes back to the page source at once.

mod cache;
mod classes;
mod info;
mod link;
mod magazine;
mod source;
mod traits;

use core::alloc::Layout;
use core::ptr::NonNull;

pub use self::cache::MAX_EMPTY_SLABS;
use self::cache::SlabCache;
pub use self::classes::{KMALLOC_MAX, KMALLOC_SIZES, kmalloc_cache_name};
use self::classes::{KMALLOC_NAMES, class_align};
pub use self::info::SlabInfo;
pub use self::magazine::MAGAZINE_MAX;
pub use self::source::PageSource;
use super::LargeBlocks;
use crate::{AllocError, AllocResult};

/// Total caches (size classes plus named caches) one allocator holds.
pub const MAX_CACHES: usize = 64;

/// A handle to a cache of a [`SlabAllocator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheId(usize);

/// The slab allocator over a page source `P`.
pub struct SlabAllocator<P: PageSource> {
    source: P,
    caches: [Option<SlabCache>; MAX_CACHES],
    /// Lowest and highest+1 address of all pages ever taken from `source`:
    /// a pointer outside is `OutOfRange`, and slab headers are only read
    /// inside.
    lo: usize,
    hi: usize,
    large: LargeBlocks,
}

// SAFETY: the allocator owns its slabs (taken from `source`, which it owns)
// and its raw pointers only point into them.
unsafe impl<P: PageSource + Send> Send for SlabAllocator<P> {}

impl<P: PageSource> SlabAllocator<P> {
    /// A slab allocator with the `kmalloc` classes and no named cache.
    pub fn new(source: P) -> Self {
        let mut caches = [None; MAX_CACHES];
        for (class, slot) in caches.iter_mut().enumerate().take(KMALLOC_SIZES.len()) {
            *slot = SlabCache::new(
                KMALLOC_NAMES[class],
                class,
                KMALLOC_SIZES[class],
                class_align(class),
                P::PAGE_SIZE,
            );
            debug_assert!(slot.is_some());
        }
        Self {
            source,
            caches,
            lo: usize::MAX,
            hi: 0,
            large: LargeBlocks::new(),
        }
    }

    pub fn source(&self) -> &P {
        &self.source
    }

    pub fn source_mut(&mut self) -> &mut P {
        &mut self.source
    }

    /// Creates a named cache of objects of `size` bytes aligned to `align`.
    /// `InvalidParam` for a zero size, a bad alignment, or an object that
    /// does not fit a slab; `NoMemory` when all cache slots are taken.
    pub fn create_cache(
        &mut self,
        name: &'static str,
        size: usize,
        align: usize,
    ) -> AllocResult<CacheId> {
        if size == 0 || !align.is_power_of_two() {
            return Err(AllocError::InvalidParam);
        }
        let index = (KMALLOC_SIZES.len()..MAX_CACHES)
            .find(|&i| self.caches[i].is_none())
            .ok_or(AllocError::NoMemory)?;
        let cache = SlabCache::new(name, index, size, align, P::PAGE_SIZE)
            .ok_or(AllocError::InvalidParam)?;
        self.caches[index] = Some(cache);
        Ok(CacheId(index))
    }

    /// Destroys a named cache that has no live object, giving its slabs
    /// back. `InvalidParam` for an unknown cache or a `kmalloc` class;
    /// `NotAllocated` if objects are still live (nothing changes).
    pub fn destroy_cache(&mut self, id: CacheId) -> AllocResult {
        if id.0 < KMALLOC_SIZES.len() {
            return Err(AllocError::InvalidParam);
        }
        let cache = self.cache_mut(id)?;
        if cache.active_objects() != 0 {
            return Err(AllocError::NotAllocated);
        }
        let Self { source, caches, .. } = self;
        let cache = caches[id.0].as_mut().expect("checked above");
        cache.drain_magazine(source);
        while cache.release_empty(source) {}
        if cache.slab_count() != 0 {
            return Err(AllocError::NotAllocated);
        }
        caches[id.0] = None;
        Ok(())
    }

    fn cache_mut(&mut self, id: CacheId) -> AllocResult<&mut SlabCache> {
        self.caches
            .get_mut(id.0)
            .and_then(Option::as_mut)
            .ok_or(AllocError::InvalidParam)
    }

    /// Allocates one object from cache `id`.
    pub fn cache_alloc(&mut self, id: CacheId) -> AllocResult<NonNull<u8>> {
        self.cache_mut(id)?;
        // SAFETY: `cache_mut` just found the cache.
        unsafe { self.alloc_in(id.0) }
    }

    /// Frees an object of cache `id`. Errors as for
    /// [`dealloc`](ByteAllocator::dealloc) on this allocator.
    ///
    /// # Safety
    /// As for [`ByteAllocator::dealloc`].
    pub unsafe fn cache_free(&mut self, id: CacheId, ptr: NonNull<u8>) -> AllocResult {
        self.cache_mut(id)?;
        // SAFETY: `cache_mut` just found the cache.
        unsafe { self.free_in(id.0, ptr) }
    }

    /// Gives every empty slab of every cache back to the page source.
    pub fn shrink(&mut self) {
        let Self {
            source,
            caches,
            large,
            ..
        } = self;
        for cache in caches.iter_mut().flatten() {
            cache.drain_magazine(source);
            while cache.release_empty(source) {}
        }
        large.release(source);
    }

    /// The `slabinfo` rows of every cache, size classes first.
    pub fn slabinfo(&self) -> impl Iterator<Item = SlabInfo> + '_ {
        self.caches.iter().flatten().map(SlabCache::info)
    }

    /// Memory failure: retires the slab holding `addr` (a pointer into one
    /// of its pages), so none of its objects is handed out again; its
    /// pages go back to the source when its last live object is freed (at
    /// once if it has none). Returns whether a slab in service held `addr`.
    pub fn retire_slab_at(&mut self, addr: NonNull<u8>) -> bool {
        if self.outside(addr.addr().get()) {
            return false;
        }
        let Self {
            source,
            caches,
            lo,
            hi,
            ..
        } = self;
        for cache in caches.iter_mut().flatten() {
            if let Some(slab) = cache.slab_holding(addr, *lo, *hi) {
                // SAFETY: `slab_holding` just found it, under `&mut self`.
                return unsafe { cache.retire(source, slab) };
            }
        }
        false
    }

    /// Retired slabs still holding live objects, over all caches.
    pub fn retired_slabs(&self) -> usize {
        self.caches
            .iter()
            .flatten()
            .map(SlabCache::retired_slabs)
            .sum()
    }

    /// Pages held for requests above the largest class.
    pub fn large_pages(&self) -> usize {
        self.large.pages()
    }

    /// Pages the table of large blocks holds.
    pub fn large_table_pages(&self) -> usize {
        self.large.table_pages::<P>()
    }

    fn note_pages(&mut self, start: usize, bytes: usize) {
        self.lo = self.lo.min(start);
        self.hi = self.hi.max(start + bytes);
    }

    /// Allocates from cache `index`.
    ///
    /// # Safety
    /// Cache `index` exists: a `kmalloc` class (created in `new`, never
    /// destroyed) or a named cache just looked up.
    #[inline(always)]
    unsafe fn alloc_in(&mut self, index: usize) -> AllocResult<NonNull<u8>> {
        let Self {
            source,
            caches,
            lo,
            hi,
            ..
        } = self;
        // SAFETY: the caller's guarantee.
        let cache = unsafe { caches.get_unchecked_mut(index).as_mut().unwrap_unchecked() };
        cache.alloc(source, |start, bytes| {
            *lo = (*lo).min(start);
            *hi = (*hi).max(start + bytes);
        })
    }

    /// Whether `addr` is outside all memory the slab could have handed out:
    /// outside the hull of the pages it took, or outside the page source
    /// when the source can tell.
    #[inline]
    fn outside(&self, addr: usize) -> bool {
        addr < self.lo || addr >= self.hi || self.source.contains(addr) == Some(false)
    }

    /// Frees `ptr` into cache `index`, after checking it.
    ///
    /// # Safety
    /// As for [`alloc_in`](Self::alloc_in).
    #[inline]
    unsafe fn free_in(&mut self, index: usize, ptr: NonNull<u8>) -> AllocResult {
        let addr = ptr.addr().get();
        if self.outside(addr) {
            return Err(AllocError::OutOfRange);
        }
        let Self {
            source,
            caches,
            lo,
            hi,
            ..
        } = self;
        // SAFETY: the caller's guarantee.
        let cache = unsafe { caches.get_unchecked_mut(index).as_mut().unwrap_unchecked() };
        let (slab, retired) = cache.check_live(ptr, *lo, *hi)?;
        // SAFETY: `check_live` just validated the object.
        unsafe { cache.free(source, slab, ptr.as_ptr(), retired) };
        Ok(())
    }

    fn large_pages_for(&self, layout: Layout) -> AllocResult<(usize, usize)> {
        let pages = layout.size().div_ceil(P::PAGE_SIZE);
        Ok((pages, layout.align().max(P::PAGE_SIZE)))
    }
}
