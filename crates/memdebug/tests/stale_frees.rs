//! The debug layers over real kalloc allocators, driven by kalloc's own
//! model checkers: long seeded runs with every kind of bad free, and the
//! sequences a layer that passes frees on can get wrong (free a block, let
//! its memory serve something else, free it again). With checks on the
//! layer must refuse every bad free from its own records; with checks off
//! it forwards, and the allocator beneath must refuse them. Either way the
//! refusal changes nothing and every live block stays intact.

#[path = "../../kalloc/tests/byte_common/mod.rs"]
mod byte_common;
#[path = "../../kalloc/tests/page_common/mod.rs"]
mod page_common;
mod support;

use std::alloc::Layout;
use std::ops::Range;
use std::ptr::NonNull;

use byte_common::host::{Arena, PAGE};
use byte_common::model::{BadFree, long_run};
use byte_common::subjects::{Setup, Subject};
use kalloc::byte::{SlabAllocator, Tlsf};
use kalloc::page::BuddyPageAllocator;
use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{AllocError, AllocResult, BaseAllocator, ByteAllocator, PageAllocator};
use memdebug::{
    Action, Counters, DebugByteAllocator, DebugConfig, DebugFlags, DebugPageAllocator, Report,
    ReportKind, ReportSink,
};
use page_common::model::{Harness, seeded_ops};
use support::{tables, tick};

/// Under Miri: small pools, short runs.
#[cfg(miri)]
mod scale {
    pub const POOLS: &[usize] = &[96 << 10, 40 << 10];
    pub const MAX_SIZE_LOG2: u32 = 14;
    pub const BAD_FREE_OPS: usize = 60;
    pub const PAGE_OPS: usize = 60;
    pub const ARENA_PAGES: usize = 128;
    pub const RECORDS: usize = 1024;
}
#[cfg(not(miri))]
mod scale {
    pub const POOLS: &[usize] = &[6 << 20, 3 << 20 | 4000];
    pub const MAX_SIZE_LOG2: u32 = 20;
    pub const BAD_FREE_OPS: usize = 3_000;
    pub const PAGE_OPS: usize = 3_000;
    pub const ARENA_PAGES: usize = 1024;
    pub const RECORDS: usize = 8192;
}

/// Freed blocks each layer remembers (its table holds `scale::RECORDS`:
/// more than the runs ever hold live, plus these).
const HISTORY: usize = 64;

/// Every check but poisoning: poisoning holds freed blocks in quarantine
/// and gives them back later, which the models' exact accounting of each
/// free cannot follow (the explicit tests below use it).
const CHECKS: &str = "allocpoison,redzone,track";

/// Counts what a layer reports. `CHECKED` only tells apart the types of a
/// layer with checks on and one with checks off, which the models need as
/// two subjects.
#[derive(Default)]
pub struct Tally<const CHECKED: bool> {
    refused: usize,
    last: Option<ReportKind>,
}

impl<const CHECKED: bool> ReportSink for Tally<CHECKED> {
    fn report(&mut self, report: &Report) {
        if report.action == Action::Refused {
            self.refused += 1;
        }
        self.last = Some(report.kind);
    }
}

fn flags(checked: bool) -> DebugFlags {
    if checked {
        DebugFlags::parse(CHECKS).unwrap()
    } else {
        DebugFlags::empty()
    }
}

/// The counters a refused free must leave as they were (it counts itself).
fn steady(mut counters: Counters) -> Vec<usize> {
    counters.refused_frees = 0;
    vec![
        counters.allocs as usize,
        counters.frees as usize,
        counters.failures as usize,
        counters.live_blocks,
        counters.live_size,
        counters.peak_size,
    ]
}

type ByteLayer<A, const C: bool> = DebugByteAllocator<'static, A, Tally<C>>;

