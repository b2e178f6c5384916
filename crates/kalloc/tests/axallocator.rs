//! kalloc's allocators behind ArceOS's `axallocator` traits.
//!
//! The same seeded alloc/free sequences run in lockstep through kalloc's
//! own interface and through axallocator's, on two copies of one allocator
//! over two regions aligned alike: block offsets, errors (mapped) and
//! counters must agree at every step. Then the sequences run through the
//! axallocator traits alone, on kalloc's allocators and on axallocator's
//! own (TLSF, buddy, bitmap), each checked for what the interface
//! promises: aligned, disjoint blocks inside the region, contents kept,
//! the counters back at zero after the last free. The error mapping and
//! the panics of the result-less frees have tests of their own.

#![cfg(feature = "axallocator")]

mod ax_common;

use std::alloc::Layout;

use ax_common::{
    LIVE, PAGE, PAGES, REGION, Region, Rng, SEEDS, STEPS, ax_err, fill, kalloc_err, verify,
};
use axallocator as ax;
use kalloc::byte::{BuddyByteAllocator, SlabAllocator, Tlsf};
use kalloc::id::BitmapIdAllocator;
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator, LinearPageAllocator};
use kalloc::{AllocError, BaseAllocator, ByteAllocator, IdAllocator, PageAllocator};

/// A random layout: mostly small, sometimes a few pages, alignments up to
/// a page.
fn layout(rng: &mut Rng) -> Layout {
    let size = match rng.below(8) {
        0 => 1 + rng.below(PAGES / 2 * PAGE),
        _ => 1 + rng.below(512),
    };
    let align = match rng.below(16) {
        0 => PAGE,
        _ => 1 << rng.below(7),
    };
    Layout::from_size_align(size, align).unwrap()
}

/// Runs one sequence on `native` (kalloc's traits) and `via_ax`
/// (axallocator's), both fresh, each given its own region first.
fn lockstep_bytes<A>(mut native: A, mut via_ax: A, seed: u64)
where
    A: ByteAllocator + ax::ByteAllocator,
{
    let (rn, ra) = (Region::new(REGION), Region::new(REGION));
    // SAFETY: the region is ours and outlives the allocator.
    unsafe { BaseAllocator::init(&mut native, rn.start(), REGION) }.unwrap();
    ax::BaseAllocator::init(&mut via_ax, ra.start(), REGION);
    let mut rng = Rng(seed);
    let mut live = Vec::new();
    for step in 0..STEPS {
        if live.is_empty() || (live.len() < LIVE && rng.below(5) < 3) {
            let layout = layout(&mut rng);
            let n = ByteAllocator::alloc(&mut native, layout);
            let a = ax::ByteAllocator::alloc(&mut via_ax, layout).map_err(ax_err);
            let offsets = (
                n.map(|p| p.addr().get() - rn.start()).map_err(kalloc_err),
                a.clone().map(|p| p.addr().get() - ra.start()),
            );
            assert_eq!(offsets.0, offsets.1, "step {step}: alloc {layout:?}");
            if let (Ok(n), Ok(a)) = (n, a) {
                let tag = step as u8;
                fill(n, layout.size(), tag);
                fill(a, layout.size(), tag);
                live.push((n, a, layout, tag));
            }
        } else {
            let (n, a, layout, tag) = live.swap_remove(rng.below(live.len()));
            verify(n, layout.size(), tag);
            verify(a, layout.size(), tag);
            // SAFETY: `n` is a live block of `native` with this layout.
            unsafe { ByteAllocator::dealloc(&mut native, n, layout) }.unwrap();
            ax::ByteAllocator::dealloc(&mut via_ax, a, layout);
        }
        let counters = |t: usize, u: usize, v: usize| (t, u, v);
        assert_eq!(
            counters(
                ByteAllocator::total_bytes(&native),
                ByteAllocator::used_bytes(&native),
                ByteAllocator::available_bytes(&native)
            ),
            counters(
                ax::ByteAllocator::total_bytes(&via_ax),
                ax::ByteAllocator::used_bytes(&via_ax),
                ax::ByteAllocator::available_bytes(&via_ax)
            ),
            "step {step}: counters"
        );
    }
}

#[test]
fn byte_allocators_agree_across_interfaces() {
    for seed in 1..=SEEDS as u64 {
        lockstep_bytes(Tlsf::new(), Tlsf::new(), seed);
        lockstep_bytes(BuddyByteAllocator::new(), BuddyByteAllocator::new(), seed);
        let slab = || SlabAllocator::new(BuddyPageAllocator::new());
        lockstep_bytes(slab(), slab(), seed);
    }
}

