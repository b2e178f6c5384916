//! `kalloc`: the memory allocators of RVOS, usable on their own by any
//! `no_std` kernel.
//!
//! The crate separates interfaces ([`BaseAllocator`], [`PageAllocator`],
//! [`ByteAllocator`], [`IdAllocator`]) from algorithms:
//!
//! - page-granular: [`page::BuddyPageAllocator`] (the default),
//!   [`page::BitmapPageAllocator`], [`page::LinearPageAllocator`] (baseline);
//! - byte-granular: [`byte::Tlsf`], [`byte::BuddyByteAllocator`],
//!   [`byte::SlabAllocator`];
//! - IDs: [`id::BitmapIdAllocator`].
//!
//! It knows nothing about any architecture and is tested on the host.

#![no_std]

#[cfg(test)]
extern crate std;

mod error;
mod traits;

pub mod byte;
pub mod id;
pub mod page;
pub mod stats;

pub use error::{AllocError, AllocResult};
pub use traits::{BaseAllocator, ByteAllocator, IdAllocator, PageAllocator};
