//! Statistics without shared hot lines: each CPU counts its own
//! operations in its own cache line (plain loads and stores, interrupts
//! masked), readers sum over the CPUs. Live bytes fold into one shared
//! total every [`FOLD_BYTES`] of net change on a CPU, which is where the
//! high watermark is kept.
//!
//! ```text
//!   live bytes = folded + sum over CPUs of unfolded       (exact when no CPU is mid-operation)
//!   |unfolded| < FOLD_BYTES on every CPU
//!   peak       = highest value `folded` took: the true peak within CPUS * FOLD_BYTES
//! ```

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize};

/// Net bytes a CPU allocates (or frees) before it folds them into the
/// shared total: the watermark's error bound per CPU.
pub const FOLD_BYTES: isize = 16 * 1024;

/// One CPU's counters. Only that CPU writes them, with its interrupts
/// masked.
pub(crate) struct CpuStats {
    allocs: AtomicUsize,
    frees: AtomicUsize,
    unfolded: AtomicIsize,
    /// Acquisitions of the heap's lock by this CPU.
    locked: AtomicUsize,
    refills: AtomicUsize,
    flushes: AtomicUsize,
    failures: AtomicUsize,
    retries: AtomicUsize,
}

/// Adds one to a counter only its owner writes: a load and a store, not a
/// read-modify-write.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicUsize) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

impl CpuStats {
    pub(crate) const fn new() -> Self {
        Self {
            allocs: AtomicUsize::new(0),
            frees: AtomicUsize::new(0),
            unfolded: AtomicIsize::new(0),
            locked: AtomicUsize::new(0),
            refills: AtomicUsize::new(0),
            flushes: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
            retries: AtomicUsize::new(0),
        }
    }

    /// A block of `bytes` was handed out; folds into `shared` past the
    /// bound.
    #[inline(always)]
    pub(crate) fn note_alloc(&self, bytes: usize, shared: &SharedStats, now: impl FnOnce() -> u64) {
        bump(&self.allocs);
        let unfolded = self.unfolded.load(Relaxed) + bytes as isize;
        if unfolded < FOLD_BYTES {
            self.unfolded.store(unfolded, Relaxed);
        } else {
            self.fold(unfolded, shared, now);
        }
    }

    /// A block of `bytes` came back.
    #[inline(always)]
    pub(crate) fn note_free(&self, bytes: usize, shared: &SharedStats) {
        bump(&self.frees);
        let unfolded = self.unfolded.load(Relaxed) - bytes as isize;
        if unfolded > -FOLD_BYTES {
            self.unfolded.store(unfolded, Relaxed);
        } else {
            self.fold(unfolded, shared, || 0);
        }
    }

    #[cold]
    #[inline(never)]
    fn fold(&self, unfolded: isize, shared: &SharedStats, now: impl FnOnce() -> u64) {
        self.unfolded.store(0, Relaxed);
        let total = shared.folded.fetch_add(unfolded, Relaxed) + unfolded;
        let total = total.max(0) as usize;
        if total > shared.peak.load(Relaxed) && shared.peak.fetch_max(total, Relaxed) < total {
            shared.peak_at.store(now(), Relaxed);
        }
    }

    pub(crate) fn note_locked(&self) {
        bump(&self.locked);
    }

    pub(crate) fn note_refill(&self) {
        bump(&self.refills);
    }

    pub(crate) fn note_flush(&self) {
        bump(&self.flushes);
    }

    pub(crate) fn note_failure(&self) {
        bump(&self.failures);
    }

    pub(crate) fn note_retry(&self) {
        bump(&self.retries);
    }

    /// Adds this CPU's frees to `into`. A reader sums every CPU's frees
    /// before any CPU's allocations ([`add_to`](Self::add_to)): where
    /// stores become visible in the order they were made (TSO), a block
    /// allocated on one CPU and freed on another while it reads is then
    /// counted as allocated whenever its free is counted. The counters are
    /// relaxed, so a weaker order may still show the free alone, which
    /// [`HeapStats::live_blocks`] absorbs.
    pub(crate) fn add_frees_to(&self, into: &mut HeapStats) {
        into.frees += self.frees.load(Relaxed) as u64;
    }

