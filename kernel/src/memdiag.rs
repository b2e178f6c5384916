//! Memory diagnostics: what makes a memory bug visible, built on the
//! memory core (`crate::memory`) and plugged into its allocation paths
//! through `memory::hooks`. The core never imports anything from here.
//!
//! - `debug`: `memdebug=` (the byte and page debug layers, KFENCE-style
//!   sampling, the leak watch, the OOM report, report capture);
//! - `inject`: fault injection (`fail_page_alloc=`, `failslab=`);
//! - `badmem`: pages taken out of service (memory failure);
//! - `fault_report`: what a faulting address hits;
//! - `ratelimit`: the one rate limit of every memory report's log line;
//! - `stats`: `get_memory_stats()` (meminfo, buddyinfo, slabinfo);
//! - `stress`, `targets`: the stress mode and the workload targets;
//! - `smp_bench`: the multi-hart throughput benchmark (`bench smp`).
//!
//! No unsafe code here but where a diagnostic must touch raw memory: the
//! debug layers (tables in raw pages, KFENCE's canary pages), and the
//! workload targets (raw blocks of the global allocator).

#![deny(unsafe_code)]

pub mod badmem;
#[allow(
    unsafe_code,
    reason = "tables in raw pages, canary pages, call-site scopes"
)]
pub mod debug;
pub mod fault_report;
pub mod inject;
pub mod ratelimit;
pub mod smp_bench;
pub mod stats;
pub mod stress;
#[allow(
    unsafe_code,
    reason = "raw blocks of the global allocator behind workload::Target"
)]
pub mod targets;

#[cfg(feature = "ktest")]
#[allow(unsafe_code, reason = "writes the patterns of raw workload blocks")]
mod concurrency;

use crate::arch::{self, PAGE_SIZE};
use crate::memory::hooks;

/// Plugs the checks every allocation path runs into the memory core
/// (fault injection, pages out of service, the OOM report) and the
/// arch's diagnostics services (the leak watch on each tick, the fatal
/// fault explanation). Called once at boot, before the page allocator
/// serves anyone; each check is inert until configured.
pub fn install() {
    hooks::CHECKS.set(hooks::Checks {
        fail_page_alloc: |name, count| inject::page_alloc_fails(name, count, PAGE_SIZE),
        fail_heap_alloc: inject::slab_alloc_fails,
        free_pages: badmem::free_checked,
        allocation_failed: debug::oom::allocation_failed,
        reclaim: give_back_quarantines,
    });
    arch::trap::set_fault_explainer(fault_report::explain);
    arch::timer::set_service(debug::leak::on_tick);
}

/// Gives everything held back to the page allocator: every hart's cached
/// objects, the heap's idle pools and both memdebug quarantines (`shrink`,
/// memory pressure; the global allocator does the same before it fails).
pub fn shrink() -> kheap::DrainReport {
    crate::memory::global::shrink()
}

/// The global allocator's reclaim step for the diagnostics: blocks in the
/// byte quarantine go back to the heap, which shrinks again, and the page
/// quarantine goes back to the page allocator.
fn give_back_quarantines() {
    debug::flush_byte_quarantine();
    crate::memory::global::shrink_heap();
    debug::flush_page_quarantine();
}
