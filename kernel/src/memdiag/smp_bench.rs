//! The multi-hart throughput benchmark behind the monitor's `bench smp`:
//! the same per-hart workload on 1, 2, ... harts at once, timed from a
//! common start to the last hart's end, with the global allocator's and
//! the page allocator's lock acquisitions counted over the run.
//!
//! - `churn`: each hart allocates and frees its own small objects (8 B to
//!   2 KiB, 64 live, seeded per hart) through the global allocator;
//! - `pages`: each hart allocates and frees its own single pages (16
//!   live) through `memory::pages`;
//! - `pipe`: harts in pairs, a producer allocating small objects and
//!   handing them over in batches, a consumer freeing them (every free is
//!   remote); one hart alone produces a batch, then frees it.
//!
//! Blocks are `memory::global::Block`s (the safe handle of a global
//! allocation), so nothing here is unsafe; a pipe is a lock-protected
//! ring taken once per batch, and each end waits for the other by reading
//! the other's counter, never by retrying the lock (which would keep the
//! other end out and measure the ring, not the heap).

use crate::arch::{PAGE_SIZE, cpu, hart, smp};
use crate::memory::global::{self, Block};
use crate::memory::pages;
use crate::sync::IrqSpinLock;
use core::alloc::Layout;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Churn,
    Pages,
    Pipe,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Churn, Workload::Pages, Workload::Pipe];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Churn => "churn",
            Workload::Pages => "pages",
            Workload::Pipe => "pipe",
        }
    }
}

/// One run's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    pub harts: usize,
    /// Allocations plus frees, all harts.
    pub ops: u64,
    /// From the common start to the last hart's end, timebase ticks.
    pub ticks: u64,
    /// The global allocator's and the page allocator's lock acquisitions
    /// during the run.
    pub heap_locks: u64,
    pub page_locks: u64,
    /// Allocations that failed (the run goes on without the block).
    pub failures: u64,
}

/// Most harts a run uses (pipes pair them up).
const MAX_BENCH_HARTS: usize = 8;
const CHURN_LIVE: usize = 64;
const PAGE_LIVE: usize = 16;
const BATCH: usize = 32;
const PIPE_SLOTS: usize = 4 * BATCH;

static WORKLOAD: AtomicUsize = AtomicUsize::new(0);
static HARTS: AtomicUsize = AtomicUsize::new(0);
static OPS_PER_HART: AtomicU64 = AtomicU64::new(0);
static ARRIVED: AtomicUsize = AtomicUsize::new(0);
static START: AtomicU64 = AtomicU64::new(0);
static LAST_END: AtomicU64 = AtomicU64::new(0);
static OPS: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// A ring of blocks from a producer to its consumer.
struct Pipe {
    blocks: [Option<Block>; PIPE_SLOTS],
    head: usize,
    len: usize,
    /// The producer is done: the consumer stops once the ring is empty.
    closed: bool,
}

impl Pipe {
    const fn new() -> Self {
        Self {
            blocks: [const { None }; PIPE_SLOTS],
            head: 0,
            len: 0,
            closed: false,
        }
    }
}

static PIPES: [IrqSpinLock<Pipe>; MAX_BENCH_HARTS / 2] =
    [const { IrqSpinLock::new("bench pipe", Pipe::new()) }; MAX_BENCH_HARTS / 2];
/// Blocks each producer has put in its pipe (one more once it closed
/// it), read by the consumer before it takes the lock: a consumer spinning
/// on the lock itself would keep its producer out.
static SENT: [AtomicU64; MAX_BENCH_HARTS / 2] = [const { AtomicU64::new(0) }; MAX_BENCH_HARTS / 2];
/// Blocks each consumer has taken from its pipe, read by the producer
/// before it takes the lock, for the same reason.
static TAKEN: [AtomicU64; MAX_BENCH_HARTS / 2] = [const { AtomicU64::new(0) }; MAX_BENCH_HARTS / 2];

/// Harts a run can use: the online ones, at most [`MAX_BENCH_HARTS`].
pub fn max_harts() -> usize {
    smp::online_count().min(MAX_BENCH_HARTS)
}

