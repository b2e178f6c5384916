//! The workloads: churn and producer/consumer over a byte allocator, and
//! order-0 page churn over a page allocator, each thread on the CPU of
//! its index.

use std::alloc::Layout;
use std::ptr;
use std::sync::Barrier;
use std::sync::mpsc::sync_channel;

use crate::allocators::{BenchAlloc, Kind};
use crate::common::set_cpu;
use crate::pages::BenchPages;
use crate::timing::{Job, Outcome, Timing, time_jobs};

pub const MIN_SIZE: usize = 8;
pub const MAX_SIZE: usize = 2048;
pub const ALIGN: usize = 8;
/// Live blocks per thread in the churn workload.
const LIVE: usize = 256;
/// Blocks per message in the producer/consumer workload.
const BATCH: usize = 64;
/// Messages the channel buffers before the producer waits.
const CHANNEL_BOUND: usize = 16;
/// Slots for live pages per thread in the page churn workload.
pub const PAGE_LIVE: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Churn,
    ProducerConsumer,
    PageChurn,
}

impl Workload {
    pub const ALL: [Workload; 3] = [
        Workload::Churn,
        Workload::ProducerConsumer,
        Workload::PageChurn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Churn => "churn",
            Workload::ProducerConsumer => "producer/consumer",
            Workload::PageChurn => "page churn",
        }
    }

    /// The allocators that take part, in table order.
    pub fn contenders(self) -> &'static [Kind] {
        match self {
            Workload::Churn | Workload::ProducerConsumer => {
                &[Kind::Kheap, Kind::MutexSlab, Kind::Talc, Kind::Buddy]
            }
            Workload::PageChurn => &[Kind::PageCaches, Kind::MutexPages],
        }
    }

    /// The one-lock baseline every ratio is taken against.
    pub fn baseline(self) -> Kind {
        match self {
            Workload::Churn | Workload::ProducerConsumer => Kind::MutexSlab,
            Workload::PageChurn => Kind::MutexPages,
        }
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

/// Runs the byte workload `workload` on `threads` threads (thread `i` on
/// CPU `i`).
pub fn run<B: BenchAlloc>(alloc: &B, workload: Workload, threads: usize, ops: u64) -> Outcome {
    let mut jobs: Vec<Job<'_>> = Vec::with_capacity(threads);
    match workload {
        Workload::Churn => {
            for thread in 0..threads {
                jobs.push(Box::new(move |start| {
                    set_cpu(thread);
                    churn(alloc, thread, ops, start)
                }));
            }
        }
        Workload::ProducerConsumer => {
            let batches = ops.div_ceil(BATCH as u64);
            for pair in 0..threads / 2 {
                let (send, receive) = sync_channel::<Batch>(CHANNEL_BOUND);
                let producer = 2 * pair;
                jobs.push(Box::new(move |start| {
                    set_cpu(producer);
                    let mut rng = XorShift::new(producer);
                    let timing = Timing::start(start);
                    for _ in 0..batches {
                        send.send(produce(alloc, &mut rng)).unwrap();
                    }
                    timing.stop(batches * BATCH as u64)
                }));
                jobs.push(Box::new(move |start| {
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
                jobs.push(Box::new(move |start| {
                    set_cpu(thread);
                    solo(alloc, thread, ops, start)
                }));
            }
        }
        Workload::PageChurn => unreachable!("page churn runs on page allocators"),
    }
    time_jobs(jobs, || alloc.lock_acquisitions())
}

/// Takes a page and writes its address into its first word.
#[inline]
fn take_page<P: BenchPages>(pages: &P) -> usize {
    let addr = pages.alloc_page();
    let first = ptr::with_exposed_provenance_mut::<usize>(addr);
    // SAFETY: a fresh page of the arena (whose provenance was exposed
    // when the allocator was given it), ours until freed.
    unsafe { first.write(addr) };
    addr
}

/// Checks a page's first word and frees it.
#[inline]
fn give_page<P: BenchPages>(pages: &P, addr: usize) {
    let first = ptr::with_exposed_provenance::<usize>(addr);
    // SAFETY: a page of `take_page`, not freed since.
    let mark = unsafe { first.read() };
    assert_eq!(mark, addr, "page {addr:#x} written by someone else");
    pages.free_page(addr);
}

/// One thread of the page churn: a random one of `PAGE_LIVE` slots,
/// freed if it holds a page, else given a fresh one; the pages left at
/// the end are freed too.
fn page_thread<P: BenchPages>(pages: &P, thread: usize, ops: u64, start: &Barrier) -> (u64, u64) {
    let mut rng = XorShift::new(thread);
    let mut live = [0usize; PAGE_LIVE];
    let timing = Timing::start(start);
    for _ in 0..ops {
        let slot = &mut live[(rng.next() % PAGE_LIVE as u64) as usize];
        if *slot == 0 {
            *slot = take_page(pages);
        } else {
            give_page(pages, *slot);
            *slot = 0;
        }
    }
    let mut left = 0;
    for addr in live.into_iter().filter(|&addr| addr != 0) {
        give_page(pages, addr);
        left += 1;
    }
    timing.stop(ops + left)
}

/// Runs the page churn on `threads` threads (thread `i` on CPU `i`).
pub fn page_churn<P: BenchPages>(pages: &P, threads: usize, ops: u64) -> Outcome {
    let jobs: Vec<Job<'_>> = (0..threads)
        .map(|thread| -> Job<'_> {
            Box::new(move |start| {
                set_cpu(thread);
                page_thread(pages, thread, ops, start)
            })
        })
        .collect();
    time_jobs(jobs, || pages.lock_acquisitions())
}