/// Runs one sequence through the axallocator traits alone, checking what
/// they promise; returns which allocations succeeded.
fn through_ax_bytes(mut heap: impl ax::ByteAllocator, seed: u64) -> Vec<bool> {
    let region = Region::new(REGION);
    heap.init(region.start(), REGION);
    let mut rng = Rng(seed);
    let (mut live, mut outcomes) = (Vec::new(), Vec::new());
    for step in 0..STEPS {
        if live.is_empty() || (live.len() < LIVE && rng.below(5) < 3) {
            let layout = layout(&mut rng);
            let result = heap.alloc(layout);
            outcomes.push(result.is_ok());
            if let Ok(block) = result {
                let addr = block.addr().get();
                assert_eq!(addr % layout.align(), 0, "step {step}: misaligned");
                assert!(region.contains(addr, layout.size()), "step {step}: outside");
                fill(block, layout.size(), step as u8);
                live.push((block, layout, step as u8));
            }
        } else {
            let (block, layout, tag) = live.swap_remove(rng.below(live.len()));
            verify(block, layout.size(), tag);
            heap.dealloc(block, layout);
        }
    }
    for (block, layout, tag) in live {
        verify(block, layout.size(), tag);
        heap.dealloc(block, layout);
    }
    assert_eq!(heap.used_bytes(), 0);
    outcomes
}

#[test]
fn byte_allocators_serve_what_axallocator_s_own_serve() {
    for seed in 4..4 + SEEDS as u64 {
        let reference = through_ax_bytes(ax::TlsfByteAllocator::new(), seed);
        assert!(reference.iter().all(|&ok| ok), "the region is ample");
        assert_eq!(
            through_ax_bytes(ax::BuddyByteAllocator::new(), seed),
            reference
        );
        assert_eq!(through_ax_bytes(Tlsf::new(), seed), reference);
        assert_eq!(through_ax_bytes(BuddyByteAllocator::new(), seed), reference);
        let slab = SlabAllocator::new(BuddyPageAllocator::new());
        assert_eq!(through_ax_bytes(slab, seed), reference);
    }
}

/// A page request: counts 0 to `PAGES` (0 is invalid), alignments from
/// one page to `PAGES`, sometimes not a power of two.
fn page_request(rng: &mut Rng) -> (usize, usize) {
    let count = rng.below(PAGES + 1);
    let align = match rng.below(10) {
        0 => 3 * PAGE,
        _ => PAGE << rng.below(PAGES.ilog2() as usize + 1),
    };
    (count, align)
}

/// As [`lockstep_bytes`], for page allocators: `alloc_pages`, then
/// `alloc_pages_at` anywhere in or past the region, and frees.
fn lockstep_pages<A>(mut native: A, mut via_ax: A, seed: u64)
where
    A: PageAllocator + ax::PageAllocator,
{
    let (rn, ra) = (Region::new(REGION), Region::new(REGION));
    // SAFETY: the region is ours and outlives the allocator.
    unsafe { BaseAllocator::init(&mut native, rn.start(), REGION) }.unwrap();
    ax::BaseAllocator::init(&mut via_ax, ra.start(), REGION);
    let mut rng = Rng(seed);
    let mut live = Vec::new();
    for step in 0..STEPS {
        let choice = rng.below(6);
        if live.is_empty() || choice < 3 {
            let (count, align) = page_request(&mut rng);
            let n = PageAllocator::alloc_pages(&mut native, count, align);
            let a = ax::PageAllocator::alloc_pages(&mut via_ax, count, align).map_err(ax_err);
            let offsets = (
                n.map(|p| p - rn.start()).map_err(kalloc_err),
                a.clone().map(|p| p - ra.start()),
            );
            assert_eq!(
                offsets.0, offsets.1,
                "step {step}: {count} pages at {align:#x}"
            );
            if let (Ok(n), Ok(a)) = (n, a) {
                live.push((n, a, count));
            }
        } else if choice == 3 {
            // Up to a quarter past the region's end: `OutOfRange` there.
            let offset = rng.below(REGION / PAGE * 5 / 4) * PAGE;
            let count = 1 + rng.below(PAGES / 2);
            let n = PageAllocator::alloc_pages_at(&mut native, rn.start() + offset, count, PAGE);
            let a =
                ax::PageAllocator::alloc_pages_at(&mut via_ax, ra.start() + offset, count, PAGE)
                    .map_err(ax_err);
            let offsets = (
                n.map(|p| p - rn.start()).map_err(kalloc_err),
                a.clone().map(|p| p - ra.start()),
            );
            assert_eq!(
                offsets.0, offsets.1,
                "step {step}: {count} pages at +{offset:#x}"
            );
            if let (Ok(n), Ok(a)) = (n, a) {
                live.push((n, a, count));
            }
        } else {
            let (n, a, count) = live.swap_remove(rng.below(live.len()));
            PageAllocator::dealloc_pages(&mut native, n, count).unwrap();
            ax::PageAllocator::dealloc_pages(&mut via_ax, a, count);
        }
        assert_eq!(
            (
                PageAllocator::total_pages(&native),
                PageAllocator::used_pages(&native),
                PageAllocator::available_pages(&native)
            ),
            (
                ax::PageAllocator::total_pages(&via_ax),
                ax::PageAllocator::used_pages(&via_ax),
                ax::PageAllocator::available_pages(&via_ax)
            ),
            "step {step}: counters"
        );
    }
}