/// Runs `workload` on `harts` harts, `ops_per_hart` operations each (a
/// producer allocates half its budget, its consumer frees as many).
pub fn run(workload: Workload, harts: usize, ops_per_hart: u64) -> Run {
    let harts = harts.clamp(1, max_harts());
    WORKLOAD.store(workload as usize, Ordering::Relaxed);
    HARTS.store(harts, Ordering::Relaxed);
    OPS_PER_HART.store(ops_per_hart, Ordering::Relaxed);
    ARRIVED.store(0, Ordering::Relaxed);
    LAST_END.store(0, Ordering::Relaxed);
    OPS.store(0, Ordering::Relaxed);
    FAILURES.store(0, Ordering::Relaxed);
    for ((pipe, sent), taken) in PIPES.iter().zip(&SENT).zip(&TAKEN) {
        pipe.lock().closed = false;
        sent.store(0, Ordering::Relaxed);
        taken.store(0, Ordering::Relaxed);
    }
    let locks_before = global::stats().lock_acquisitions;
    let page_locks_before = pages::cache_stats().lock_acquisitions;
    smp::run_on_all_harts(participate);
    Run {
        harts,
        ops: OPS.load(Ordering::Relaxed),
        ticks: LAST_END.load(Ordering::Relaxed) - START.load(Ordering::Relaxed),
        heap_locks: global::stats().lock_acquisitions - locks_before,
        page_locks: pages::cache_stats().lock_acquisitions - page_locks_before,
        failures: FAILURES.load(Ordering::Relaxed),
    }
}