    /// Adds this CPU's counters but the frees to `into`.
    pub(crate) fn add_to(&self, into: &mut HeapStats) {
        into.allocs += self.allocs.load(Relaxed) as u64;
        into.net_bytes += self.unfolded.load(Relaxed);
        into.lock_acquisitions += self.locked.load(Relaxed) as u64;
        into.refills += self.refills.load(Relaxed) as u64;
        into.flushes += self.flushes.load(Relaxed) as u64;
        into.failures += self.failures.load(Relaxed) as u64;
        into.reclaim_retries += self.retries.load(Relaxed) as u64;
    }
}

/// The shared part: written only when a CPU folds.
pub(crate) struct SharedStats {
    folded: AtomicIsize,
    peak: AtomicUsize,
    peak_at: AtomicU64,
}

impl SharedStats {
    pub(crate) const fn new() -> Self {
        Self {
            folded: AtomicIsize::new(0),
            peak: AtomicUsize::new(0),
            peak_at: AtomicU64::new(0),
        }
    }

    pub(crate) fn add_to(&self, into: &mut HeapStats) {
        into.net_bytes += self.folded.load(Relaxed);
        into.peak_bytes = self.peak.load(Relaxed);
        into.peak_at = self.peak_at.load(Relaxed);
    }

    /// A reader saw `live` bytes live (exact, summed over the CPUs): the
    /// watermark is at least that, and stays so.
    pub(crate) fn saw_live(&self, live: usize, now: impl FnOnce() -> u64) {
        if live > self.peak.load(Relaxed) && self.peak.fetch_max(live, Relaxed) < live {
            self.peak_at.store(now(), Relaxed);
        }
    }
}

/// A snapshot of the heap's counters, summed over the CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Allocations through the heap since it was created.
    pub allocs: u64,
    /// Frees through the heap since it was created.
    pub frees: u64,
    /// Allocations that failed (after draining and shrinking).
    pub failures: u64,
    /// Allocations that found no memory, reclaimed and tried once more
    /// (`alloc_or_reclaim`), whether or not the retry succeeded.
    pub reclaim_retries: u64,
    /// Live bytes as requested (before rounding), summed over the CPUs'
    /// shares (see [`live_bytes`](Self::live_bytes)).
    net_bytes: isize,
    /// The highest value the folded total of live bytes reached: within
    /// `CPUS *` [`FOLD_BYTES`] of the true peak.
    pub peak_bytes: usize,
    /// The [`Cpu::now`](crate::Cpu::now) of `peak_bytes`.
    pub peak_at: u64,
    /// Objects parked in the CPUs' magazines, per `kmalloc` class.
    pub cached_objects: [usize; kalloc::byte::KMALLOC_CLASSES],
    /// The parked objects' bytes (class sizes).
    pub cached_bytes: usize,
    /// Times a CPU took the heap's lock: refills, flushes, requests the
    /// caches do not hold, and frees settled under the lock.
    pub lock_acquisitions: u64,
    /// Magazines refilled from the depot.
    pub refills: u64,
    /// Magazines flushed back to the depot.
    pub flushes: u64,
}

impl HeapStats {
    /// Blocks handed out and not freed. Exact when no CPU is mid-operation;
    /// a snapshot taken while CPUs run may be off by the operations in
    /// flight, and is never below zero.
    pub fn live_blocks(&self) -> u64 {
        self.allocs.saturating_sub(self.frees)
    }

    /// Bytes handed out and not freed (as requested).
    pub fn live_bytes(&self) -> usize {
        self.net_bytes.max(0) as usize
    }

    /// Objects in all magazines.
    pub fn cached_total(&self) -> usize {
        self.cached_objects.iter().sum()
    }
}