#[test]
fn page_allocators_agree_across_interfaces() {
    for seed in 7..7 + SEEDS as u64 {
        lockstep_pages(BuddyPageAllocator::new(), BuddyPageAllocator::new(), seed);
        lockstep_pages(BitmapPageAllocator::new(), BitmapPageAllocator::new(), seed);
        lockstep_pages(LinearPageAllocator::new(), LinearPageAllocator::new(), seed);
    }
}

/// Valid page requests through the axallocator traits alone; returns the
/// used-page count after every step. Single pages ask for page alignment
/// only: axallocator's bitmap ignores the alignment of single pages.
fn through_ax_pages(mut pages: impl ax::PageAllocator, seed: u64) -> Vec<usize> {
    let region = Region::new(REGION);
    pages.init(region.start(), REGION);
    let mut rng = Rng(seed);
    let (mut live, mut used) = (Vec::<(usize, usize)>::new(), Vec::new());
    for step in 0..STEPS {
        if live.is_empty() || (live.len() < LIVE / 2 && rng.below(2) == 0) {
            let count = 1 + rng.below(PAGES);
            let align = match count {
                1 => PAGE,
                _ => PAGE << rng.below(PAGES.ilog2() as usize),
            };
            let addr = pages.alloc_pages(count, align).unwrap();
            assert_eq!(addr % align, 0, "step {step}: misaligned");
            assert!(region.contains(addr, count * PAGE), "step {step}: outside");
            let overlaps =
                |&(a, c): &(usize, usize)| addr < a + c * PAGE && a < addr + count * PAGE;
            assert!(!live.iter().any(overlaps), "step {step}: overlap");
            live.push((addr, count));
        } else {
            let (addr, count) = live.swap_remove(rng.below(live.len()));
            pages.dealloc_pages(addr, count);
        }
        used.push(pages.used_pages());
    }
    used
}

#[test]
fn page_allocators_count_as_axallocator_s_bitmap_does() {
    for seed in 10..10 + SEEDS as u64 {
        let reference = through_ax_pages(ax::BitmapPageAllocator::<PAGE>::new(), seed);
        assert_eq!(through_ax_pages(BuddyPageAllocator::new(), seed), reference);
        assert_eq!(
            through_ax_pages(BitmapPageAllocator::new(), seed),
            reference
        );
        assert_eq!(
            through_ax_pages(LinearPageAllocator::new(), seed),
            reference
        );
    }
}

