//! The allocators under test, each built over host memory the same way,
//! with the algorithm-specific facts the model needs: the state after
//! everything is freed (it must equal the state right after setup), which
//! layouts the algorithm documents as indistinguishable from the one a
//! block was allocated with, what a refused free must leave unchanged, and
//! whether a second user shares its page source.

use std::alloc::Layout;
use std::ptr::NonNull;

use kalloc::byte::{
    BuddyByteAllocator, PageSource, SlabAllocator, TLSF_GRANULE, TLSF_HEADER, TLSF_MIN_BLOCK, Tlsf,
    kmalloc_cache_name,
};
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator};
use kalloc::{AllocResult, BaseAllocator, ByteAllocator, PageAllocator};

use super::host::{Arena, HostPages, PAGE};

/// An allocator together with the host memory it manages.
pub struct Setup<A> {
    pub alloc: A,
    /// The byte ranges blocks may lie in.
    pub ranges: Vec<(usize, usize)>,
    /// A pointer to the start of each range, so the model can form
    /// addresses anywhere in it with the right provenance.
    bases: Vec<NonNull<u8>>,
    _arenas: Vec<Arena>,
}

impl<A> Setup<A> {
    /// An allocator over `arenas`, one range per arena.
    pub fn over_arenas(alloc: A, arenas: Vec<Arena>) -> Self {
        Self {
            alloc,
            ranges: arenas.iter().map(Arena::range).collect(),
            bases: arenas.iter().map(|a| a.at(0)).collect(),
            _arenas: arenas,
        }
    }

    /// A pointer to `addr`, which must lie in one of the ranges.
    pub fn pointer_to(&self, addr: usize) -> NonNull<u8> {
        let index = self
            .ranges
            .iter()
            .position(|&(lo, hi)| (lo..hi).contains(&addr))
            .expect("an address inside the heap");
        let base = self.bases[index];
        // SAFETY: `addr` lies in the range `base` starts, so the offset
        // stays inside the allocation `base` points into.
        unsafe { base.add(addr - self.ranges[index].0) }
    }
}

pub trait Subject: ByteAllocator + Sized {
    const NAME: &'static str;

    /// Whether `settle` leaves every managed byte available. False for a
    /// layer that cannot make its inner allocator give cached memory back.
    const SETTLES_WHOLE: bool = true;

    /// Builds the allocator over fresh pools of the given sizes.
    fn build(pool_sizes: &[usize]) -> Setup<Self>;

    /// Brings the allocator to rest (the slab gives empty slabs back) and
    /// returns its coalescing fingerprint: TLSF's and buddy's free-block
    /// count, the slab's page source free pages. After freeing everything
    /// it must equal the value right after `build`.
    fn settle(&mut self) -> usize;

    /// Whether freeing the live block at `addr`, allocated with `layout`
    /// and charged `charged` bytes, as `other` is the same free by the
    /// algorithm's documented tolerance (TLSF: the same rounded block size
    /// and an address aligned to `other`; buddy: the same order; slab: the
    /// same size class, or as many pages). Such a free cannot be told from
    /// a correct one, so the model never issues it as a bad free.
    fn same_block(addr: usize, layout: Layout, charged: usize, other: Layout) -> bool {
        let _ = (addr, charged);
        layout == other
    }

    /// What a refused free must leave unchanged besides the byte counters.
    fn state(&self) -> Vec<usize> {
        Vec::new()
    }

    /// A second user of the page source under the allocator takes exactly
    /// the `pages` pages at `addr`. `None` if no page source is shared.
    fn take_source_pages(&mut self, addr: usize, pages: usize) -> Option<AllocResult> {
        let _ = (addr, pages);
        None
    }

    /// Gives back pages that `take_source_pages` took.
    fn give_source_pages(&mut self, addr: usize, pages: usize) -> AllocResult {
        let _ = (addr, pages);
        unreachable!("{} shares no page source", Self::NAME)
    }
}

fn arenas(pool_sizes: &[usize]) -> Vec<Arena> {
    pool_sizes.iter().map(|&size| Arena::new(size)).collect()
}

impl Subject for Tlsf {
    const NAME: &'static str = "tlsf";

    fn build(pool_sizes: &[usize]) -> Setup<Self> {
        let arenas = arenas(pool_sizes);
        let mut alloc = Tlsf::new();
        for arena in &arenas {
            // SAFETY: the arena is ours and outlives the allocator (`Setup`).
            unsafe { alloc.add_pool(arena.at(0), arena.len()).unwrap() };
        }
        Setup::over_arenas(alloc, arenas)
    }

    fn settle(&mut self) -> usize {
        assert_eq!(
            self.free_block_count(),
            self.pool_count(),
            "TLSF: one free block per pool"
        );
        self.free_block_count()
    }

    fn same_block(addr: usize, _layout: Layout, charged: usize, other: Layout) -> bool {
        let block = charged + TLSF_HEADER;
        let need = ((other.size() + TLSF_HEADER + TLSF_GRANULE - 1) & !(TLSF_GRANULE - 1))
            .max(TLSF_MIN_BLOCK);
        // A tail under the minimum block is never split off, so a block one
        // granule larger than needed is indistinguishable.
        (need == block || need + TLSF_GRANULE == block) && addr.is_multiple_of(other.align())
    }

    fn state(&self) -> Vec<usize> {
        vec![
            self.free_block_count(),
            self.pool_count(),
            self.largest_free_block(),
        ]
    }
}

impl Subject for BuddyByteAllocator {
    const NAME: &'static str = "buddy";

