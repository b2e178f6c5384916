//! Model-based property tests: random sequences of allocations, fixed
//! allocations, frees, bad frees and region additions, checked against a
//! shadow model after every step, for every page allocator; and a long
//! seeded run per allocator with bad frees at a quarter of the steps.

mod page_common;

use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator, LinearPageAllocator};
use page_common::model::{Harness, Op, seeded_ops};
use page_common::{SmallBuddy, Subject};
use proptest::prelude::*;

#[cfg(not(miri))]
const CASES: u32 = 48;
#[cfg(miri)]
const CASES: u32 = 2;
#[cfg(not(miri))]
const MAX_OPS: usize = 120;
#[cfg(miri)]
const MAX_OPS: usize = 25;
#[cfg(not(miri))]
const ARENA_PAGES: usize = 1024;
#[cfg(miri)]
const ARENA_PAGES: usize = 128;
#[cfg(not(miri))]
const SEEDED_OPS: usize = 3_000;
#[cfg(miri)]
const SEEDED_OPS: usize = 60;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(CASES);
    // Miri's isolation forbids the file access regression files need.
    if cfg!(miri) {
        config.failure_persistence = None;
    }
    config
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..=9, 0u32..=15).prop_map(|(count, align_log2)| Op::Alloc { count, align_log2 }),
        1 => (17usize..=200, 12u32..=18).prop_map(|(count, align_log2)| Op::Alloc { count, align_log2 }),
        2 => (any::<usize>(), 0usize..80, 1usize..=12, 12u32..=16)
            .prop_map(|(region, page, count, align_log2)| Op::AllocAt { region, page, count, align_log2 }),
        6 => any::<usize>().prop_map(|which| Op::Free { which }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(which, kind)| Op::BadFree { which, kind }),
        1 => (1usize..=60, prop_oneof![Just(0usize), 1usize..4096])
            .prop_map(|(pages, lead)| Op::AddMemory { pages, lead }),
        1 => any::<usize>().prop_map(|region| Op::AddOverlap { region }),
    ]
}

fn run<A: Subject>(first_pages: usize, ops: &[Op], seed: u64) {
    let mut h = Harness::<A>::new(ARENA_PAGES, first_pages);
    for op in ops {
        h.apply(op);
    }
    h.free_all_and_check(seed);
}

/// Natively every kind of bad free must have been issued, so none is
/// silently skipped.
fn long_run<A: Subject>() {
    let mut h = Harness::<A>::new(ARENA_PAGES, ARENA_PAGES / 3);
    for op in seeded_ops(0x5eed_0bad, SEEDED_OPS) {
        h.apply(&op);
    }
    if !cfg!(miri) {
        assert!(
            h.issued.iter().all(|&n| n > 0),
            "{}: issued {:?}",
            A::NAME,
            h.issued
        );
    }
    h.free_all_and_check(7);
}

macro_rules! model_tests {
    ($name:ident, $long:ident, $ty:ty) => {
        #[test]
        fn $long() {
            long_run::<$ty>();
        }

        proptest! {
            #![proptest_config(config())]
            #[test]
            fn $name(
                first in 3usize..=(ARENA_PAGES / 2),
                ops in prop::collection::vec(op(), 1..MAX_OPS),
                seed in any::<u64>(),
            ) {
                run::<$ty>(first, &ops, seed);
            }
        }
    };
}

model_tests!(
    buddy_matches_model,
    buddy_long_run_refuses_bad_frees,
    BuddyPageAllocator
);
model_tests!(
    small_order_buddy_matches_model,
    small_order_buddy_long_run_refuses_bad_frees,
    SmallBuddy
);
model_tests!(
    bitmap_matches_model,
    bitmap_long_run_refuses_bad_frees,
    BitmapPageAllocator
);
model_tests!(
    linear_matches_model,
    linear_long_run_refuses_bad_frees,
    LinearPageAllocator
);
