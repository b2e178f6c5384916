//! A slab allocator: named caches of equal-size objects (`task`, `inode`,
//! page-table nodes ...) plus `kmalloc`-style size classes from 8 B to
//! 2 KiB, on slabs of pages taken from any [`PageSource`]. Requests above
//! the largest class, or aligned beyond it, go straight to the page source
//! as whole pages, recorded in a [`LargeBlocks`] table so that only a
//! recorded block of that size is ever passed back to the source.
//!
//! Allocation and free are O(1), and each common case is inline with no
//! call and no stack; everything else is one call out of line:
//!
//! - `alloc` (below): the layout's class (`classes.rs`: an OR, a compare
//!   and a table load), then `alloc_in`: the object freed last from the
//!   cache's magazine (`SlabCache::alloc_parked`, `cache.rs`), else one
//!   from its current slab (`alloc_current`); only a full current slab
//!   calls out, to `alloc_in_slab` and `refill`;
//! - `dealloc` (below): the class, then `SlabCache::free_fast` makes the
//!   fast test of `shape.rs` (the slab's stamp, the object's index below
//!   the slab's bump, the object's first word) and parks the object in
//!   the magazine or puts it back on its slab; anything the test does not
//!   accept goes to `free_checked`, which names the error (`OutOfRange`,
//!   then `cache/check.rs`).
//!
//! Free objects are linked through their first word (`free_list.rs`); a
//! parked object's first word marks it as such, and the magazine
//! (`magazine.rs`) is an array of them.
//!
//! Zero sizes and requests served in pages are out of line in
//! `large_requests.rs`; the range of pages taken from the source, the
//! first test of a free, is the hull (`hull.rs`), and a slab's header is
//! in `header.rs`.
//!
//! A per-CPU cache in front of the allocator takes and returns objects in
//! batches and tests frees without the lock (`probe.rs`).
//!
//! An object's slab is its address rounded down to the slab size (slabs
//! are aligned to their size), and an empty slab beyond
//! [`MAX_EMPTY_SLABS`] goes back to the page source at once. Named caches,
//! shrinking, retiring slabs and the statistics are in `manage.rs`.

mod cache;
mod classes;
mod divisor;
mod free_list;
mod header;
mod hull;
mod info;
mod large_requests;
mod magazine;
mod manage;
mod probe;
mod shape;
mod source;

use core::alloc::Layout;
use core::ptr::NonNull;

pub use self::cache::MAX_EMPTY_SLABS;
use self::cache::{AfterFree, SlabCache, SlabHeader};
pub use self::classes::{KMALLOC_MAX, KMALLOC_SIZES, kmalloc_cache_name};
use self::classes::{KMALLOC_NAMES, class_align, class_for, small_class};
use self::hull::Hull;
pub use self::info::SlabInfo;
pub use self::magazine::MAGAZINE_MAX;
pub use self::probe::{
    KMALLOC_CLASSES, ObjectProbe, kmalloc_class, kmalloc_class_layout, kmalloc_small_class,
    mark_live, mark_parked,
};
pub use self::source::PageSource;
use super::LargeBlocks;
use crate::{AllocError, AllocResult, BaseAllocator, ByteAllocator};

/// Total caches (size classes plus named caches) one allocator holds.
pub const MAX_CACHES: usize = 64;

/// The size of a cache's place in the allocator.
const CACHE_BYTES: usize = size_of::<Option<SlabCache>>();

/// The cache at `index`, without a bounds or presence check.
///
/// # Safety
/// Cache `index` exists: a `kmalloc` class (created in `new`, never
/// destroyed) or a named cache just looked up.
#[inline(always)]
unsafe fn cache_at(caches: &mut [Option<SlabCache>], index: usize) -> &mut SlabCache {
    // SAFETY: the caller's guarantee.
    unsafe { caches.get_unchecked_mut(index).as_mut().unwrap_unchecked() }
}

