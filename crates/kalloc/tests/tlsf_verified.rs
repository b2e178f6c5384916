//! The TLSF under the shared model with every free judged twice (see
//! `byte_common/verified.rs`): the header check's verdict must be the
//! walk's, and the heap consistent, after every operation. The runs are
//! the suite's long run with a bad free at a quarter of the steps, so
//! every kind of bad free the suite issues is judged both ways; the
//! property test adds short random sequences.

mod byte_common;

use byte_common::model::{BadFree, Model, long_run, ops_from_bytes};
use byte_common::verified::Verified;
use proptest::prelude::*;

/// Small pools under Miri, where the walks after every step cost most.
const POOLS: &[usize] = if cfg!(miri) {
    &[48 << 10, 24 << 10]
} else {
    &[1 << 20, 512 << 10 | 4000]
};
const STEPS: usize = if cfg!(miri) { 120 } else { 3000 };
const MAX_SIZE_LOG2: u32 = if cfg!(miri) { 13 } else { 18 };

#[test]
fn every_verdict_of_the_header_checks_is_the_walks() {
    let seeds: &[u64] = if cfg!(miri) {
        &[0x5eed_0bad]
    } else {
        &[0x5eed_0bad, 0x7e57_f00d, 0xf1ee_0001, 0xf1ee_0002]
    };
    for &seed in seeds {
        let issued = long_run::<Verified>(POOLS, seed, STEPS, MAX_SIZE_LOG2);
        if !cfg!(miri) {
            for (kind, count) in BadFree::ALL.iter().zip(issued) {
                assert!(
                    count > 0 || *kind == BadFree::OtherAlign,
                    "no {kind:?} issued: {issued:?}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 64 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn short_random_sequences_agree_too(
        bytes in proptest::collection::vec(any::<u8>(), 0..(if cfg!(miri) { 30 } else { 300 }) * 4),
    ) {
        let mut model = Model::<Verified>::new(POOLS);
        for op in ops_from_bytes(&bytes, MAX_SIZE_LOG2) {
            model.apply(op);
        }
        model.finish(&[3, 1, 4]);
    }
}