/// The byte layer as a model subject, with checks on or off (`$checked`),
/// over inner allocator `$inner` (built empty by `$new`, given the arenas
/// `$arenas` makes of the pool sizes). `$whole`: whether the inner
/// allocator ends with every byte available once all is freed (the slab
/// keeps empty slabs cached, and only its own `shrink` gives them back).
macro_rules! byte_layer {
    ($inner:ty, $new:expr, $arenas:expr, $whole:expr, $checked:literal, $name:literal) => {
        impl Subject for ByteLayer<$inner, $checked> {
            const NAME: &'static str = $name;
            const SETTLES_WHOLE: bool = $whole;

            fn build(pool_sizes: &[usize]) -> Setup<Self> {
                let arenas: Vec<Arena> = $arenas(pool_sizes);
                let (table, history) = tables(scale::RECORDS, HISTORY);
                let config = DebugConfig::bytes(flags($checked));
                let mut layer = DebugByteAllocator::new(
                    "model",
                    $new,
                    config,
                    Tally::default(),
                    table,
                    history,
                    tick,
                );
                for arena in &arenas {
                    let start = arena.at(0).as_ptr().expose_provenance();
                    // SAFETY: the arena is ours and outlives the layer (`Setup`).
                    unsafe { layer.add_memory(start, arena.len()).unwrap() };
                }
                Setup::over_arenas(layer, arenas)
            }

            /// The inner allocator cannot be reached to give cached memory
            /// back: the fingerprint is what the layer itself holds.
            fn settle(&mut self) -> usize {
                self.flush_quarantine();
                assert_eq!(self.counters().live_blocks, 0, "{}", Self::NAME);
                self.counters().live_size + self.inner().used_bytes()
            }

            fn same_block(addr: usize, layout: Layout, charged: usize, other: Layout) -> bool {
                if $checked {
                    layout == other
                } else {
                    <$inner as Subject>::same_block(addr, layout, charged, other)
                }
            }

            fn state(&self) -> Vec<usize> {
                let mut state = steady(self.counters());
                state.extend(self.inner().state());
                state
            }
        }
    };
}

fn one_arena(pool_sizes: &[usize]) -> Vec<Arena> {
    vec![Arena::new(pool_sizes.iter().sum())]
}

fn arena_per_pool(pool_sizes: &[usize]) -> Vec<Arena> {
    pool_sizes.iter().map(|&size| Arena::new(size)).collect()
}

type Slab = SlabAllocator<BuddyPageAllocator>;

byte_layer!(
    Slab,
    SlabAllocator::new(BuddyPageAllocator::new()),
    one_arena,
    false,
    true,
    "memdebug bytes (checked) on slab on buddy pages"
);
byte_layer!(
    Slab,
    SlabAllocator::new(BuddyPageAllocator::new()),
    one_arena,
    false,
    false,
    "memdebug bytes (pass-through) on slab on buddy pages"
);
byte_layer!(
    Tlsf,
    Tlsf::new(),
    arena_per_pool,
    true,
    true,
    "memdebug bytes (checked) on tlsf"
);
byte_layer!(
    Tlsf,
    Tlsf::new(),
    arena_per_pool,
    true,
    false,
    "memdebug bytes (pass-through) on tlsf"
);

/// The page layer over the buddy page allocator, as a page-model subject.
pub struct PageLayer<const CHECKED: bool>(
    DebugPageAllocator<'static, BuddyPageAllocator, Tally<CHECKED>>,
);

impl<const CHECKED: bool> BaseAllocator for PageLayer<CHECKED> {
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.init(start, size) }
    }

    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.add_memory(start, size) }
    }
}

impl<const CHECKED: bool> PageAllocator for PageLayer<CHECKED> {
    const PAGE_SIZE: usize = PAGE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        self.0.alloc_pages(count, align)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        self.0.alloc_pages_at(addr, count, align)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        self.0.dealloc_pages(addr, count)
    }

    fn total_pages(&self) -> usize {
        self.0.total_pages()
    }

    fn used_pages(&self) -> usize {
        self.0.used_pages()
    }
}

/// Without poisoning nothing is held back, so the inner allocator's
/// statistics are the layer's.
impl<const CHECKED: bool> PageStatsSource for PageLayer<CHECKED> {
    fn page_stats(&self) -> PageStats {
        self.0.inner().page_stats()
    }
}

impl<const CHECKED: bool> page_common::Subject for PageLayer<CHECKED> {
    const NAME: &'static str = if CHECKED {
        "memdebug pages (checked) on buddy"
    } else {
        "memdebug pages (pass-through) on buddy"
    };
    const MAX_BLOCK: Option<usize> = Some(1 << 18);
    const EXACT_REFUSALS: bool = !CHECKED;

    fn fresh() -> Self {
        let (table, history) = tables(scale::RECORDS, HISTORY);
        let config = DebugConfig::pages(flags(CHECKED));
        PageLayer(DebugPageAllocator::new(
            "model",
            BuddyPageAllocator::new(),
            config,
            Tally::default(),
            table,
            history,
            tick,
        ))
    }

    fn managed(&self) -> Vec<Range<usize>> {
        self.0.inner().regions().collect()
    }
}