/// A handle to a cache of a [`SlabAllocator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheId(usize);

/// An allocation's outcome as two scalars: a function returns it in
/// registers, where a `Result` of a pointer or an error goes through
/// memory. The out-of-line allocation paths return it, so that the inline
/// fast path around their call needs no stack.
#[derive(Clone, Copy)]
struct Outcome(Option<NonNull<u8>>, AllocError);

impl Outcome {
    #[inline(always)]
    fn new(result: AllocResult<NonNull<u8>>) -> Self {
        match result {
            Ok(block) => Self(Some(block), AllocError::NoMemory),
            Err(error) => Self(None, error),
        }
    }

    #[inline(always)]
    fn result(self) -> AllocResult<NonNull<u8>> {
        self.0.ok_or(self.1)
    }
}

/// The slab allocator over a page source `P`.
///
/// The caches come first, so that the allocator's address is that of its
/// first cache and a class's cache is one multiply away from it.
#[repr(C)]
pub struct SlabAllocator<P: PageSource> {
    caches: [Option<SlabCache>; MAX_CACHES],
    hull: Hull,
    large: LargeBlocks,
    source: P,
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
            hull: Hull::EMPTY,
            large: LargeBlocks::new(),
        }
    }

    /// The page source the slabs come from.
    pub fn source(&self) -> &P {
        &self.source
    }

    /// The page source, to allocate pages beside the slabs or give it
    /// memory.
    pub fn source_mut(&mut self) -> &mut P {
        &mut self.source
    }

    /// Whether `addr` is outside all memory the slab could have handed out:
    /// outside the hull of the pages it took, or outside the page source
    /// when the source can tell.
    #[inline]
    fn outside(&self, addr: usize) -> bool {
        !self.hull.contains(addr) || self.source.contains(addr) == Some(false)
    }

    /// The cache of a size class.
    fn class_cache(&self, class: usize) -> &SlabCache {
        self.caches[class]
            .as_ref()
            .expect("size classes always exist")
    }

    /// Allocates from cache `index`: the magazine, else the current slab,
    /// inline; a new current slab out of line.
    ///
    /// # Safety
    /// Cache `index` exists: a `kmalloc` class (created in `new`, never
    /// destroyed) or a named cache just looked up.
    #[inline(always)]
    unsafe fn alloc_in(&mut self, index: usize) -> AllocResult<NonNull<u8>> {
        // SAFETY: the caller's guarantee.
        let cache = unsafe { cache_at(&mut self.caches, index) };
        if let Some(object) = cache.alloc_parked() {
            return Ok(object);
        }
        if let Some(object) = cache.alloc_current() {
            return Ok(object);
        }
        // SAFETY: the caller's guarantee.
        unsafe { self.alloc_in_slab(index) }.result()
    }

    /// Cache `index`, with the page source and the hull beside it,
    /// borrowed apart so that the cache can take pages and widen the hull.
    ///
    /// # Safety
    /// As for [`cache_at`].
    #[inline(always)]
    unsafe fn cache_parts(&mut self, index: usize) -> (&mut SlabCache, &mut P, &mut Hull) {
        // SAFETY: the caller's guarantee.
        let cache = unsafe { cache_at(&mut self.caches, index) };
        (cache, &mut self.source, &mut self.hull)
    }

    /// [`alloc_in`](Self::alloc_in) when the magazine is empty and the
    /// current slab full (or missing).
    ///
    /// # Safety
    /// As for [`alloc_in`](Self::alloc_in).
    #[inline(never)]
    unsafe fn alloc_in_slab(&mut self, index: usize) -> Outcome {
        // SAFETY: the caller's guarantee.
        let (cache, source, hull) = unsafe { self.cache_parts(index) };
        Outcome::new(cache.alloc_from_new_current(source, |start, bytes| hull.cover(start, bytes)))
    }

    /// Frees `ptr` into cache `index`, after checking it: the common case
    /// inline ([`SlabCache::free_fast`]), anything else out of line.
    ///
    /// # Safety
    /// As for [`alloc_in`](Self::alloc_in), and `ptr` as for
    /// [`ByteAllocator::dealloc`].
    #[inline(always)]
    unsafe fn free_in(&mut self, index: usize, ptr: NonNull<u8>) -> AllocResult {
        // SAFETY: the caller's guarantee.
        let (cache, source, hull) = unsafe { self.cache_parts(index) };
        // The calls out of line take the cache's offset in `caches`, not
        // its index: the class lookup loads the offset (`classes.rs`), so
        // passing it computes nothing on the way in.
        let slot = index * CACHE_BYTES;
        // SAFETY: `hull` is the range of pages taken from `source`; `ptr`
        // is as the caller guarantees.
        match unsafe { cache.free_fast(source, ptr.as_ptr(), *hull) } {
            Some(AfterFree::Done) => Ok(()),
            Some(AfterFree::Drain) => {
                // SAFETY: the caller's guarantee.
                unsafe { self.drain_after_free(slot) };
                Ok(())
            }
            Some(AfterFree::Settle(slab, old_in_use)) => {
                // SAFETY: the caller's guarantee; the slab and count of
                // the release just made.
                unsafe { self.settle_after_free(slot, slab, old_in_use) };
                Ok(())
            }
            // SAFETY: forwarded from the caller.
            None => unsafe { self.free_checked(slot, ptr) },
        }
    }

    /// Empties the magazine of the cache at `slot` (its offset in
    /// `caches`) after a free parked its last live object: out of line,
    /// and finding the cache and the page source itself, so that the
    /// inline free computes neither.
    ///
    /// # Safety
    /// `slot / CACHE_BYTES` is an index [`alloc_in`](Self::alloc_in)
    /// accepts.
    #[cold]
    #[inline(never)]
    unsafe fn drain_after_free(&mut self, slot: usize) {
        // SAFETY: the caller's guarantee.
        let (cache, source, _) = unsafe { self.cache_parts(slot / CACHE_BYTES) };
        cache.drain_magazine(source);
    }

    /// [`SlabCache::settle`] of the cache at `slot` after a free into
    /// `slab`, out of line as [`drain_after_free`](Self::drain_after_free).
    ///
    /// # Safety
    /// As for [`drain_after_free`](Self::drain_after_free); `slab` and
    /// `old_in_use` are what the free into the cache just returned.
    #[inline(never)]
    unsafe fn settle_after_free(&mut self, slot: usize, slab: *mut SlabHeader, old_in_use: usize) {
        // SAFETY: the caller's guarantee.
        let (cache, source, _) = unsafe { self.cache_parts(slot / CACHE_BYTES) };
        // SAFETY: forwarded from the caller.
        unsafe { cache.settle(source, slab, old_in_use) };
    }

    /// Frees `ptr` into the cache at `slot` with every check named: the
    /// way of every free the fast test did not settle.
    ///
    /// # Safety
    /// As for [`drain_after_free`](Self::drain_after_free), and `ptr` as
    /// for [`ByteAllocator::dealloc`].
    #[cold]
    #[inline(never)]
    unsafe fn free_checked(&mut self, slot: usize, ptr: NonNull<u8>) -> AllocResult {
        let index = slot / CACHE_BYTES;
        if self.outside(ptr.addr().get()) {
            return Err(AllocError::OutOfRange);
        }
        // SAFETY: the caller's guarantee.
        let (cache, source, hull) = unsafe { self.cache_parts(index) };
        // SAFETY: `ptr` lies in the hull (checked above); the rest is the
        // caller's contract.
        unsafe { cache.free(source, ptr, *hull) }
    }
}

