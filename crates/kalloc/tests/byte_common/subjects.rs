//! The allocators under test, each built over host memory the same way,
//! with the one algorithm-specific fact the suite checks at the end: the
//! state after everything is freed equals the state right after setup.

use kalloc::byte::{BuddyByteAllocator, SlabAllocator, Tlsf};
use kalloc::page::BuddyPageAllocator;
use kalloc::{BaseAllocator, ByteAllocator, PageAllocator};

use super::host::{Arena, HostPages, PAGE};

/// An allocator together with the host memory it manages.
pub struct Setup<A> {
    pub alloc: A,
    /// The byte ranges blocks may lie in.
    pub ranges: Vec<(usize, usize)>,
    _arenas: Vec<Arena>,
}

pub trait Subject: ByteAllocator + Sized {
    const NAME: &'static str;

    /// Builds the allocator over fresh pools of the given sizes.
    fn build(pool_sizes: &[usize]) -> Setup<Self>;

    /// Brings the allocator to rest (the slab gives empty slabs back) and
    /// returns its coalescing fingerprint: TLSF's and buddy's free-block
    /// count, the slab's page source free pages. After freeing everything
    /// it must equal the value right after `build`.
    fn settle(&mut self) -> usize;
}

fn arenas(pool_sizes: &[usize]) -> (Vec<Arena>, Vec<(usize, usize)>) {
    let arenas: Vec<Arena> = pool_sizes.iter().map(|&size| Arena::new(size)).collect();
    let ranges = arenas.iter().map(Arena::range).collect();
    (arenas, ranges)
}

impl Subject for Tlsf {
    const NAME: &'static str = "tlsf";

    fn build(pool_sizes: &[usize]) -> Setup<Self> {
        let (arenas, ranges) = arenas(pool_sizes);
        let mut alloc = Tlsf::new();
        for arena in &arenas {
            // SAFETY: the arena is ours and outlives the allocator (`Setup`).
            unsafe { alloc.add_pool(arena.at(0), arena.len()).unwrap() };
        }
        Setup {
            alloc,
            ranges,
            _arenas: arenas,
        }
    }

    fn settle(&mut self) -> usize {
        assert_eq!(
            self.free_block_count(),
            self.pool_count(),
            "TLSF: one free block per pool"
        );
        self.free_block_count()
    }
}

impl Subject for BuddyByteAllocator {
    const NAME: &'static str = "buddy";

    fn build(pool_sizes: &[usize]) -> Setup<Self> {
        let (arenas, ranges) = arenas(pool_sizes);
        let mut alloc = BuddyByteAllocator::new();
        for arena in &arenas {
            // SAFETY: the arena is ours and outlives the allocator (`Setup`).
            unsafe { alloc.add_pool(arena.at(0), arena.len()).unwrap() };
        }
        Setup {
            alloc,
            ranges,
            _arenas: arenas,
        }
    }

    fn settle(&mut self) -> usize {
        self.free_block_count()
    }
}

impl Subject for SlabAllocator<HostPages> {
    const NAME: &'static str = "slab";

    fn build(pool_sizes: &[usize]) -> Setup<Self> {
        let bytes = pool_sizes.iter().sum::<usize>().next_multiple_of(PAGE);
        let pages = HostPages::new(bytes);
        let ranges = vec![pages.range()];
        Setup {
            alloc: SlabAllocator::new(pages),
            ranges,
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
}

/// The slab on the crate's own buddy page allocator, as a kernel would
/// run it (the page allocator keeps its metadata in the first pages).
impl Subject for SlabAllocator<BuddyPageAllocator> {
    const NAME: &'static str = "slab on buddy pages";

    /// One region of the total size: the page allocator cannot tell the
    /// slab where its regions are, so only a single region makes
    /// `OutOfRange` exact (see `PageSource::contains`).
    fn build(pool_sizes: &[usize]) -> Setup<Self> {
        let (arenas, ranges) = arenas(&[pool_sizes.iter().sum()]);
        let mut pages = BuddyPageAllocator::new();
        for arena in &arenas {
            let start = arena.at(0).as_ptr().expose_provenance();
            // SAFETY: the arena is ours and outlives the allocator (`Setup`).
            unsafe { pages.add_memory(start, arena.len()).unwrap() };
        }
        Setup {
            alloc: SlabAllocator::new(pages),
            ranges,
            _arenas: arenas,
        }
    }

    fn settle(&mut self) -> usize {
        self.shrink();
        let pages = self.source();
        assert_eq!(
            pages.used_pages(),
            0,
            "slab: all pages back in the buddy allocator"
        );
        PageAllocator::available_pages(pages)
    }
}
