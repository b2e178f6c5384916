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

#![no_std]

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
