//! A one-hart kernel's memory setup built from the RVOS crates alone: a
//! buddy page allocator over a static arena, page tables from it, a debug
//! layer over a TLSF heap, and the per-CPU cached heap as the
//! `#[global_allocator]` on bare metal.
//!
//! The crate is a fixture: it compiles for `riscv64gc-unknown-none-elf`
//! (with the global allocator installed) and its tests run on the host.

#![no_std]

#[cfg(test)]
extern crate std;

mod cpu;
mod setup;

pub use cpu::{OneHart, irq_enabled};
pub use setup::{Arena, HeapDepot, Kernel, PageFrames, boot};

/// The heap every `alloc` call of the bare-metal build goes through.
#[cfg(target_os = "none")]
#[global_allocator]
pub static HEAP: kheap::CachedHeap<OneHart, HeapDepot, kheap::NoHooks, 1> =
    kheap::CachedHeap::new("heap");

#[cfg(test)]
mod tests;
