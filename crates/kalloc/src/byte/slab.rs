//! A slab allocator: named caches of equal-size objects (`task`, `inode`,
//! page-table nodes ...) plus `kmalloc`-style size classes from 8 B to
//! 2 KiB, on slabs of pages taken from any [`PageSource`]. Requests above
//! the largest class, or aligned beyond it, go straight to the page source
//! as whole pages, recorded in a [`LargeBlocks`] table so that only a
//! recorded block of that size is ever passed back to the source.
//!
//! Allocation and free are O(1). The fast paths are short chains:
//!
//! - `alloc` (below): the layout's class (`classes.rs`: a table load),
//!   then `SlabCache::alloc` (`cache.rs`) takes the object freed last from
//!   the cache's magazine, else one from its current slab;
//! - `dealloc` (below): the class, the hull check ([`Hull`]), then
//!   `SlabCache::free` (`cache.rs`) makes every check a free needs and
//!   parks the object in the magazine.
//!
//! Free objects are linked through their first word (`free_list.rs`), and
//! the magazine (`magazine.rs`) is such a list.
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
mod info;
mod magazine;
mod manage;
mod probe;
mod source;

use core::alloc::Layout;
use core::ptr::NonNull;

pub use self::cache::MAX_EMPTY_SLABS;
use self::cache::SlabCache;
pub use self::classes::{KMALLOC_MAX, KMALLOC_SIZES, kmalloc_cache_name};
use self::classes::{KMALLOC_NAMES, class_align, class_for, class_for_general, small_class};
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

/// A handle to a cache of a [`SlabAllocator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheId(usize);

/// The address range from the lowest to the highest page the allocator
/// ever took from its source (empty until the first): a pointer outside
/// is `OutOfRange`, and a slab header is only read inside. Exact for a
/// source with one region; with several, a gap between them is inside.
#[derive(Clone, Copy, Debug)]
struct Hull {
    lo: usize,
    hi: usize,
}

impl Hull {
    const EMPTY: Self = Self { lo: 0, hi: 0 };

    /// Whether `lo <= addr < hi`, as one compare: below `lo` the
    /// subtraction wraps to a value above `hi - lo`. Debug builds check it
    /// against the two compares.
    #[inline(always)]
    fn contains(self, addr: usize) -> bool {
        let inside = addr.wrapping_sub(self.lo) < self.hi.wrapping_sub(self.lo);
        debug_assert_eq!(inside, self.lo <= addr && addr < self.hi);
        inside
    }

    /// Widens the hull to cover `[start, start + bytes)`.
    fn cover(&mut self, start: usize, bytes: usize) {
        let end = start + bytes;
        *self = if self.lo == self.hi {
            Self { lo: start, hi: end }
        } else {
            Self {
                lo: self.lo.min(start),
                hi: self.hi.max(end),
            }
        };
    }
}

/// The slab allocator over a page source `P`.
pub struct SlabAllocator<P: PageSource> {
    source: P,
    caches: [Option<SlabCache>; MAX_CACHES],
    hull: Hull,
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
            hull,
            ..
        } = self;
        // SAFETY: the caller's guarantee.
        let cache = unsafe { caches.get_unchecked_mut(index).as_mut().unwrap_unchecked() };
        cache.alloc(source, |start, bytes| hull.cover(start, bytes))
    }

    /// Frees `ptr` into cache `index`, after checking it.
    ///
    /// # Safety
    /// As for [`alloc_in`](Self::alloc_in), and `ptr` as for
    /// [`ByteAllocator::dealloc`].
    #[inline]
    unsafe fn free_in(&mut self, index: usize, ptr: NonNull<u8>) -> AllocResult {
        if self.outside(ptr.addr().get()) {
            return Err(AllocError::OutOfRange);
        }
        let Self {
            source,
            caches,
            hull,
            ..
        } = self;
        // SAFETY: the caller's guarantee.
        let cache = unsafe { caches.get_unchecked_mut(index).as_mut().unwrap_unchecked() };
        // SAFETY: `ptr` lies in the hull (checked above); the rest is the
        // caller's contract.
        unsafe { cache.free(source, ptr, *hull) }
    }

    /// Pages and alignment of a request served from the page source.
    fn large_pages_for(layout: Layout) -> (usize, usize) {
        let pages = layout.size().div_ceil(P::PAGE_SIZE);
        (pages, layout.align().max(P::PAGE_SIZE))
    }

    /// The page count of the live large block at `addr` that `layout`
    /// describes: aligned as `layout` asks and recorded in the table with
    /// that count, else `NotAllocated`. The page source alone cannot tell
    /// such a block from a slab that reuses its pages.
    fn large_block(&self, addr: usize, layout: Layout) -> AllocResult<usize> {
        let (pages, align) = Self::large_pages_for(layout);
        // `align` is a power of two: a mask test, not a division.
        if addr & (align - 1) != 0 {
            return Err(AllocError::NotAllocated);
        }
        self.large.check(addr, pages)?;
        Ok(pages)
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
        if let Some(class) = small_class(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.alloc_in(class) };
        }
        if layout.size() == 0 {
            return Err(AllocError::InvalidParam);
        }
        if let Some(class) = class_for_general(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.alloc_in(class) };
        }
        let (pages, align) = Self::large_pages_for(layout);
        self.large.reserve(&mut self.source)?;
        let block = match self.source.alloc_pages(pages, align) {
            Ok(block) => block,
            Err(error) => {
                // A table taken for this block alone goes back with it.
                self.large.release(&mut self.source);
                return Err(error);
            }
        };
        self.large.insert_reserved(block.addr().get(), pages);
        self.hull.cover(block.addr().get(), pages * P::PAGE_SIZE);
        Ok(block)
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
        if let Some(class) = small_class(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.free_in(class, ptr) };
        }
        if let Some(class) = class_for_general(layout) {
            // SAFETY: size classes always exist.
            return unsafe { self.free_in(class, ptr) };
        }
        let addr = ptr.addr().get();
        if self.outside(addr) {
            return Err(AllocError::OutOfRange);
        }
        let pages = self.large_block(addr, layout)?;
        // SAFETY: the table holds exactly the live large blocks, so `ptr`
        // is one of `pages` pages, and the caller no longer uses it.
        unsafe { self.source.dealloc_pages(ptr, pages)? };
        self.large.remove(&mut self.source, addr);
        Ok(())
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