/// The long byte run; natively every kind of bad free must have been
/// issued but `OtherAlign` (which only the checked layer can tell).
fn byte_run<A: Subject>() {
    let issued = long_run::<A>(
        scale::POOLS,
        0x5eed_0bad,
        scale::BAD_FREE_OPS,
        scale::MAX_SIZE_LOG2,
    );
    if cfg!(miri) {
        return;
    }
    for (kind, count) in BadFree::ALL.iter().zip(issued) {
        assert!(
            count > 0 || *kind == BadFree::OtherAlign,
            "{}: no {kind:?} issued in {issued:?}",
            A::NAME
        );
    }
}

#[test]
fn checked_byte_layer_on_slab_refuses_seeded_bad_frees() {
    byte_run::<ByteLayer<Slab, true>>();
}

#[test]
fn pass_through_byte_layer_on_slab_refuses_seeded_bad_frees() {
    byte_run::<ByteLayer<Slab, false>>();
}

#[test]
fn checked_byte_layer_on_tlsf_refuses_seeded_bad_frees() {
    byte_run::<ByteLayer<Tlsf, true>>();
}

#[test]
fn pass_through_byte_layer_on_tlsf_refuses_seeded_bad_frees() {
    byte_run::<ByteLayer<Tlsf, false>>();
}

fn page_run<const CHECKED: bool>() {
    let mut h = Harness::<PageLayer<CHECKED>>::new(scale::ARENA_PAGES, scale::ARENA_PAGES / 3);
    for op in seeded_ops(0x5eed_0bad, scale::PAGE_OPS) {
        h.apply(&op);
    }
    if !cfg!(miri) {
        assert!(h.issued.iter().all(|&n| n > 0), "issued {:?}", h.issued);
    }
    h.free_all_and_check(7);
}

#[test]
fn checked_page_layer_on_buddy_refuses_seeded_bad_frees() {
    page_run::<true>();
}

#[test]
fn pass_through_page_layer_on_buddy_refuses_seeded_bad_frees() {
    page_run::<false>();
}

/// One pool, small under Miri; room for the largest slab either way.
const SLAB_POOL: &[usize] = if cfg!(miri) { &[192 << 10] } else { &[1 << 20] };

#[test]
fn checked_byte_layer_on_slab_refuses_a_large_block_whose_pages_became_a_slab() {
    byte_common::model::large_block_pages_become_a_slab::<ByteLayer<Slab, true>>(SLAB_POOL);
}

#[test]
fn pass_through_byte_layer_on_slab_refuses_a_large_block_whose_pages_became_a_slab() {
    byte_common::model::large_block_pages_become_a_slab::<ByteLayer<Slab, false>>(SLAB_POOL);
}

