//! Multi-thread throughput of kheap's per-CPU caches next to one-lock
//! allocators, with std threads playing CPUs (each bench thread is its
//! own CPU of the caches); this file holds the table and the knobs.
//!
//! Byte allocators ([`allocators`]), run through the same workload code:
//!
//! - **kheap**: `CachedHeap` (per-CPU magazines) over a kalloc
//!   `SlabAllocator<BuddyPageAllocator>`, through its `GlobalAlloc`;
//! - **slab + std Mutex**: the same `SlabAllocator<BuddyPageAllocator>`
//!   behind one `std::sync::Mutex`, no caches: the one-lock baseline of
//!   the byte workloads;
//! - **talc**: a `TalcLock` over `spinning_top::RawSpinlock` with a
//!   `Manual` source and the arena claimed, as talc's README sets up a
//!   locked global heap;
//! - **buddy_system_allocator**: its spin-locked `LockedHeap<32>`,
//!   initialised over the arena as its README shows.
//!
//! Page allocators ([`pages`]): **kheap PageCaches** (per-CPU lists of
//! free blocks of orders 0 to 3, on) over a kalloc `BuddyPageAllocator`,
//! and the same `BuddyPageAllocator` behind one `std::sync::Mutex`, the
//! one-lock baseline of the page workload.
//!
//! Workloads ([`workloads`]; byte sizes uniform in 8..=2048, alignment 8;
//! the first word of every block or page is written when it is handed
//! out):
//!
//! - **churn**: each thread keeps up to 256 live blocks of its own and
//!   allocates or frees a random one with equal odds (xorshift, a fixed
//!   seed per thread); the blocks left at the end are freed too;
//! - **producer/consumer**: threads in pairs; the producer allocates
//!   blocks, writes each one's size into it and sends them 64 at a time
//!   over a bounded channel; the consumer reads the size and frees them
//!   (every free is remote). One thread alone produces a batch, then
//!   frees it; an odd thread out does the same;
//! - **page churn**: each thread has 16 slots for single pages and picks
//!   a random one (xorshift, a fixed seed per thread): a page in it is
//!   freed, an empty one gets a fresh page (the in-kernel `bench smp`
//!   `pages` workload); the pages left at the end are freed too.
//!
//! Each run has `KHEAP_BENCH_OPS` operations per thread (default 2
//! million; `KHEAP_BENCH_PAGE_OPS` for page churn, default the same; an
//! allocation and a free are one operation each) and a fresh allocator
//! over one 256 MiB arena ([`arena`]), pre-faulted once, so no run pays
//! the host's page faults; the page allocators manage its first 64 MiB.
//! Runs of one workload and thread count are interleaved across the
//! allocators, `KHEAP_BENCH_ROUNDS` rounds (default 5); the table shows
//! the median wall-clock throughput of all threads together, the speedup
//! over the same allocator with one thread, the ratio to the workload's
//! one-lock baseline, for kheap the trips to its lock per operation
//! (`stats().lock_acquisitions`, over all rounds), and the share of the
//! threads' time spent runnable but waiting for a CPU ([`timing`]): on a
//! machine with other load, rows with a high share measured the scheduler
//! more than the allocator. Thread counts: 1, 2 and the available
//! parallelism, at most the 8 CPUs of the host `Cpu`.
//!
//! Run: `cargo bench -p rvos-kheap --bench smp`. Without cargo bench's
//! `--bench` argument (as under `cargo test --benches`) it prints
//! `skipped` and returns.

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "smp/allocators.rs"]
mod allocators;
#[path = "smp/arena.rs"]
mod arena;
#[path = "smp/pages.rs"]
mod pages;
#[path = "smp/timing.rs"]
mod timing;
#[path = "smp/workloads.rs"]
mod workloads;

use std::time::Instant;

use arena::{ARENA, Arena, PAGE_REGION};
use common::CPUS;
use timing::{Outcome, median};
use workloads::{ALIGN, MAX_SIZE, MIN_SIZE, PAGE_LIVE, Workload};

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
        Err(_) => default,
    }
}

