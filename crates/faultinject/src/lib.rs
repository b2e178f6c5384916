//! `faultinject`: make allocations fail on purpose, to prove that every
//! path that allocates handles failure, in the manner of Linux's
//! `failslab` and `fail_page_alloc`.
//!
//! A [`FaultPolicy`] decides (probability, interval, times, space, minimum
//! order, name filter, and `fail-nth` to fail exactly the N-th call);
//! [`FailingPages`] and [`FailingBytes`] wrap any `kalloc` allocator and
//! honour it. [`BadPageFilter`] is the memory-failure side: pages marked
//! bad are taken out of service and never handed out again.

#![no_std]

#[cfg(test)]
extern crate std;

mod hwpoison;
mod policy;
mod wrap;

pub use hwpoison::{BadPage, BadPageFilter, BadPageList};
pub use policy::{BadFaultSpec, FaultConfig, FaultPolicy, Request};
pub use wrap::{FailingBytes, FailingPages};