/// The job every hart runs: the first `harts` online harts take part.
fn participate(slot: usize) {
    let harts = HARTS.load(Ordering::Relaxed);
    let Some(rank) = hart::online().position(|h| h.slot() == slot) else {
        return;
    };
    if rank >= harts {
        return;
    }
    // A common start: the last hart to arrive sets it.
    if ARRIVED.fetch_add(1, Ordering::AcqRel) + 1 == harts {
        START.store(cpu::ticks(), Ordering::Release);
    }
    while ARRIVED.load(Ordering::Acquire) < harts {
        core::hint::spin_loop();
    }
    let budget = OPS_PER_HART.load(Ordering::Relaxed);
    let seed = 0x5eed_0013 ^ (rank as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let (ops, failures) = match WORKLOAD.load(Ordering::Relaxed) {
        w if w == Workload::Churn as usize => churn(budget, seed),
        w if w == Workload::Pages as usize => page_churn(budget, seed),
        _ if harts == 1 => pipe_alone(budget, seed),
        _ if rank % 2 == 0 && rank + 1 < harts => produce(rank / 2, budget, seed),
        _ if rank % 2 == 1 => consume(rank / 2),
        // The odd hart out churns on its own.
        _ => churn(budget, seed),
    };
    OPS.fetch_add(ops, Ordering::Relaxed);
    FAILURES.fetch_add(failures, Ordering::Relaxed);
    LAST_END.fetch_max(cpu::ticks(), Ordering::AcqRel);
}

fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn small_layout(seed: &mut u64) -> Layout {
    let size = 8 + (next(seed) % 2041) as usize;
    Layout::from_size_align(size, 8).expect("sizes up to 2 KiB are valid")
}

/// Random allocations and frees of small objects, `CHURN_LIVE` slots.
fn churn(budget: u64, mut seed: u64) -> (u64, u64) {
    let mut live: [Option<Block>; CHURN_LIVE] = [const { None }; CHURN_LIVE];
    let (mut ops, mut failures) = (0, 0);
    while ops < budget {
        let slot = &mut live[(next(&mut seed) % CHURN_LIVE as u64) as usize];
        match slot.take() {
            Some(block) => {
                block.free();
            }
            None => {
                *slot = Block::alloc(small_layout(&mut seed));
                failures += u64::from(slot.is_none());
            }
        }
        ops += 1;
    }
    for block in live.into_iter().flatten() {
        block.free();
        ops += 1;
    }
    (ops, failures)
}

/// Random allocations and frees of single pages, `PAGE_LIVE` slots.
fn page_churn(budget: u64, mut seed: u64) -> (u64, u64) {
    let mut live = [0usize; PAGE_LIVE];
    let (mut ops, mut failures) = (0, 0);
    while ops < budget {
        let slot = &mut live[(next(&mut seed) % PAGE_LIVE as u64) as usize];
        if *slot != 0 {
            let freed = pages::free(*slot, 1);
            debug_assert!(freed.is_ok());
            *slot = 0;
        } else {
            match pages::alloc(1, PAGE_SIZE) {
                Ok(addr) => *slot = addr,
                Err(_) => failures += 1,
            }
        }
        ops += 1;
    }
    for addr in live.into_iter().filter(|&addr| addr != 0) {
        let freed = pages::free(addr, 1);
        debug_assert!(freed.is_ok());
        ops += 1;
    }
    (ops, failures)
}

/// One hart as both ends of a pipe: a batch allocated, then freed.
fn pipe_alone(budget: u64, mut seed: u64) -> (u64, u64) {
    let (mut ops, mut failures) = (0, 0);
    let mut batch: [Option<Block>; BATCH] = [const { None }; BATCH];
    while ops < budget {
        for slot in batch.iter_mut() {
            *slot = Block::alloc(small_layout(&mut seed));
            failures += u64::from(slot.is_none());
        }
        for block in batch.iter_mut().filter_map(Option::take) {
            block.free();
            ops += 1;
        }
        ops += BATCH as u64;
    }
    (ops, failures)
}

/// Allocates `budget / 2` blocks and hands them over in batches through
/// pipe `index`, then closes it.
fn produce(index: usize, budget: u64, mut seed: u64) -> (u64, u64) {
    let (mut made, mut failures, mut sent) = (0, 0, 0);
    let mut batch: [Option<Block>; BATCH] = [const { None }; BATCH];
    while made < budget / 2 {
        for slot in batch.iter_mut() {
            *slot = Block::alloc(small_layout(&mut seed));
            failures += u64::from(slot.is_none());
            made += 1;
        }
        let mut pending = batch.iter_mut().filter(|slot| slot.is_some()).peekable();
        while pending.peek().is_some() {
            while sent - TAKEN[index].load(Ordering::Acquire) >= PIPE_SLOTS as u64 {
                core::hint::spin_loop();
            }
            let mut ring = PIPES[index].lock();
            while ring.len < PIPE_SLOTS {
                let Some(slot) = pending.next() else { break };
                let tail = (ring.head + ring.len) % PIPE_SLOTS;
                ring.blocks[tail] = slot.take();
                ring.len += 1;
                sent += 1;
            }
            drop(ring);
            SENT[index].store(sent, Ordering::Release);
        }
    }
    PIPES[index].lock().closed = true;
    SENT[index].store(sent + 1, Ordering::Release);
    (made - failures, failures)
}

/// Frees what pipe `index`'s producer hands over until it closes it.
fn consume(index: usize) -> (u64, u64) {
    let (mut freed, mut seen, mut taken_total) = (0, 0, 0);
    let mut batch: [Option<Block>; BATCH] = [const { None }; BATCH];
    loop {
        while SENT[index].load(Ordering::Acquire) == seen {
            core::hint::spin_loop();
        }
        let mut ring = PIPES[index].lock();
        let mut taken = 0;
        while taken < BATCH && ring.len > 0 {
            let head = ring.head;
            batch[taken] = ring.blocks[head].take();
            ring.head = (head + 1) % PIPE_SLOTS;
            ring.len -= 1;
            taken += 1;
        }
        let done = ring.closed && ring.len == 0;
        if ring.len == 0 {
            seen = SENT[index].load(Ordering::Acquire);
        }
        drop(ring);
        taken_total += taken as u64;
        TAKEN[index].store(taken_total, Ordering::Release);
        for block in batch.iter_mut().take(taken).filter_map(Option::take) {
            block.free();
            freed += 1;
        }
        if done {
            return (freed, 0);
        }
    }
}

#[cfg(feature = "ktest")]
mod tests {
    use super::*;
    use crate::ktest::prelude::*;

    ktest! {
        fn every_hart_churns_its_own_cache_and_pipes_free_remotely() {
            // Two harts, a short run: every operation of the memdebug
            // configurations takes a global lock, and QEMU runs more harts
            // than the host has cores.
            let before = global::stats();
            for workload in Workload::ALL {
                let run = run(workload, max_harts().min(2), 2_000);
                kassert_eq!(run.failures, 0, "{} on {} harts", workload.name(), run.harts);
                kassert!(run.ops >= 2_000 && run.ticks > 0, "{}: {run:?}", workload.name());
                // With the caches serving GlobalAlloc (no memdebug byte
                // layer in front), a hart's own churn takes the heap's lock
                // at most once per 16 operations.
                let cached = global::HEAP.caches_enabled() && !crate::memdiag::debug::bytes_on();
                if workload == Workload::Churn && cached {
                    kassert!(run.heap_locks * 16 <= run.ops, "churn: {run:?}");
                }
                if workload == Workload::Pages && crate::memory::pages::lists_enabled() && !crate::memdiag::debug::pages_on() {
                    kassert!(run.page_locks * 16 <= run.ops, "pages: {run:?}");
                }
            }
            let drained = global::drain_caches();
            kassert_eq!(drained.cpus_answered, drained.cpus_asked);
            let after = global::stats();
            kassert_eq!(after.live_blocks(), before.live_blocks());
            kassert_eq!(after.live_bytes(), before.live_bytes());
            kassert_eq!(after.cached_total(), 0);
            Ok(())
        }
    }
}
