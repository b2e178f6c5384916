//! Scaffolding of the axallocator test: host regions aligned to their
//! size (so two regions cut into the same blocks), a seeded generator,
//! block patterns, and errors of both crates named alike.

#![allow(dead_code)]

use std::alloc::Layout;
use std::ptr::NonNull;

use axallocator as ax;
use kalloc::AllocError;

pub const PAGE: usize = 4096;

/// Region size, steps per sequence, blocks live at most, largest page
/// count of a request, and seeds: small under Miri.
#[cfg(miri)]
mod scale {
    pub const REGION: usize = 256 << 10;
    pub const STEPS: usize = 100;
    pub const LIVE: usize = 6;
    pub const PAGES: usize = 4;
    pub const SEEDS: usize = 1;
}
#[cfg(not(miri))]
mod scale {
    pub const REGION: usize = 1 << 20;
    pub const STEPS: usize = 3000;
    pub const LIVE: usize = 32;
    pub const PAGES: usize = 8;
    pub const SEEDS: usize = 3;
}
pub use scale::*;

/// Zeroed host memory aligned to its size, freed on drop (after the
/// allocators over it, which are declared later and so dropped first).
pub struct Region {
    ptr: *mut u8,
    layout: Layout,
}

impl Region {
    pub fn new(size: usize) -> Self {
        let layout = Layout::from_size_align(size, size.next_power_of_two()).unwrap();
        // SAFETY: the size is not zero.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Region { ptr, layout }
    }

    /// The start, its provenance exposed for the allocators.
    pub fn start(&self) -> usize {
        self.ptr.expose_provenance()
    }

    /// Whether `[addr, addr + size)` lies inside the region.
    pub fn contains(&self, addr: usize, size: usize) -> bool {
        addr >= self.start() && addr + size <= self.start() + self.layout.size()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// xorshift64: the same sequence from the same seed, in the lockstep runs
/// and across allocators.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// Fills a block with a pattern of its tag.
pub fn fill(block: NonNull<u8>, size: usize, tag: u8) {
    // SAFETY: the block is live and `size` bytes long.
    unsafe { block.as_ptr().write_bytes(tag, size) };
}

/// Checks the pattern of [`fill`].
pub fn verify(block: NonNull<u8>, size: usize, tag: u8) {
    // SAFETY: as in `fill`.
    let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), size) };
    assert!(
        bytes.iter().all(|&b| b == tag),
        "block {block:p} overwritten"
    );
}

/// The axallocator error a kalloc error maps to, by name.
pub fn kalloc_err(error: AllocError) -> String {
    ax_err(ax::AllocError::from(error))
}

/// An axallocator error by name (it has no `PartialEq`).
pub fn ax_err(error: ax::AllocError) -> String {
    format!("{error:?}")
}
