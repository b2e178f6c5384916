//! `memdebug`: debug layers that wrap any allocator of `kalloc` and catch
//! what allocators cannot cheaply catch themselves, in the spirit of Linux's
//! SLUB debugging, page_owner and kmemleak.
//!
//! - [`DebugByteAllocator`] wraps a [`kalloc::ByteAllocator`]: per-object
//!   state (double, interior, unknown, wrong-layout and out-of-range frees
//!   are refused with a [`Report`]), red zones, poisoning with a
//!   quarantine, alloc poisoning, call sites, counters, leak summaries.
//! - [`DebugPageAllocator`] wraps a [`kalloc::PageAllocator`] the same way
//!   at page granularity.
//!
//! Which checks run is a [`DebugFlags`] set (the kernel parses it from the
//! `memdebug=` boot argument); with none, a layer forwards and counts. The
//! layers never allocate: their tables live in memory handed to `new`.
//! Each layer is itself a `ByteAllocator` or `PageAllocator`, so it
//! composes with everything built on those traits. How the tables work,
//! what each check costs and how the kernel uses them: the [`design`]
//! note.
//!
//! # Catching a double free and an overflow
//!
//! A TLSF heap wrapped in a layer with poisoning, red zones and call-site
//! tracking; reports go to a [`ReportQueue`] (a sink must not print or
//! allocate: it runs inside the allocator) and are read afterwards.
//!
//! ```
//! use core::alloc::Layout;
//! use core::mem::MaybeUninit;
//! use kalloc::byte::Tlsf;
//! use kalloc::{AllocError, BaseAllocator, ByteAllocator};
//! use memdebug::{
//!     Action, CallSite, DebugByteAllocator, DebugConfig, DebugFlags, RecordSlot, ReportKind,
//!     ReportQueue, Side,
//! };
//!
//! // The layer's memory: one record per live or recently freed block,
//! // and the history of freed blocks (the quarantine's order).
//! let mut table = [const { MaybeUninit::<RecordSlot>::uninit() }; 256];
//! let mut history = [MaybeUninit::<usize>::uninit(); 64];
//! let flags = DebugFlags::parse("poison,redzone,track").unwrap();
//! let mut heap = DebugByteAllocator::new(
//!     "heap",
//!     Tlsf::new(),
//!     DebugConfig::bytes(flags),
//!     ReportQueue::<8>::new(),
//!     &mut table,
//!     &mut history,
//!     || 0, // a clock for the records; the kernel passes its timer
//! );
//! let pool = Box::leak(vec![0u64; 8192].into_boxed_slice());
//! // SAFETY: the leaked pool is memory nothing else uses.
//! unsafe { heap.add_memory(pool.as_mut_ptr().expose_provenance(), 8192 * 8)? };
//!
//! let layout = Layout::new::<[u8; 48]>();
//! let block = heap.alloc(layout)?;
//! // SAFETY: `block` is live, allocated with `layout`.
//! unsafe { heap.dealloc(block, layout)? };
//! // SAFETY: with checks on, the layer looks any pointer up before it
//! // touches memory: a second free is refused, not undefined.
//! assert_eq!(unsafe { heap.dealloc(block, layout) }, Err(AllocError::DoubleFree));
//!
//! // One byte written past the end lands in the rear red zone; the free
//! // reports it, repairs the zone and goes ahead.
//! let block = heap.alloc(layout)?;
//! // SAFETY: deliberately out of bounds, inside the layer's red zone.
//! unsafe { block.as_ptr().add(48).write(0) };
//! // SAFETY: `block` is live, allocated with `layout`.
//! unsafe { heap.dealloc(block, layout)? };
//!
//! let (mut reports, dropped) = heap.sink().take();
//! assert_eq!(dropped, 0);
//! let double_free = reports.next().unwrap();
//! assert_eq!(double_free.kind, ReportKind::DoubleFree);
//! assert_eq!(double_free.action, Action::Refused);
//! // Both call sites were recorded (this file, lines above).
//! let history = double_free.block.unwrap();
//! assert!(matches!(history.alloc_site, CallSite::Source(_)));
//! assert!(matches!(history.free_site, CallSite::Source(_)));
//! let overflow = reports.next().unwrap();
//! assert!(matches!(overflow.kind, ReportKind::RedZone { side: Side::Rear, offset: 48, .. }));
//! assert_eq!(overflow.action, Action::Repaired);
//! // Reports print as a kernel log would show them.
//! assert!(double_free.to_string().contains("double free"));
//! assert_eq!(heap.counters().refused_frees, 1);
//! # Ok::<(), AllocError>(())
//! ```
//!
//! The page layer, [`DebugPageAllocator`], is set up the same way over any
//! [`kalloc::PageAllocator`], with [`DebugConfig::pages`].

#![no_std]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

mod byte;
mod config;
mod flags;
mod leak;
mod ledger;
mod page;
mod pattern;
mod report;
mod site;
mod table;

#[cfg(not(doctest))]
pub mod design {
    //! The design note, rendered here so it travels with the crate: the
    //! invariants, the table and quarantine, the reports, what each check
    //! costs and how the kernel wires the layers in. Its links to other
    //! notes resolve in the repository, under
    //! <https://github.com/rvos-kernel/rvos/tree/main/docs>.
    #![doc = include_str!("../docs/memdebug.md")]
}

pub use byte::DebugByteAllocator;
pub use config::DebugConfig;
pub use flags::{DebugFlags, UnknownFlag};
pub use leak::{Checkpoint, LeakWatch, SiteSummary};
pub use ledger::{Counters, MAX_REGIONS, Record, RecordSlot};
pub use page::DebugPageAllocator;
pub use pattern::{ALLOC_POISON, FREE_POISON, PAGE_FREE_POISON, REDZONE_ACTIVE, REDZONE_INACTIVE};
pub use report::{
    Action, BlockInfo, FoundBytes, IgnoreReports, Report, ReportKind, ReportQueue, ReportSink,
    Side, Unit,
};
pub use site::CallSite;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
