//! Physical memory as the kernel sees it at boot. The allocators themselves
//! live in the `kalloc` crate; this module decides what they may own.

pub mod layout;
mod size;

pub use size::Size;
