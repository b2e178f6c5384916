//! Stress mode (`stress=SECONDS` on the test build, `cargo xtask stress`;
//! `stress <seconds> [harts]` in the monitor): every hart runs the workload generator against the global allocator
//! and the page allocator for the given time, with cross-hart frees, the
//! timer interrupt allocating on every tick, and fault injection on (1% of
//! page and heap requests unless `fail_page_alloc=` / `failslab=` are
//! given: `fail_page_alloc=1,0,0,0` turns it off). A line every few seconds shows operations, pages in use,
//! injected vs seen failures and fragmentation; the summary compares every
//! counter with its value before the run. Exit status 0 only if no block
//! was damaged, every failure seen was an injected one, and every counter
//! is back.
//!
//! ```text
//!   stress: 12s ops 1843200 pages used 1210 (peak 1980) failures injected 3712 seen 3712 unexpected 0
//!           | ufi(o4) 12 ufi(o9) 140 largest free run 16384 pages
//! ```

mod worker;

use crate::arch::{cpu, smp, timer};
use crate::memdiag::inject::{self, Site};
use crate::memdiag::targets::{Snapshot, snapshot};
use crate::memory::{heap, pages};
#[cfg(feature = "ktest")]
use crate::power::{self, FailureCode};
use crate::sync::IrqSpinLock;
use core::sync::atomic::{AtomicU64, Ordering};
use faultinject::FaultConfig;
use worker::{FAILURE, HOOK_BROKEN, REPORT, TOTALS};

/// Most harts that take part (`SMP=8` fits; more stay idle).
pub const MAX_HARTS: usize = worker::STRESS_HARTS;
/// Tick rate during the run (and so of the timer-interrupt allocations).
const STRESS_TIMER_HZ: u32 = 1000;
/// The workloads' base seed without `stress.seed=` / `SEED=` (printed; each
/// hart and epoch derives its own from it).
pub const DEFAULT_SEED: u64 = 0x57e5_5eed;
/// Injection when the boot arguments set none: 1% of calls, no limit.
const DEFAULT_FAULTS: FaultConfig = FaultConfig {
    probability: 1,
    interval: 1,
    times: -1,
    ..FaultConfig::OFF
};

/// Whether `after` is back at `before` (the byte buddy keeps the pools it
/// grew: kalloc cannot detach them, so only its non-heap pages count).
fn counters_back(before: &Snapshot, after: &Snapshot) -> bool {
    let same_blocks = after.live_blocks == before.live_blocks
        && after.live_bytes == before.live_bytes
        && after.large_pages == before.large_pages
        && after.heap_used_bytes == before.heap_used_bytes;
    let same_pages = if heap::kind() == Some(heap::HeapKind::Buddy) {
        after.pages_used - after.heap_pages == before.pages_used - before.heap_pages
    } else {
        after.pages_used == before.pages_used && after.heap_pages == before.heap_pages
    };
    same_blocks && same_pages
}

/// Run parameters the report needs.
struct Clock {
    start: u64,
    timebase: u64,
    every: u64,
    next: u64,
    injected_before: u64,
}

static CLOCK: IrqSpinLock<Clock> = IrqSpinLock::new(
    "stress clock",
    Clock {
        start: 0,
        timebase: 1,
        every: 1,
        next: u64::MAX,
        injected_before: 0,
    },
);
static LINES: AtomicU64 = AtomicU64::new(0);

fn injected_total() -> u64 {
    inject::injected(Site::Pages) + inject::injected(Site::Slab)
}

/// One report line: operations, usage, failures, fragmentation.
fn report_line(final_line: bool) {
    let now = cpu::ticks();
    let (start, timebase, injected_before) = {
        let mut clock = CLOCK.lock();
        if now < clock.next && !final_line {
            return;
        }
        clock.next = now + clock.every;
        (clock.start, clock.timebase, clock.injected_before)
    };
    LINES.fetch_add(1, Ordering::Relaxed);
    let stats = pages::stats();
    // In use by their owners: pages parked in the harts' lists are free
    // to the workload, as in the peak it is compared with.
    let (used, _) = pages::usage();
    let injected = injected_total() - injected_before;
    let seen = TOTALS.failures_seen.load(Ordering::Relaxed);
    crate::println!(
        "stress: {:>4}s ops {} pages used {} (peak {}) failures injected {} seen {} | ufi(o4) {} ufi(o9) {} fi(o9) {} largest free run {} pages",
        (now - start) / timebase,
        TOTALS.allocs.load(Ordering::Relaxed) + TOTALS.frees.load(Ordering::Relaxed),
        used,
        TOTALS.peak_pages_used.load(Ordering::Relaxed),
        injected,
        seen,
        stats.unusable_free_index(4),
        stats.unusable_free_index(9),
        stats.fragmentation_index(9),
        stats.largest_free_run,
    );
}

