//! The out-of-memory report, logged when a global allocation fails
//! (whatever `memdebug=` says): the request, free pages per order, the
//! largest free blocks, the fragmentation index for the request's order,
//! the top call sites by outstanding bytes (when `track` is on) and the
//! slab caches. The allocation then fails with null, so a caller using
//! `try_reserve` or `try_box` carries on; only an unhandled failure stops
//! the kernel (Rust's alloc error path, see `global::print_failure_diagnosis`).
//!
//! Runs after the allocator locks are released; it takes each of them
//! again briefly and never allocates. Like Linux's `warn_alloc`, the log
//! is rate-limited (`memdiag::ratelimit`, shared with memdebug's reports:
//! 10 reports per 5 s, then a count of those suppressed): a workload that
//! expects failures (fault injection, `stress`) would otherwise flood the
//! console. Every failure is still counted and remembered ([`reports`],
//! [`last`]).

use super::layers;
use crate::memdiag::ratelimit;
use crate::memdiag::stats::{self, MemoryStats};
use crate::sync::IrqTicketLock;
use core::alloc::Layout;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use kalloc::AllocError;
use memdebug::{CallSite, Checkpoint, DebugFlags, SiteSummary};

/// Call sites an OOM report lists.
pub const TOP_SITES: usize = 4;

/// The facts of the last report, for tests and post-mortems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OomSummary {
    pub size: usize,
    pub align: usize,
    pub error: AllocError,
    pub site: CallSite,
    /// The page order the request needs (0 for heap-sized requests).
    pub order: usize,
    pub free_pages: usize,
    pub largest_free_run: usize,
    pub fragmentation_index: i32,
    /// The call site holding the most outstanding bytes, if tracked.
    pub top_site: Option<SiteSummary>,
}

static REPORTS: AtomicUsize = AtomicUsize::new(0);
static LAST: IrqTicketLock<Option<OomSummary>> = IrqTicketLock::new("oom-report", None);

/// How many OOM reports were logged since boot.
#[cfg_attr(
    not(feature = "ktest"),
    expect(
        dead_code,
        reason = "API for kernel code; the in-kernel tests are its only user so far"
    )
)]
pub fn reports() -> usize {
    REPORTS.load(Ordering::Relaxed)
}

/// The last report's facts.
#[cfg_attr(
    not(feature = "ktest"),
    expect(
        dead_code,
        reason = "API for kernel code; the in-kernel tests are its only user so far"
    )
)]
pub fn last() -> Option<OomSummary> {
    *LAST.lock()
}

/// The full report, ready to print.
pub struct OomReport {
    pub summary: OomSummary,
    pub stats: MemoryStats,
    pub top_sites: [SiteSummary; TOP_SITES],
    pub top_count: usize,
}

/// The page order a request needs: that of the pages asked for, red zones
/// included when the byte layer adds them; 0 for a request the byte
/// allocator serves (its growth takes pools of its own size).
fn page_order(layout: Layout) -> usize {
    if !crate::memory::heap::goes_to_pages(layout) {
        return 0;
    }
    let pages = if super::config::bytes_on() {
        layers::pages_needed(layout)
    } else {
        crate::memory::heap::pages_for(layout)
    };
    pages.max(1).next_power_of_two().ilog2() as usize
}

/// Gathers the report for a failed request.
pub fn build(layout: Layout, error: AllocError, site: CallSite) -> OomReport {
    let stats = stats::get_memory_stats();
    let order = page_order(layout);
    let mut top_sites = [SiteSummary::default(); TOP_SITES];
    let top_count = layers::with_bytes(|layer| {
        layer
            .outstanding_since(Checkpoint::default(), &mut top_sites)
            .0
    })
    .unwrap_or(0);
    let summary = OomSummary {
        size: layout.size(),
        align: layout.align(),
        error,
        site,
        order,
        free_pages: stats.pages.free_pages,
        largest_free_run: stats.pages.largest_free_run,
        fragmentation_index: stats.pages.fragmentation_index(order),
        top_site: (top_count > 0).then_some(top_sites[0]),
    };
    OomReport {
        summary,
        stats,
        top_sites,
        top_count,
    }
}

/// A global allocation failed (the global allocator counted it): log
/// the report.
/// `caller` is the code that allocated (`GlobalAlloc`'s return address),
/// unless a [`super::site`] scope names a source line.
pub fn allocation_failed(layout: Layout, error: AllocError, caller: usize) {
    let site = super::site::current().unwrap_or(CallSite::Code(caller));
    let report = build(layout, error, site);
    if ratelimit::admit() {
        log::warn!("{report}");
    }
    *LAST.lock() = Some(report.summary);
    REPORTS.fetch_add(1, Ordering::Relaxed);
}

impl fmt::Display for OomReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        let pages = &self.stats.pages;
        write!(
            f,
            "out of memory: request of {} bytes (align {}, page order {}) by {} failed: {}\n  \
             action: the allocation returns null; the caller gets the error and the kernel goes on\n  \
             free pages per order:",
            s.size, s.align, s.order, s.site, s.error
        )?;
        let top = pages.highest_free_order().unwrap_or(0);
        for (order, count) in pages.free_blocks.iter().enumerate().take(top + 1) {
            write!(f, " {order}:{count}")?;
        }
        write!(
            f,
            "\n  free pages {} of {}; largest free run {} pages; largest heap free block {} bytes\n  \
             per-hart caches after the drain: {} pages in page lists, {} objects ({} bytes) in heap caches\n  \
             fragmentation index for order {}: {} (unusable free space {}, thousandths)",
            pages.free_pages,
            pages.total_pages,
            pages.largest_free_run,
            self.stats.heap.largest_free_block,
            self.stats.listed_pages,
            self.stats.heap.cached_objects,
            self.stats.heap.cached_bytes,
            s.order,
            s.fragmentation_index,
            pages.unusable_free_index(s.order)
        )?;
        if !super::config::flags().contains(DebugFlags::TRACK) {
            f.write_str("\n  top call sites: not tracked (boot with memdebug=track)")?;
        } else if self.top_count == 0 {
            f.write_str("\n  top call sites: nothing outstanding")?;
        } else {
            f.write_str("\n  top call sites by outstanding bytes:")?;
            for site in &self.top_sites[..self.top_count] {
                write!(
                    f,
                    "\n    {}: {} blocks, {} bytes, oldest #{}",
                    site.site, site.count, site.size, site.oldest_seq
                )?;
            }
        }
        let mut caches = self.stats.slab_rows().filter(|row| row.total_objects > 0);
        if let Some(first) = caches.next() {
            write!(
                f,
                "\n  slab caches in use:\n  {}\n  {first}",
                kalloc::byte::SlabInfo::TITLE
            )?;
            for row in caches {
                write!(f, "\n  {row}")?;
            }
        }
        Ok(())
    }
}
