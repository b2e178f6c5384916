//! Sv39 page tables, host-testable: entries and flags, address helpers,
//! and a [`PageTable`] with `map` / `unmap` / `protect` / `translate`,
//! a level-by-level [`walk`](PageTable::walk), a leaf iterator and
//! [`map_range`](PageTable::map_range) for 4 KiB, 2 MiB and 1 GiB pages.
//!
//! Frames for the tables and the physical-to-virtual translation come from
//! a [`FrameSource`] the caller supplies, so the crate knows nothing about
//! the kernel's allocator or address space. It never flushes TLBs: every
//! mutating call documents what the caller must `sfence.vma`. The design
//! note, with the format and the invariants, is [`design`].
//!
//! # Example
//!
//! A [`FrameSource`] over one of the page allocators of `kalloc` (RVOS's
//! allocator crate), managing host memory that pretends to sit at physical
//! address `0x8000_0000` (a kernel would hand the allocator its RAM and
//! translate through its linear map instead):
//!
//! ```
//! use kalloc::page::BuddyPageAllocator;
//! use kalloc::{BaseAllocator, PageAllocator};
//! use sv39::{FrameSource, PAGE_SIZE, PageSize, PageTable, PhysAddr, PteFlags, VirtAddr};
//!
//! /// Where the host buffer pretends to be in physical memory.
//! const RAM_BASE: usize = 0x8000_0000;
//!
//! #[repr(C, align(4096))]
//! struct Frame([u8; PAGE_SIZE]);
//!
//! struct HostRam {
//!     allocator: BuddyPageAllocator,
//!     /// The buffer's first byte; its address is "physical" `RAM_BASE`.
//!     base: *mut u8,
//!     /// Owns the buffer (moving the `Vec` does not move it); dropped last.
//!     _frames: Vec<Frame>,
//! }
//!
//! impl HostRam {
//!     fn new(count: usize) -> Self {
//!         let mut frames: Vec<Frame> = (0..count).map(|_| Frame([0; PAGE_SIZE])).collect();
//!         let base = frames.as_mut_ptr().cast::<u8>();
//!         let mut allocator = BuddyPageAllocator::new();
//!         // SAFETY: the buffer is used by nothing else and lives as long as
//!         // the allocator (both are fields of `HostRam`).
//!         unsafe { allocator.add_memory(base.expose_provenance(), count * PAGE_SIZE) }
//!             .expect("a usable region");
//!         Self { allocator, base, _frames: frames }
//!     }
//! }
//!
//! // SAFETY: frames come from the allocator, 4 KiB aligned and unused until
//! // freed, and `phys_to_virt` points into the buffer that holds them.
//! unsafe impl FrameSource for HostRam {
//!     fn alloc_frame(&mut self) -> Option<PhysAddr> {
//!         let addr = self.allocator.alloc_pages(1, PAGE_SIZE).ok()?;
//!         PhysAddr::new(RAM_BASE + (addr - self.base.addr())).ok()
//!     }
//!     unsafe fn dealloc_frame(&mut self, pa: PhysAddr) {
//!         let addr = self.base.addr() + (pa.as_usize() - RAM_BASE);
//!         self.allocator.dealloc_pages(addr, 1).expect("a frame this source handed out");
//!     }
//!     fn phys_to_virt(&self, pa: PhysAddr) -> *mut u8 {
//!         self.base.wrapping_add(pa.as_usize() - RAM_BASE)
//!     }
//! }
//!
//! let mut table = PageTable::new(HostRam::new(64))?; // allocates the root
//! assert_eq!(table.frames().allocator.used_pages(), 1);
//!
//! // A data frame, mapped read-write in the upper half.
//! let frame = table.frames_mut().alloc_frame().expect("a free frame");
//! let va = VirtAddr::new(0xffff_ffc0_1234_5000)?;
//! table.map(va, frame, PageSize::Size4K, PteFlags::R | PteFlags::W)?;
//! // The level-1 and level-0 tables on the way were allocated too.
//! assert_eq!(table.frames().allocator.used_pages(), 4);
//!
//! // Translate an address inside the page, as the hardware walk would.
//! let t = table.translate(VirtAddr::new(0xffff_ffc0_1234_5abc)?)?;
//! assert_eq!(t.pa.as_usize(), frame.as_usize() + 0xabc);
//! assert_eq!(t.size, PageSize::Size4K);
//! assert!(t.flags.contains(PteFlags::V | PteFlags::R | PteFlags::W | PteFlags::A | PteFlags::D));
//!
//! // Store through the translation and read it back through the frame.
//! let byte = table.frames().phys_to_virt(t.pa);
//! // SAFETY: `t.pa` lies inside `frame`, which the source handed out.
//! unsafe { byte.write(7) };
//! // SAFETY: as above.
//! assert_eq!(unsafe { table.frames().phys_to_virt(frame).add(0xabc).read() }, 7);
//!
//! // A 2 MiB page needs no level-0 table.
//! let huge = VirtAddr::new(0x4000_0000)?;
//! table.map(huge, PhysAddr::new(0x8020_0000)?, PageSize::Size2M, PteFlags::R | PteFlags::X)?;
//! assert_eq!(table.translate(VirtAddr::new(0x4000_1234)?)?.pa.as_usize(), 0x8020_1234);
//! assert_eq!(table.mappings().count(), 2);
//!
//! // Unmapping frees the tables that became empty; the caller flushes the
//! // TLB (`sfence.vma`) and frees the data frame.
//! let gone = table.unmap(va)?;
//! assert_eq!((gone.pa, gone.tables_freed), (frame, 2));
//! // SAFETY: unmapped above; nothing else refers to the frame.
//! unsafe { table.frames_mut().dealloc_frame(frame) };
//! assert!(table.translate(va).is_err());
//! assert_eq!(table.satp(0) >> 60, 8); // MODE = Sv39
//! # Ok::<(), sv39::PagingError>(())
//! ```
//!
//! `examples/linear_map.rs` maps a kernel's linear map of RAM with
//! [`map_range`](PageTable::map_range) and prints the walk of one address.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

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

/// The design note: the Sv39 format drawn out, the walk, the API at a
/// glance, the invariants every operation keeps, the errors, the caller's
/// TLB duties, and how the crate is tested.
pub mod design {
    #![doc = include_str!("../docs/paging.md")]
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