/// Runs `workload` on `threads` threads, `rounds` times per contender
/// (interleaved), and prints a row per contender; `single` holds each
/// contender's one-thread rate (filled when `threads` is 1).
fn rows(
    arena: &Arena,
    workload: Workload,
    threads: usize,
    ops: u64,
    rounds: usize,
    single: &mut [f64],
) {
    let kinds = workload.contenders();
    let mut outcomes: Vec<Vec<Outcome>> =
        kinds.iter().map(|_| Vec::with_capacity(rounds)).collect();
    for round in 0..rounds {
        // Each round starts with another allocator, so a change in the
        // machine's load hits all of them alike.
        for step in 0..kinds.len() {
            let index = (round + step) % kinds.len();
            let outcome = allocators::run(kinds[index], arena, workload, threads, ops);
            outcomes[index].push(outcome);
        }
    }
    let locks: Vec<Option<f64>> = outcomes
        .iter()
        .map(|runs| {
            let taken: Option<u64> = runs.iter().map(|run| run.locks).sum();
            let done: u64 = runs.iter().map(|run| run.ops).sum();
            taken.map(|taken| taken as f64 / done as f64)
        })
        .collect();
    let medians: Vec<&Outcome> = outcomes.iter_mut().map(|runs| median(runs)).collect();
    let rates: Vec<f64> = medians.iter().map(|run| run.rate()).collect();
    let baseline = kinds
        .iter()
        .position(|&k| k == workload.baseline())
        .unwrap();
    for (index, kind) in kinds.iter().enumerate() {
        if threads == 1 {
            single[index] = rates[index];
        }
        println!(
            "{:<18} {:>3}  {:<24} {:>8.2} {:>7.2}x {:>9.2}x {:>9} {:>6.1}%",
            workload.name(),
            threads,
            kind.name(),
            rates[index] / 1e6,
            rates[index] / single[index],
            rates[index] / rates[baseline],
            locks[index].map_or("-".to_string(), |per_op| format!("{per_op:.4}")),
            medians[index].queued * 100.0,
        );
    }
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("skipped (run it with `cargo bench -p rvos-kheap --bench smp`)");
        return;
    }
    let ops = env_or("KHEAP_BENCH_OPS", 2_000_000);
    let page_ops = env_or("KHEAP_BENCH_PAGE_OPS", ops);
    let rounds = env_or("KHEAP_BENCH_ROUNDS", 5).max(1) as usize;
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut thread_counts = vec![1, 2, parallelism.min(CPUS)];
    thread_counts.sort_unstable();
    thread_counts.dedup();

    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "kheap smp bench: {ops} ops per thread ({page_ops} for page churn), median of {rounds} \
         rounds, {} MiB arena ({} MiB for pages), sizes {MIN_SIZE}..={MAX_SIZE} B align \
         {ALIGN}, {PAGE_LIVE} page slots per thread; {parallelism} CPUs available; load \
         average {}",
        ARENA >> 20,
        PAGE_REGION >> 20,
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<18} {:>3}  {:<24} {:>8} {:>8} {:>10} {:>9} {:>7}",
        "workload", "thr", "allocator", "Mops/s", "speedup", "vs Mutex", "locks/op", "queued"
    );
    let arena = Arena::new();
    let started = Instant::now();
    for workload in Workload::ALL {
        let ops = match workload {
            Workload::PageChurn => page_ops,
            _ => ops,
        };
        let mut single = vec![0.0f64; workload.contenders().len()];
        for &threads in &thread_counts {
            rows(&arena, workload, threads, ops, rounds, &mut single);
        }
    }
    println!(
        "page churn: talc and buddy_system_allocator take no part (they are byte allocators)."
    );
    println!(
        "Mops/s: allocations and frees per second, all threads together; speedup: over the \
         same allocator on 1 thread; vs Mutex: over the workload's one-lock baseline (the slab, \
         or for page churn the buddy page allocator, behind one std Mutex); locks/op: kheap's \
         trips to its lock per operation (all rounds); queued: share of the threads' time \
         spent waiting for a CPU (other load on the machine). Total {:.1} s.",
        started.elapsed().as_secs_f64()
    );
}
