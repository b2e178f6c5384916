//! Physical memory as the kernel sees it at boot. The allocators themselves
//! live in the `kalloc` crate; this module decides what they may own.

pub mod badmem;
pub mod debug;
pub mod fault;
pub mod faults;
pub mod global;
pub mod heap;
pub mod kernel_map;
pub mod layout;
pub mod pages;
pub mod paging;
pub mod size;
pub mod stacks;
pub mod stats;
pub mod stress;
pub mod targets;

pub use size::Size;
