//! Multi-thread throughput of the cached heap next to one-lock heaps, with
//! std threads playing CPUs (each bench thread is its own CPU of the
//! cached heap).
//!
//! Allocators, each run through the same workload code ([`BenchAlloc`]):
//!
//! - **kheap**: `CachedHeap` (per-CPU magazines) over a kalloc
//!   `SlabAllocator<BuddyPageAllocator>`, through its `GlobalAlloc`;
//! - **mutex slab**: the same `SlabAllocator<BuddyPageAllocator>` behind
//!   one `std::sync::Mutex`, no caches: the one-global-lock baseline that
//!   every ratio is taken against;
//! - **talc**: a `TalcLock` over `spinning_top::RawSpinlock` with a
//!   `Manual` source and the arena claimed, as talc's README sets up a
//!   locked global heap;
//! - **buddy_system_allocator**: its spin-locked `LockedHeap<32>`,
//!   initialised over the arena as its README shows.
//!
//! Workloads (sizes uniform in 8..=2048 bytes, alignment 8; every block's
//! first word is written when it is handed out):
//!
//! - **churn**: each thread keeps up to 256 live blocks of its own and
//!   allocates or frees a random one with equal odds (xorshift, a fixed
//!   seed per thread); the blocks left at the end are freed too;
//! - **producer/consumer**: threads in pairs; the producer allocates
//!   blocks, writes each one's size into it and sends them 64 at a time
//!   over a bounded channel; the consumer reads the size and frees them
//!   (every free is remote). One thread alone produces a batch, then
//!   frees it; an odd thread out does the same.
//!
//! Each run has `KHEAP_BENCH_OPS` operations per thread (default 2
//! million; an allocation and a free are one operation each) and a fresh
//! allocator over the same 256 MiB arena, pre-faulted once, so no run pays
//! the host's page faults. Runs of one workload and thread count are
//! interleaved across the allocators, `KHEAP_BENCH_ROUNDS` rounds (default
//! 5); the table shows the median wall-clock throughput of all threads
//! together, the speedup over the same allocator with one thread, the
//! ratio to the mutex slab, for kheap the trips to its lock per operation
//! (`stats().lock_acquisitions`, over all rounds), and the share of the
//! threads' time spent runnable but waiting for a CPU (from
//! `/proc/thread-self/schedstat`): on a machine with other load, rows
//! with a high share measured the scheduler more than the allocator.
//! Thread counts: 1, 2 and the available parallelism, at most the 8 CPUs
//! of the host `Cpu`.
//!
//! Run: `cargo bench -p kheap --bench smp`. Without cargo bench's
//! `--bench` argument (as under `cargo test --benches`) it prints
//! `skipped` and returns.

#[path = "../tests/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::ptr::{self, NonNull};
use std::sync::mpsc::sync_channel;
use std::sync::{Barrier, Mutex};
use std::time::Instant;

use buddy_system_allocator::LockedHeap;
use kalloc::byte::SlabAllocator;
use kalloc::page::BuddyPageAllocator;
use kalloc::{BaseAllocator, ByteAllocator};
use kheap::CachedHeap;
use talc::TalcLock;
use talc::source::Manual;

use common::{CPUS, Depot, Heap, PAGE, set_cpu};

const ARENA: usize = 256 << 20;
const MIN_SIZE: usize = 8;
const MAX_SIZE: usize = 2048;
const ALIGN: usize = 8;
/// Live blocks per thread in the churn workload.
const LIVE: usize = 256;
/// Blocks per message in the producer/consumer workload.
const BATCH: usize = 64;
/// Messages the channel buffers before the producer waits.
const CHANNEL_BOUND: usize = 16;