fn periodic_report() {
    report_line(false);
}

/// Runs the stress workload for `seconds` and powers off with its verdict;
/// with `free_pages`, near exhaustion: all other free pages are held for
/// the run (see [`Hoard`]).
/// Never inlined: its frame would otherwise sit under every test the
/// `ktest` build runs from the same boot function (the stack-depth tests
/// measure it).
#[cfg(feature = "ktest")]
#[inline(never)]
pub fn run_and_power_off(seconds: u64, seed: Option<u64>, free_pages: Option<usize>) -> ! {
    let hoard = free_pages.map(Hoard::leaving);
    if let Some(hoard) = &hoard {
        crate::println!(
            "stress: near exhaustion: {} pages held, {} left free",
            hoard.pages(),
            pages::stats().free_pages
        );
    }
    let verdict = run(
        seconds,
        MAX_HARTS,
        seed.unwrap_or(DEFAULT_SEED),
        hoard.is_some(),
    );
    drop(hoard);
    match verdict {
        Ok(()) => power::succeed(),
        Err(_) => power::fail(FailureCode::TestsFailed),
    }
}

/// Pages held away from a stress run so it runs near exhaustion: blocks of
/// the largest free order first (few blocks, so memdebug's page table has
/// room), given back when dropped.
#[cfg(feature = "ktest")]
struct Hoard {
    blocks: [(usize, usize); Self::MAX_BLOCKS],
    len: usize,
}

#[cfg(feature = "ktest")]
impl Hoard {
    const MAX_BLOCKS: usize = 64;

    /// Takes free pages until about `free` are left.
    fn leaving(free: usize) -> Self {
        let mut hoard = Self {
            blocks: [(0, 0); Self::MAX_BLOCKS],
            len: 0,
        };
        while hoard.len < Self::MAX_BLOCKS {
            let stats = pages::stats();
            let Some(excess) = stats.free_pages.checked_sub(free).filter(|&n| n > 0) else {
                break;
            };
            let Some(order) = stats.highest_free_order() else {
                break;
            };
            // A whole free block of the buddy's (or the bitmap's) largest
            // order, or the largest power of two that keeps `free` left.
            let count = (1usize << order).min(1 << excess.ilog2());
            match pages::alloc_for("stress-hoard", count, crate::arch::PAGE_SIZE) {
                Ok(addr) => {
                    hoard.blocks[hoard.len] = (addr, count);
                    hoard.len += 1;
                }
                Err(_) => break,
            }
        }
        hoard
    }

    fn pages(&self) -> usize {
        self.blocks[..self.len].iter().map(|&(_, n)| n).sum()
    }
}

#[cfg(feature = "ktest")]
impl Drop for Hoard {
    fn drop(&mut self) {
        for &(addr, count) in &self.blocks[..self.len] {
            if let Err(error) = pages::free(addr, count) {
                crate::println!("stress: giving back {count} held pages at {addr:#x}: {error}");
            }
        }
    }
}

