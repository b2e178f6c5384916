//! Sv39 page tables, host-testable: entries and flags, address helpers,
//! and a [`PageTable`] with `map` / `unmap` / `protect` / `translate`,
//! a level-by-level [`walk`](PageTable::walk), a leaf iterator and
//! [`map_range`](PageTable::map_range) for 4 KiB, 2 MiB and 1 GiB pages.
//!
//! Frames for the tables and the physical-to-virtual translation come from
//! a [`FrameSource`] the caller supplies, so the crate knows nothing about
//! the kernel's allocator or address space. It never flushes TLBs: every
//! mutating call documents what the caller must `sfence.vma`. See
//! `docs/paging.md` for the format and the invariants.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

mod addr;
mod entry;
mod error;
mod frames;
mod iter;
mod range;
mod table;
mod walk;

pub use addr::{PageSize, PhysAddr, VirtAddr};
pub use entry::{PageTableEntry, PteFlags};
pub use error::PagingError;
pub use frames::FrameSource;
pub use iter::{Mapping, Mappings};
pub use range::RangeStats;
pub use table::PageTable;
pub use walk::{Translation, Unmapped, Walk, WalkEnd, WalkStep};

/// Bytes in a base page and in a page-table frame.
pub const PAGE_SIZE: usize = 4096;
/// Entries in one page table.
pub const ENTRIES: usize = 512;
/// Number of levels in the Sv39 walk (2 is the root, 0 the 4 KiB level).
pub const LEVELS: usize = 3;

const _: () = assert!(usize::BITS == 64, "sv39 assumes a 64-bit usize");