/// What the workloads need of an allocator.
trait BenchAlloc: Sync {
    /// A block for `layout`, null on failure.
    fn alloc(&self, layout: Layout) -> *mut u8;

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` is a block `alloc` returned for `layout`, not freed since.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout);

    /// Trips to the allocator's lock so far, if it counts them.
    fn lock_acquisitions(&self) -> Option<u64> {
        None
    }
}

impl BenchAlloc for Heap {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a non-zero layout.
        unsafe { GlobalAlloc::alloc(self, layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { GlobalAlloc::dealloc(self, ptr, layout) }
    }

    fn lock_acquisitions(&self) -> Option<u64> {
        Some(self.stats().lock_acquisitions)
    }
}

/// The depot of the cached heap behind one mutex, without caches.
struct MutexSlab(Mutex<Depot>);

impl BenchAlloc for MutexSlab {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .unwrap()
            .alloc(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let block = NonNull::new(ptr).expect("free of null");
        // SAFETY: forwarded from the caller.
        unsafe { self.0.lock().unwrap().dealloc(block, layout) }.expect("slab refused a free");
    }
}

type Talc = TalcLock<spinning_top::RawSpinlock, Manual>;

impl BenchAlloc for Talc {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a non-zero layout.
        unsafe { GlobalAlloc::alloc(self, layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { GlobalAlloc::dealloc(self, ptr, layout) }
    }
}

type Buddy = LockedHeap<32>;

impl BenchAlloc for Buddy {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a non-zero layout.
        unsafe { GlobalAlloc::alloc(self, layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { GlobalAlloc::dealloc(self, ptr, layout) }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kheap,
    MutexSlab,
    Talc,
    Buddy,
}

const KINDS: [Kind; 4] = [Kind::Kheap, Kind::MutexSlab, Kind::Talc, Kind::Buddy];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Kheap => "kheap CachedHeap",
            Kind::MutexSlab => "slab + std Mutex",
            Kind::Talc => "talc TalcLock",
            Kind::Buddy => "buddy_system LockedHeap",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Churn,
    ProducerConsumer,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Churn => "churn",
            Workload::ProducerConsumer => "producer/consumer",
        }
    }
}

/// The memory every allocator is built over, one at a time.
struct Arena {
    start: *mut u8,
}

impl Arena {
    fn layout() -> Layout {
        Layout::from_size_align(ARENA, PAGE).unwrap()
    }

    /// A fresh arena, every page written once.
    fn new() -> Self {
        // SAFETY: a non-zero layout.
        let start = unsafe { std::alloc::alloc(Self::layout()) };
        assert!(!start.is_null(), "no memory for the arena");
        // SAFETY: the arena is `ARENA` bytes, ours.
        unsafe { ptr::write_bytes(start, 0, ARENA) };
        Self { start }
    }

    fn pages(&self) -> BuddyPageAllocator {
        let mut pages = BuddyPageAllocator::new();
        // SAFETY: the arena is ours and only the allocator being built
        // uses it (the previous one is gone).
        unsafe { pages.add_memory(self.start.expose_provenance(), ARENA) }.unwrap();
        pages
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.start, Self::layout()) };
    }
}

/// xorshift64: the same stream per seed, whatever the allocator.
struct XorShift(u64);

impl XorShift {
    fn new(thread: usize) -> Self {
        Self(0x9e37_79b9_7f4a_7c15 ^ ((thread as u64 + 1) * 0x2545_f491_4f6c_dd1d))
    }

    #[inline]
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    #[inline]
    fn size(&mut self) -> usize {
        MIN_SIZE + (self.next() % (MAX_SIZE - MIN_SIZE + 1) as u64) as usize
    }
}

#[inline]
fn layout(size: usize) -> Layout {
    // SAFETY: ALIGN is a power of two and sizes are far below isize::MAX.
    unsafe { Layout::from_size_align_unchecked(size, ALIGN) }
}

#[inline]
fn alloc_block<B: BenchAlloc>(alloc: &B, size: usize) -> *mut u8 {
    let block = alloc.alloc(layout(size));
    assert!(!block.is_null(), "allocation of {size} bytes failed");
    // SAFETY: a fresh block of at least 8 bytes, aligned to 8.
    unsafe { block.cast::<usize>().write(size) };
    block
}

#[inline]
fn free_block<B: BenchAlloc>(alloc: &B, block: *mut u8) {
    // SAFETY: a block of `alloc_block`, which wrote its size first.
    let size = unsafe { block.cast::<usize>().read() };
    // SAFETY: the block came from `alloc` for this layout, freed once.
    unsafe { alloc.dealloc(block, layout(size)) };
}

/// Nanoseconds the calling thread has spent runnable but waiting for a
/// CPU (the second field of `/proc/thread-self/schedstat`; 0 where there
/// is none).
fn run_delay() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A worker's view of one run: it starts when every thread is ready and
/// counts the time the thread then waited for a CPU (other programs on
/// the machine, or more threads than cores).
struct Timing(u64);

impl Timing {
    fn start(barrier: &Barrier) -> Self {
        barrier.wait();
        Self(run_delay())
    }

    /// The operations done, and the nanoseconds spent waiting for a CPU.
    fn stop(self, ops: u64) -> (u64, u64) {
        (ops, run_delay().saturating_sub(self.0))
    }
}

/// One thread of the churn workload.
fn churn<B: BenchAlloc>(alloc: &B, thread: usize, ops: u64, start: &Barrier) -> (u64, u64) {
    let mut rng = XorShift::new(thread);
    let mut live: Vec<*mut u8> = Vec::with_capacity(LIVE);
    let timing = Timing::start(start);
    for _ in 0..ops {
        let allocate = live.is_empty() || (live.len() < LIVE && rng.next() & 1 == 0);
        if allocate {
            let size = rng.size();
            live.push(alloc_block(alloc, size));
        } else {
            let victim = (rng.next() % live.len() as u64) as usize;
            free_block(alloc, live.swap_remove(victim));
        }
    }
    let left = live.len() as u64;
    for block in live {
        free_block(alloc, block);
    }
    timing.stop(ops + left)
}

/// A batch of blocks, as addresses, for the channel.
type Batch = [usize; BATCH];

fn produce<B: BenchAlloc>(alloc: &B, rng: &mut XorShift) -> Batch {
    let mut batch = [0; BATCH];
    for slot in &mut batch {
        *slot = alloc_block(alloc, rng.size()).expose_provenance();
    }
    batch
}

fn consume<B: BenchAlloc>(alloc: &B, batch: &Batch) {
    for &address in batch {
        free_block(alloc, ptr::with_exposed_provenance_mut(address));
    }
}

/// One thread producing and freeing its own batches.
fn solo<B: BenchAlloc>(alloc: &B, thread: usize, ops: u64, start: &Barrier) -> (u64, u64) {
    let mut rng = XorShift::new(thread);
    let batches = ops.div_ceil(2 * BATCH as u64);
    let timing = Timing::start(start);
    for _ in 0..batches {
        let batch = produce(alloc, &mut rng);
        consume(alloc, &batch);
    }
    timing.stop(batches * 2 * BATCH as u64)
}

/// What one run measured.
struct Outcome {
    ops: u64,
    seconds: f64,
    /// Share of the threads' time spent waiting for a CPU.
    queued: f64,
    /// Trips to the allocator's lock, if it counts them.
    locks: Option<u64>,
}

/// Runs `workload` on `threads` threads (thread `i` on CPU `i`).
fn run<B: BenchAlloc>(alloc: &B, workload: Workload, threads: usize, ops: u64) -> Outcome {
    let start = Barrier::new(threads + 1);
    let start = &start;
    std::thread::scope(|scope| {
        let mut workers = Vec::new();
        match workload {
            Workload::Churn => {
                for thread in 0..threads {
                    workers.push(scope.spawn(move || {
                        set_cpu(thread);
                        churn(alloc, thread, ops, start)
                    }));
                }
            }
            Workload::ProducerConsumer if threads == 1 => {
                workers.push(scope.spawn(move || {
                    set_cpu(0);
                    solo(alloc, 0, ops, start)
                }));
            }
            Workload::ProducerConsumer => {
                let batches = ops.div_ceil(BATCH as u64);
                for pair in 0..threads / 2 {
                    let (send, receive) = sync_channel::<Batch>(CHANNEL_BOUND);
                    let producer = 2 * pair;
                    workers.push(scope.spawn(move || {
                        set_cpu(producer);
                        let mut rng = XorShift::new(producer);
                        let timing = Timing::start(start);
                        for _ in 0..batches {
                            send.send(produce(alloc, &mut rng)).unwrap();
                        }
                        timing.stop(batches * BATCH as u64)
                    }));
                    workers.push(scope.spawn(move || {
                        set_cpu(producer + 1);
                        let timing = Timing::start(start);
                        let mut done = 0;
                        for batch in receive {
                            consume(alloc, &batch);
                            done += BATCH as u64;
                        }
                        timing.stop(done)
                    }));
                }
                if threads % 2 == 1 {
                    let thread = threads - 1;
                    workers.push(scope.spawn(move || {
                        set_cpu(thread);
                        solo(alloc, thread, ops, start)
                    }));
                }
            }
        }
        start.wait();
        let began = Instant::now();
        let (mut done, mut queued) = (0, 0);
        for worker in workers {
            let (ops, waited) = worker.join().unwrap();
            done += ops;
            queued += waited;
        }
        let seconds = began.elapsed().as_secs_f64();
        Outcome {
            ops: done,
            seconds,
            queued: queued as f64 / 1e9 / (seconds * threads as f64),
            locks: alloc.lock_acquisitions(),
        }
    })
}

/// One run of `kind` over `arena`, the allocator built fresh.
fn run_kind(kind: Kind, arena: &Arena, workload: Workload, threads: usize, ops: u64) -> Outcome {
    match kind {
        Kind::Kheap => {
            let heap: Box<Heap> = Box::new(CachedHeap::new("bench heap"));
            heap.init(SlabAllocator::new(arena.pages()));
            run(&*heap, workload, threads, ops)
        }
        Kind::MutexSlab => {
            let slab = MutexSlab(Mutex::new(SlabAllocator::new(arena.pages())));
            run(&slab, workload, threads, ops)
        }
        Kind::Talc => {
            let talc: Talc = TalcLock::new(Manual);
            // SAFETY: the arena is ours, used by this allocator alone
            // while it lives.
            let end = unsafe { talc.lock().claim(arena.start, ARENA) };
            assert!(end.is_some(), "talc could not claim the arena");
            run(&talc, workload, threads, ops)
        }
        Kind::Buddy => {
            let buddy = Buddy::empty();
            // SAFETY: as for talc.
            unsafe { buddy.lock().init(arena.start.expose_provenance(), ARENA) };
            run(&buddy, workload, threads, ops)
        }
    }
}

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

/// The outcome of the median round by throughput.
fn median(outcomes: &mut [Outcome]) -> &Outcome {
    outcomes.sort_by(|a, b| (a.ops as f64 / a.seconds).total_cmp(&(b.ops as f64 / b.seconds)));
    &outcomes[outcomes.len() / 2]
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("skipped (run it with `cargo bench -p kheap --bench smp`)");
        return;
    }
    let ops = env_or("KHEAP_BENCH_OPS", 2_000_000);
    let rounds = env_or("KHEAP_BENCH_ROUNDS", 5).max(1) as usize;
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut thread_counts = vec![1, 2, parallelism.min(CPUS)];
    thread_counts.sort_unstable();
    thread_counts.dedup();

    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "kheap smp bench: {ops} ops per thread, median of {rounds} rounds, {} MiB arena, \
         sizes {MIN_SIZE}..={MAX_SIZE} B align {ALIGN}; {parallelism} CPUs available; \
         load average {}",
        ARENA >> 20,
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<18} {:>3}  {:<24} {:>8} {:>8} {:>10} {:>9} {:>7}",
        "workload", "thr", "allocator", "Mops/s", "speedup", "vs slab+M", "locks/op", "queued"
    );
    let arena = Arena::new();
    let started = Instant::now();
    for workload in [Workload::Churn, Workload::ProducerConsumer] {
        let mut single = [0.0f64; KINDS.len()];
        for &threads in &thread_counts {
            let mut outcomes: Vec<Vec<Outcome>> = (0..KINDS.len())
                .map(|_| Vec::with_capacity(rounds))
                .collect();
            for round in 0..rounds {
                // Each round starts with another allocator, so a change
                // in the machine's load hits all of them alike.
                for step in 0..KINDS.len() {
                    let index = (round + step) % KINDS.len();
                    outcomes[index].push(run_kind(KINDS[index], &arena, workload, threads, ops));
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
            let rates: Vec<f64> = medians
                .iter()
                .map(|run| run.ops as f64 / run.seconds)
                .collect();
            let baseline = rates[KINDS.iter().position(|&k| k == Kind::MutexSlab).unwrap()];
            for (index, kind) in KINDS.iter().enumerate() {
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
                    rates[index] / baseline,
                    locks[index].map_or("-".to_string(), |per_op| format!("{per_op:.4}")),
                    medians[index].queued * 100.0,
                );
            }
        }
    }
    println!(
        "Mops/s: allocations and frees per second, all threads together; speedup: over the \
         same allocator on 1 thread; vs slab+M: over the slab behind one std Mutex; locks/op: \
         kheap's trips to its lock per operation (all rounds); queued: share of the threads' \
         time spent waiting for a CPU (other load on the machine). Total {:.1} s.",
        started.elapsed().as_secs_f64()
    );
}