/// Runs the stress workload for `seconds` on up to `harts` harts from
/// base seed `seed` and prints its report; `Err` names why the run failed.
/// The seed fixes each hart's requests; the interleaving of the harts is
/// the machine's, so a replay reproduces a failure's workload, not its
/// timing. Fault injection,
/// the timer rate and hook are what they were before when it returns.
pub fn run(
    seconds: u64,
    harts: usize,
    seed: u64,
    near_exhaustion: bool,
) -> Result<(), &'static str> {
    let seconds = seconds.max(1);
    worker::reset(harts);
    let saved_faults = [Site::Pages, Site::Slab].map(inject::config);
    let saved_interval = timer::interval();
    for (site, name) in [(Site::Pages, "fail_page_alloc"), (Site::Slab, "failslab")] {
        if !inject::set_at_boot(site) && inject::config(site) == FaultConfig::OFF {
            inject::configure(site, DEFAULT_FAULTS);
        }
        let config = inject::config(site);
        crate::println!(
            "stress: {name}: probability {}%, interval {}, times {}, filter {:?}",
            config.probability,
            config.interval,
            config.times,
            config.filter
        );
    }
    worker::SEED.store(seed, Ordering::Relaxed);
    let timebase = crate::platform::get().timebase_hz;
    let before = snapshot();
    crate::println!(
        "stress: {seconds} s on {} harts, seed {seed:#x} (SEED={seed:#x} replays it), heap {}, timer {STRESS_TIMER_HZ} Hz with allocations\nstress: before {before}",
        worker::participants(),
        heap::kind().map_or("?", heap::HeapKind::name),
    );
    let start = cpu::ticks();
    {
        let mut clock = CLOCK.lock();
        *clock = Clock {
            start,
            timebase,
            every: timebase * if seconds <= 60 { 5 } else { 30 },
            next: start + timebase * if seconds <= 60 { 5 } else { 30 },
            injected_before: injected_total(),
        };
    }
    let retries_before = crate::memory::global::stats().reclaim_retries;
    worker::DEADLINE.store(start + timebase * seconds, Ordering::Release);
    *REPORT.lock() = Some(periodic_report);
    timer::configure(timebase, STRESS_TIMER_HZ);
    timer::set_hook(Some(worker::allocate_in_interrupt));
    smp::run_on_all_harts(worker::hammer);
    timer::set_hook(None);
    *REPORT.lock() = None;
    let injected_before = CLOCK.lock().injected_before;
    let injected = injected_total() - injected_before;
    inject::disarm_all();
    timer::set_interval(saved_interval);
    let drained = worker::drain_mailboxes();
    report_line(true);
    let after = snapshot();
    // The reports the run's failures caused are summed up before the
    // summary, as Linux's ratelimit does when a window closes.
    super::ratelimit::flush();
    let seen = TOTALS.failures_seen.load(Ordering::Relaxed);
    // The global allocator retries a request that found no memory once,
    // after draining the harts' caches: each retry consumed one failure
    // the workload never saw (the retry's own failure, if any, it saw).
    let retries = crate::memory::global::stats().reclaim_retries - retries_before;
    let accounted = seen + retries;
    let (allocs, frees) = (
        TOTALS.allocs.load(Ordering::Relaxed),
        TOTALS.frees.load(Ordering::Relaxed),
    );
    crate::println!(
        "stress: summary: {} s, {} harts, {} epochs, {allocs} allocs, {frees} frees ({} cross-hart), {} timer-interrupt allocations",
        (cpu::ticks() - start) / timebase,
        worker::participants(),
        TOTALS.epochs.load(Ordering::Relaxed),
        TOTALS.cross_frees.load(Ordering::Relaxed),
        TOTALS.hook_runs.load(Ordering::Relaxed),
    );
    // memdebug's layers retry a failed request once after emptying their
    // quarantine, so with them on an injected failure can be absorbed on
    // its way to the workload (never the other way round).
    let absorbing = crate::memdiag::debug::bytes_on() || crate::memdiag::debug::pages_on();
    let absorbed = if absorbing {
        injected.saturating_sub(accounted)
    } else {
        0
    };
    // Near exhaustion, requests also fail for want of memory: more
    // failures than injected are then expected, fewer are not.
    let out_of_memory = if near_exhaustion {
        accounted.saturating_sub(injected)
    } else {
        0
    };
    let unexpected = accounted.abs_diff(injected) - absorbed - out_of_memory;
    crate::println!(
        "stress: summary: peak pages used {}; failures injected {injected}, seen {seen}, hidden by the heap's reclaim retry {retries}, absorbed by memdebug's quarantine retry {absorbed}, out of memory {out_of_memory}, unexpected {unexpected}",
        TOTALS.peak_pages_used.load(Ordering::Relaxed),
    );
    crate::println!("stress: after  {after}");
    let mut verdict: Option<&str> = None;
    if let Some((slot, failure)) = *FAILURE.lock() {
        crate::println!("stress: hart slot {slot}: {failure}");
        verdict = Some("a workload failed");
    }
    if let Err(failure) = drained {
        crate::println!("stress: mailbox drain: {failure}");
        verdict = Some("a handed-over block failed its check");
    }
    if HOOK_BROKEN.load(Ordering::Relaxed) {
        verdict = Some("a block allocated in the timer interrupt was damaged");
    }
    if unexpected != 0 {
        verdict = Some(if accounted > injected {
            "more failures seen than injected: memory ran out (stress.free= on the test build runs near exhaustion on purpose)"
        } else {
            "failures seen differ from failures injected"
        });
    }
    if allocs != frees {
        verdict = Some("allocations and frees differ");
    }
    if TOTALS.cross_frees.load(Ordering::Relaxed) == 0 && worker::participants() > 1 {
        verdict = Some("no block crossed harts");
    }
    if TOTALS.hook_runs.load(Ordering::Relaxed) == 0 {
        verdict = Some("the timer hook never ran");
    }
    if !counters_back(&before, &after) {
        verdict = Some("counters are not back at their starting values");
    }
    for (site, config) in [Site::Pages, Site::Slab].into_iter().zip(saved_faults) {
        inject::configure(site, config);
    }
    match verdict {
        None => {
            crate::println!("stress: PASS (counters back at their starting values)");
            Ok(())
        }
        Some(reason) => {
            crate::println!("stress: FAIL: {reason}");
            Err(reason)
        }
    }
}