fn lay(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Everything a refused free must leave as it was.
fn byte_snapshot(layer: &ByteLayer<Slab, true>) -> (Vec<usize>, usize, usize, usize) {
    (
        steady(layer.counters()),
        layer.used_bytes(),
        layer.available_bytes(),
        layer.inner().large_pages(),
    )
}

/// With every check on, poisoning included: the freed block waits in
/// quarantine until flushed, then its pages become a slab beneath, and a
/// second free is refused and reported by the layer itself.
#[test]
fn poisoning_byte_layer_on_slab_refuses_a_block_freed_before_a_flush() {
    for (big, small) in byte_common::model::SLAB_PAIRS {
        let arena = Arena::new(1 << 20);
        let (table, history) = tables(1024, 16);
        let config = DebugConfig::bytes(DebugFlags::all());
        let mut layer: ByteLayer<Slab, true> = DebugByteAllocator::new(
            "all",
            SlabAllocator::new(BuddyPageAllocator::new()),
            config,
            Tally::default(),
            table,
            history,
            tick,
        );
        let start = arena.at(0).as_ptr().expose_provenance();
        // SAFETY: the arena is ours and outlives the layer.
        unsafe { layer.init(start, arena.len()).unwrap() };
        let old = layer.alloc(lay(big)).unwrap();
        // SAFETY: a live block of this layer.
        unsafe { layer.dealloc(old, lay(big)).unwrap() };
        layer.flush_quarantine();
        let (lo, hi) = (old.addr().get(), old.addr().get() + big);
        let mut smalls: Vec<NonNull<u8>> = Vec::new();
        while !smalls
            .last()
            .is_some_and(|p| (lo..hi).contains(&p.addr().get()))
        {
            assert!(smalls.len() < 160, "no {small}-byte block reused {lo:#x}");
            let ptr = layer.alloc(lay(small)).unwrap();
            // SAFETY: a fresh block of `small` bytes.
            unsafe { ptr.write_bytes(0xa5, small) };
            smalls.push(ptr);
        }
        let before = byte_snapshot(&layer);
        let refused = layer.sink().refused;
        // SAFETY: the layer accepts any pointer with checks on.
        let result = unsafe { layer.dealloc(old, lay(big)) };
        assert!(
            matches!(
                result,
                Err(AllocError::NotAllocated | AllocError::DoubleFree)
            ),
            "{big}/{small}: {result:?}"
        );
        // SAFETY: as above.
        let result = unsafe { layer.realloc(old, lay(big), big) };
        assert!(result.is_err(), "{big}/{small}: realloc gave {result:?}");
        assert_eq!(byte_snapshot(&layer), before, "{big}/{small}");
        assert_eq!(layer.sink().refused, refused + 2);
        let kind = layer.sink().last;
        assert!(
            matches!(
                kind,
                Some(
                    ReportKind::WrongLayout { .. }
                        | ReportKind::InteriorFree { .. }
                        | ReportKind::UnknownFree
                        | ReportKind::DoubleFree
                )
            ),
            "{big}/{small}: {kind:?}"
        );
        let again = layer.alloc(lay(big)).unwrap();
        for &ptr in &smalls {
            let at = ptr.addr().get();
            let apart = at + small <= again.addr().get() || again.addr().get() + big <= at;
            assert!(
                apart,
                "{big}/{small}: {again:?} overlaps a live {small}-byte block"
            );
            // SAFETY: a live block of `small` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), small) };
            assert!(
                bytes.iter().all(|&b| b == 0xa5),
                "{big}/{small}: a live block changed"
            );
        }
        assert_eq!(layer.validate(), 0);
    }
}

#[test]
fn checked_page_layer_on_buddy_refuses_pages_reused_as_another_size() {
    page_common::model::pages_reused_as_another_size::<PageLayer<true>>();
}

#[test]
fn pass_through_page_layer_on_buddy_refuses_pages_reused_as_another_size() {
    page_common::model::pages_reused_as_another_size::<PageLayer<false>>();
}

/// With poisoning: the freed pages wait in quarantine until flushed, then
/// serve a smaller block; the second free is refused and reported.
#[test]
fn poisoning_page_layer_on_buddy_refuses_pages_freed_before_a_flush() {
    let (start, size) = support::arena(64 * PAGE);
    let (table, history) = tables(256, 16);
    let config = DebugConfig::pages(DebugFlags::all());
    let mut pages = DebugPageAllocator::new(
        "all",
        BuddyPageAllocator::new(),
        config,
        Tally::<true>::default(),
        table,
        history,
        tick,
    );
    // SAFETY: a leaked host buffer owned by this layer.
    unsafe { pages.init(start, size).unwrap() };
    let four = pages.alloc_pages(4, PAGE).unwrap();
    pages.dealloc_pages(four, 4).unwrap();
    pages.flush_quarantine();
    let mut ones = Vec::new();
    while !ones
        .last()
        .is_some_and(|&p| (four..four + 4 * PAGE).contains(&p))
    {
        assert!(ones.len() < 64, "no page of the freed block reused");
        ones.push(pages.alloc_pages(1, PAGE).unwrap());
    }
    let before = (
        steady(pages.counters()),
        pages.used_pages(),
        pages.inner().page_stats(),
    );
    assert_eq!(pages.dealloc_pages(four, 4), Err(AllocError::NotAllocated));
    assert_eq!(
        before,
        (
            steady(pages.counters()),
            pages.used_pages(),
            pages.inner().page_stats()
        )
    );
    assert_eq!(pages.sink().refused, 1);
    let kind = pages.sink().last;
    assert!(
        matches!(
            kind,
            Some(
                ReportKind::WrongLayout { .. }
                    | ReportKind::InteriorFree { .. }
                    | ReportKind::UnknownFree
            )
        ),
        "{kind:?}"
    );
    assert_eq!(pages.validate(), 0);
}