#[test]
fn id_allocators_agree_across_interfaces() {
    let (mut native, mut via_ax) = (BitmapIdAllocator::<4>::new(), BitmapIdAllocator::<4>::new());
    native.add_ids(10, 200).unwrap();
    ax::BaseAllocator::init(&mut via_ax, 10, 200);
    let mut rng = Rng(10);
    let mut live = Vec::new();
    for step in 0..STEPS {
        match rng.below(4) {
            0 | 1 => {
                let (count, align) = (rng.below(9), [1, 2, 4, 8, 3][rng.below(5)]);
                let n = IdAllocator::alloc_id(&mut native, count, align);
                let a = ax::IdAllocator::alloc_id(&mut via_ax, count, align);
                assert_eq!(n.map_err(kalloc_err), a.map_err(ax_err), "step {step}");
                live.extend(n.ok().map(|id| (id, count)));
            }
            2 => {
                let id = rng.below(300);
                let n = IdAllocator::alloc_fixed_id(&mut native, id);
                let a = ax::IdAllocator::alloc_fixed_id(&mut via_ax, id);
                assert_eq!(n.map_err(kalloc_err), a.map_err(ax_err), "step {step}");
                live.extend(n.ok().map(|()| (id, 1)));
            }
            _ if !live.is_empty() => {
                let (id, count) = live.swap_remove(rng.below(live.len()));
                IdAllocator::dealloc_id(&mut native, id, count).unwrap();
                ax::IdAllocator::dealloc_id(&mut via_ax, id, count);
            }
            _ => {}
        }
        let probe = rng.below(300);
        assert_eq!(
            (
                native.is_allocated(probe),
                native.size(),
                native.used(),
                native.available()
            ),
            (
                ax::IdAllocator::is_allocated(&via_ax, probe),
                ax::IdAllocator::size(&via_ax),
                ax::IdAllocator::used(&via_ax),
                ax::IdAllocator::available(&via_ax)
            ),
            "step {step}"
        );
    }
}

#[test]
fn errors_map_onto_axallocator_s_four() {
    let cases = [
        (AllocError::InvalidParam, "InvalidParam"),
        (AllocError::MemoryOverlap, "MemoryOverlap"),
        (AllocError::NoMemory, "NoMemory"),
        (AllocError::NotAllocated, "NotAllocated"),
        (AllocError::DoubleFree, "NotAllocated"),
        (AllocError::OutOfRange, "InvalidParam"),
    ];
    for (error, name) in cases {
        assert_eq!(kalloc_err(error), name);
    }
    let region = Region::new(4 * PAGE);
    let mut heap = Tlsf::new();
    ax::BaseAllocator::init(&mut heap, region.start(), 2 * PAGE);
    let overlap = ax::BaseAllocator::add_memory(&mut heap, region.start() + PAGE, PAGE);
    assert_eq!(overlap.map_err(ax_err), Err("MemoryOverlap".into()));
    let tiny = ax::BaseAllocator::add_memory(&mut heap, region.start() + 3 * PAGE, 8);
    assert_eq!(tiny.map_err(ax_err), Err("InvalidParam".into()));
    let huge = ax::ByteAllocator::alloc(&mut heap, Layout::from_size_align(1 << 20, 8).unwrap());
    assert_eq!(huge.map_err(ax_err), Err("NoMemory".into()));
    let mut ids = BitmapIdAllocator::<1>::new();
    ax::BaseAllocator::init(&mut ids, 0, 8);
    let outside = ax::IdAllocator::alloc_fixed_id(&mut ids, 20);
    assert_eq!(outside.map_err(ax_err), Err("InvalidParam".into()));
}

#[test]
#[should_panic(expected = "refused: block is already free")]
fn a_double_free_through_axallocator_panics() {
    let region = Region::new(4 * PAGE);
    let mut heap = BuddyByteAllocator::new();
    ax::BaseAllocator::init(&mut heap, region.start(), 4 * PAGE);
    let layout = Layout::new::<u64>();
    let block = ax::ByteAllocator::alloc(&mut heap, layout).unwrap();
    ax::ByteAllocator::dealloc(&mut heap, block, layout);
    ax::ByteAllocator::dealloc(&mut heap, block, layout);
}

#[test]
#[should_panic(expected = "free of 2 pages")]
fn a_wrong_page_free_through_axallocator_panics() {
    let region = Region::new(16 * PAGE);
    let mut pages = BuddyPageAllocator::new();
    ax::BaseAllocator::init(&mut pages, region.start(), 16 * PAGE);
    let block = ax::PageAllocator::alloc_pages(&mut pages, 1, PAGE).unwrap();
    ax::PageAllocator::dealloc_pages(&mut pages, block, 2);
}

#[test]
#[should_panic(expected = "refused")]
fn a_free_of_a_free_id_through_axallocator_panics() {
    let mut ids = BitmapIdAllocator::<1>::new();
    ax::BaseAllocator::init(&mut ids, 0, 8);
    ax::IdAllocator::dealloc_id(&mut ids, 3, 1);
}

#[test]
#[should_panic(expected = "init of")]
fn a_refused_init_panics() {
    let mut pages = BitmapPageAllocator::new();
    ax::BaseAllocator::init(&mut pages, PAGE, 0);
}
