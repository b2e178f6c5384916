//! The generic suite every byte allocator passes: model-based property
//! tests over random alloc/dealloc/realloc/bad-free sequences (sizes 1 B to
//! 1 MiB, alignments 1 to 4096), then full coalescing after freeing all;
//! and a long seeded run with every kind of bad free at a quarter of the
//! steps, including frees of memory reused since by another block, a slab
//! or a second user of the page source.

mod byte_common;

use byte_common::host::HostPages;
use byte_common::model::{BadFree, Model, Op, long_run, ops_from_bytes};
use byte_common::subjects::Subject;
use kalloc::byte::{BuddyByteAllocator, SlabAllocator, Tlsf};
use kalloc::page::BuddyPageAllocator;
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Under Miri: small pools, small blocks, few cases.
#[cfg(miri)]
mod scale {
    pub const POOLS: &[usize] = &[96 << 10, 40 << 10];
    pub const MAX_SIZE_LOG2: u32 = 14;
    pub const CASES: u32 = 3;
    pub const OPS: usize = 40;
    pub const SEEDED_OPS: usize = 150;
    pub const BAD_FREE_OPS: usize = 50;
    pub const DIRECTED: usize = 12;
}
#[cfg(not(miri))]
mod scale {
    pub const POOLS: &[usize] = &[6 << 20, 3 << 20 | 4000];
    pub const MAX_SIZE_LOG2: u32 = 20;
    pub const CASES: u32 = 96;
    pub const OPS: usize = 250;
    pub const SEEDED_OPS: usize = 3_000;
    pub const BAD_FREE_OPS: usize = 4_000;
    pub const DIRECTED: usize = 64;
}

fn run<A: Subject>(bytes: &[u8], free_order: &[usize]) {
    let mut model = Model::<A>::new(scale::POOLS);
    for op in ops_from_bytes(bytes, scale::MAX_SIZE_LOG2) {
        model.apply(op);
    }
    model.finish(free_order);
}

/// A long seeded run that keeps many blocks live (more allocs than frees
/// until the pools fill, then churn).
fn seeded<A: Subject>(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut model = Model::<A>::new(scale::POOLS);
    for step in 0..scale::SEEDED_OPS {
        let bytes: [u8; 4] = rng.r#gen();
        let op = ops_from_bytes(&bytes, scale::MAX_SIZE_LOG2)[0];
        // Bias towards small blocks half the time, to fill pools with many.
        let op = match op {
            Op::Alloc { size, align } if step % 2 == 0 => Op::Alloc {
                size: size % 512 + 1,
                align,
            },
            op => op,
        };
        model.apply(op);
    }
    assert!(model.live_count() > 0);
    model.finish(&[7, 3, 1, 0]);
}

/// The long run with bad frees. Natively every kind must have been issued
/// (so none is silently skipped), except `OtherAlign`, which most
/// algorithms cannot tell from a correct free and which is then not issued.
fn bad_frees<A: Subject>(seed: u64) {
    let issued = long_run::<A>(
        scale::POOLS,
        seed,
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

macro_rules! suite {
    ($name:ident, $ty:ty) => {
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig {
                    cases: scale::CASES,
                    failure_persistence: None,
                    ..ProptestConfig::default()
                })]

                #[test]
                fn model_holds_and_everything_coalesces(
                    bytes in proptest::collection::vec(any::<u8>(), 0..scale::OPS * 4),
                    free_order in proptest::collection::vec(any::<usize>(), 1..8),
                ) {
                    run::<$ty>(&bytes, &free_order);
                }
            }

            #[test]
            fn seeded_long_run() {
                seeded::<$ty>(0x5eed_0001);
            }

            #[test]
            fn seeded_bad_frees_are_refused_and_change_nothing() {
                bad_frees::<$ty>(0x5eed_0bad);
            }

            #[test]
            fn frees_in_every_direction_coalesce() {
                for order in [&[0usize][..], &[usize::MAX], &[1, 2, 3]] {
                    let mut model = Model::<$ty>::new(scale::POOLS);
                    for i in 0..scale::DIRECTED {
                        model.apply(Op::Alloc {
                            size: 24 + i * 40,
                            align: 1 << (i % 8),
                        });
                    }
                    model.finish(order);
                }
            }
        }
    };
}

suite!(tlsf, Tlsf);
suite!(buddy, BuddyByteAllocator);
suite!(slab, SlabAllocator<HostPages>);
suite!(slab_on_buddy_pages, SlabAllocator<BuddyPageAllocator>);
// The same slab code as on buddy pages: under Miri, where every run costs,
// the bitmap page source is left to `stale_frees` and the page tests.
#[cfg(not(miri))]
suite!(
    slab_on_bitmap_pages,
    SlabAllocator<kalloc::page::BitmapPageAllocator>
);