impl<P: PageSource> BaseAllocator for SlabAllocator<P> {
    /// Forwards to the page source (`InvalidParam` if it takes no memory).
    ///
    /// # Safety
    /// See [`BaseAllocator::add_memory`].
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.source.add_memory(start, size) }
    }
}

impl<P: PageSource> ByteAllocator for SlabAllocator<P> {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        match small_class(layout) {
            // SAFETY: size classes always exist.
            Some(class) => unsafe { self.alloc_in(class) },
            None => self.alloc_other(layout).result(),
        }
    }

    /// Detection: outside the hull of every page ever taken from the
    /// source, or outside the source when it answers
    /// [`PageSource::contains`], is `OutOfRange` (with a source that cannot
    /// tell and several regions, an address in a gap between them is
    /// checked like a slab address: best-effort, and that memory is read).
    /// For a size class, the slab found by rounding the address down must
    /// carry the stamp of a slab of that class in service (else
    /// `NotAllocated`, which also catches a layout of another class), the
    /// address must be an object boundary that was handed out (else
    /// `NotAllocated`) and the object must not be free (else `DoubleFree`:
    /// an object whose first word could be a free-list link is looked up
    /// on the lists, so this is exact within live slabs; see `cache.rs`
    /// and `free_list.rs`). Best-effort: an address in pages that are not
    /// a slab of the class relies on the stamp (a 1 in 2^64 false match on
    /// arbitrary data). A large block must be recorded in the table of
    /// large blocks with the page count of `layout` (else `NotAllocated`),
    /// which is exact.
    ///
    /// # Safety
    /// See [`ByteAllocator::dealloc`].
    #[inline]
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        match small_class(layout) {
            // SAFETY: size classes always exist; `ptr` is as the caller
            // guarantees.
            Some(class) => unsafe { self.free_in(class, ptr) },
            // SAFETY: forwarded from the caller.
            None => unsafe { self.dealloc_other(ptr, layout) },
        }
    }

    /// In place when the new size maps to the same class (or the same page
    /// count), else moves.
    ///
    /// # Safety
    /// See [`ByteAllocator::realloc`].
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_size: usize,
    ) -> AllocResult<NonNull<u8>> {
        let new_layout = crate::traits::resized_layout(old_layout, new_size)?;
        let (old_class, new_class) = (class_for(old_layout), class_for(new_layout));
        let addr = ptr.addr().get();
        if self.outside(addr) {
            return Err(AllocError::OutOfRange);
        }
        match old_class {
            Some(class) => {
                // SAFETY: `ptr` lies in the hull (checked above); the rest
                // is the caller's contract.
                unsafe { self.class_cache(class).check_live(ptr, self.hull)? };
            }
            None => {
                self.large_block(addr, old_layout)?;
            }
        }
        let same_place = match (old_class, new_class) {
            (Some(old), Some(new)) => old == new,
            (None, None) => {
                Self::large_pages_for(old_layout).0 == Self::large_pages_for(new_layout).0
            }
            _ => false,
        };
        if same_place {
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { crate::traits::move_block(self, ptr, old_layout, new_layout) }
    }

    /// Bytes in slabs and large blocks, plus the page source's free pages.
    fn total_bytes(&self) -> usize {
        let slabs: usize = self
            .caches
            .iter()
            .flatten()
            .map(|c| c.slab_count() * c.slab_bytes())
            .sum();
        slabs + (self.large.pages() + self.source.available_pages()) * P::PAGE_SIZE
    }

    /// Live objects times their object size, plus large blocks' pages.
    fn used_bytes(&self) -> usize {
        let objects: usize = self
            .caches
            .iter()
            .flatten()
            .map(|c| c.active_objects() * c.object_size)
            .sum();
        objects + self.large.pages() * P::PAGE_SIZE
    }

    /// Free object slots in existing slabs, plus the page source's free pages.
    fn available_bytes(&self) -> usize {
        let free_slots: usize = self
            .caches
            .iter()
            .flatten()
            .map(|c| (c.slab_count() * c.objects_per_slab - c.active_objects()) * c.object_size)
            .sum();
        free_slots + self.source.available_pages() * P::PAGE_SIZE
    }
}
