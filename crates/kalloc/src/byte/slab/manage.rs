//! Managing a [`SlabAllocator`]'s caches beyond `alloc` and `dealloc`:
//! named caches, shrinking, retiring a slab on bad memory, the statistics,
//! and `check_dealloc`.

use core::alloc::Layout;
use core::ptr::NonNull;

use super::cache::SlabCache;
use super::classes::{KMALLOC_SIZES, class_for_general, small_class};
use super::{CacheId, MAX_CACHES, PageSource, SlabAllocator, SlabInfo};
use crate::{AllocError, AllocResult};

impl<P: PageSource> SlabAllocator<P> {
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
    /// [`dealloc`](crate::ByteAllocator::dealloc) on this allocator.
    ///
    /// # Safety
    /// As for [`ByteAllocator::dealloc`](crate::ByteAllocator::dealloc).
    pub unsafe fn cache_free(&mut self, id: CacheId, ptr: NonNull<u8>) -> AllocResult {
        self.cache_mut(id)?;
        // SAFETY: `cache_mut` just found the cache; `ptr` is as the
        // caller guarantees.
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
            hull,
            ..
        } = self;
        for cache in caches.iter_mut().flatten() {
            if let Some(slab) = cache.slab_holding(addr, *hull) {
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
    /// The verdict [`dealloc`](crate::ByteAllocator::dealloc) would give
    /// for `ptr` and `layout`, without freeing anything: `Ok` for a live
    /// block of this layout, else the same error. A caller that remembers
    /// a block it freed can ask whether a second free would be refused
    /// without risking one that is accepted (the address handed out
    /// again).
    ///
    /// # Safety
    /// As for [`ByteAllocator::dealloc`](crate::ByteAllocator::dealloc),
    /// except that the block is not freed: if `ptr` lies inside memory
    /// this allocator manages, it is a pointer the allocator returned
    /// (possibly freed since).
    pub unsafe fn check_dealloc(&self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let addr = ptr.addr().get();
        if self.outside(addr) {
            return Err(AllocError::OutOfRange);
        }
        match small_class(layout).or_else(|| class_for_general(layout)) {
            // SAFETY: `ptr` lies in the hull (checked above); the rest is
            // the caller's contract.
            Some(class) => unsafe { self.class_cache(class).check_live(ptr, self.hull).map(drop) },
            None => self.large_block(addr, layout).map(drop),
        }
    }
}
