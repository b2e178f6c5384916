//! `workload`: deterministic allocation workloads for any allocator of
//! `kalloc` (and, in the kernel, the global allocator).
//!
//! A [`Spec`] (seed, size shape, alignment shape, lifetime policy, live-set
//! bound) drives a [`Generator`] against a [`Target`]. Every block is
//! filled with a pattern derived from its owner and sequence number and
//! checked before it is freed; a [`Failure`] prints the seed that replays
//! it. Nothing here allocates: the live set lives in slots the caller gives.

#![no_std]

#[cfg(test)]
extern crate std;

mod generator;
mod pattern;
mod rng;
mod shape;
mod target;

pub use generator::{Block, Failure, FailureKind, Generator, Spec, Summary};
pub use rng::Rng;
pub use shape::{Aligns, Lifetimes, Sizes};
pub use target::{Bytes, Pages, Target};

/// Reads a seed from the `SEED` value if given (decimal or 0x-hex), else
/// `default`: how every randomised test picks and replays its seed.
pub fn seed_from(value: Option<&str>, default: u64) -> u64 {
    let Some(text) = value.map(str::trim) else {
        return default;
    };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or(default)
}