    fn build(pool_sizes: &[usize]) -> Setup<Self> {
        let arenas = arenas(pool_sizes);
        let mut alloc = BuddyByteAllocator::new();
        for arena in &arenas {
            // SAFETY: the arena is ours and outlives the allocator (`Setup`).
            unsafe { alloc.add_pool(arena.at(0), arena.len()).unwrap() };
        }
        Setup::over_arenas(alloc, arenas)
    }

    fn settle(&mut self) -> usize {
        self.free_block_count()
    }

    fn same_block(_addr: usize, _layout: Layout, charged: usize, other: Layout) -> bool {
        other.size().max(other.align()).max(16).next_power_of_two() == charged
    }

    fn state(&self) -> Vec<usize> {
        let mut per_order = vec![0; usize::BITS as usize];
        self.free_blocks_per_order(&mut per_order);
        per_order
    }
}

/// The slab's tolerance: any layout of the same `kmalloc` class, or above
/// the classes the same page count at an alignment the address has.
pub fn slab_same_block(addr: usize, layout: Layout, other: Layout) -> bool {
    match (kmalloc_cache_name(layout), kmalloc_cache_name(other)) {
        (Some(class), Some(other_class)) => class == other_class,
        (None, None) => {
            layout.size().div_ceil(PAGE) == other.size().div_ceil(PAGE)
                && addr.is_multiple_of(other.align().max(PAGE))
        }
        _ => false,
    }
}

/// Every cache's counters, the large blocks and the source's free pages.
fn slab_state<P: PageSource>(slab: &SlabAllocator<P>) -> Vec<usize> {
    let mut state: Vec<usize> = slab
        .slabinfo()
        .flat_map(|row| {
            [
                row.active_objects,
                row.total_objects,
                row.full_slabs,
                row.partial_slabs,
                row.empty_slabs,
            ]
        })
        .collect();
    state.push(slab.large_pages());
    state.push(slab.source().available_pages());
    state
}

impl Subject for SlabAllocator<HostPages> {
    const NAME: &'static str = "slab";

    fn build(pool_sizes: &[usize]) -> Setup<Self> {
        let bytes = pool_sizes.iter().sum::<usize>().next_multiple_of(PAGE);
        let pages = HostPages::new(bytes);
        let (start, end) = pages.range();
        let base = pages.base();
        Setup {
            alloc: SlabAllocator::new(pages),
            ranges: vec![(start, end)],
            bases: vec![base],
            _arenas: Vec::new(),
        }
    }

    fn settle(&mut self) -> usize {
        self.shrink();
        let pages = self.source();
        assert_eq!(
            pages.available_pages_public(),
            pages.total_pages(),
            "slab: all pages back"
        );
        pages.available_pages_public()
    }

    fn same_block(addr: usize, layout: Layout, _charged: usize, other: Layout) -> bool {
        slab_same_block(addr, layout, other)
    }

    fn state(&self) -> Vec<usize> {
        slab_state(self)
    }

    fn take_source_pages(&mut self, addr: usize, pages: usize) -> Option<AllocResult> {
        Some(self.source_mut().alloc_at(addr, pages).map(drop))
    }

    fn give_source_pages(&mut self, addr: usize, pages: usize) -> AllocResult {
        let source = self.source_mut();
        let ptr = source.base().with_addr(addr.try_into().unwrap());
        // SAFETY: exactly the pages `alloc_at` handed out, no longer used.
        unsafe { source.dealloc_pages(ptr, pages) }
    }
}

/// The slab on one of the crate's own page allocators, as a kernel would
/// run it (the page allocator keeps its metadata in the first pages).
macro_rules! slab_on_pages {
    ($pages:ty, $name:literal) => {
        impl Subject for SlabAllocator<$pages> {
            const NAME: &'static str = $name;

            /// One region of the total size: the page allocator cannot tell
            /// the slab where its regions are, so only a single region makes
            /// `OutOfRange` exact (see `PageSource::contains`).
            fn build(pool_sizes: &[usize]) -> Setup<Self> {
                let arenas = arenas(&[pool_sizes.iter().sum()]);
                let mut pages = <$pages>::new();
                for arena in &arenas {
                    let start = arena.at(0).as_ptr().expose_provenance();
                    // SAFETY: the arena is ours and outlives the allocator.
                    unsafe { BaseAllocator::add_memory(&mut pages, start, arena.len()).unwrap() };
                }
                Setup::over_arenas(SlabAllocator::new(pages), arenas)
            }

            fn settle(&mut self) -> usize {
                self.shrink();
                let pages = self.source();
                assert_eq!(
                    pages.used_pages(),
                    0,
                    "slab: all pages back in the page allocator"
                );
                PageAllocator::available_pages(pages)
            }

            fn same_block(addr: usize, layout: Layout, _charged: usize, other: Layout) -> bool {
                slab_same_block(addr, layout, other)
            }

            fn state(&self) -> Vec<usize> {
                slab_state(self)
            }

            fn take_source_pages(&mut self, addr: usize, pages: usize) -> Option<AllocResult> {
                Some(PageAllocator::alloc_pages_at(self.source_mut(), addr, pages, PAGE).map(drop))
            }

            fn give_source_pages(&mut self, addr: usize, pages: usize) -> AllocResult {
                PageAllocator::dealloc_pages(self.source_mut(), addr, pages)
            }
        }
    };
}

slab_on_pages!(BuddyPageAllocator, "slab on buddy pages");
slab_on_pages!(BitmapPageAllocator, "slab on bitmap pages");
