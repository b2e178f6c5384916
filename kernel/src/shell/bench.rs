//! `bench [allocator]`: a short throughput run of the allocators inside
//! the running kernel, on this hart, with the `workload` crate's seeded
//! generator (random sizes, random lifetimes, every block filled with a
//! pattern and checked before it is freed). All allocators of one call
//! run the same spec, one after the other, so the ops/s column compares
//! them; the ratio column is against the first allocator of its group
//! (byte allocators against `heap`, page allocators against `pages-buddy`).
//!
//! Fresh instances run over a region taken from the page allocator (and
//! given back afterwards); `heap` drives the live global allocator and
//! `slab` a fresh slab allocator fed by the page allocator. Each run
//! starts with an untimed warm-up (see `measure`). Timer interrupts keep
//! running, so figures carry a little noise.

use super::Monitor;
use crate::arch::{PAGE_SIZE, cpu};
use crate::memdiag::targets::GlobalHeap;
use crate::memory::{heap, pages};
use core::fmt::Write;
use kalloc::AllocError;
use kalloc::byte::{BuddyByteAllocator, SlabAllocator, Tlsf};
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator};
use kshell::{ArgError, Args, CommandError};
use workload::{Block, Bytes, Generator, Pages, Sizes, Spec, Target};

const BYTE_STEPS: u64 = 40_000;
const PAGE_STEPS: u64 = 10_000;
const LIVE: usize = 256;
/// Pages of the region fresh allocators manage (4 MiB).
const REGION_PAGES: usize = 1024;
const SEED: u64 = 0x5eed_0008;
/// `bench smp`: operations per hart and run.
const SMP_OPS: u64 = 20_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Subject {
    Heap,
    Tlsf,
    Slab,
    ByteBuddy,
    PageBuddy,
    PageBitmap,
}

const SUBJECTS: [(&str, Subject, &str); 6] = [
    (
        "heap",
        Subject::Heap,
        "the live kernel heap (global allocator)",
    ),
    ("tlsf", Subject::Tlsf, "fresh TLSF over 4 MiB"),
    (
        "slab",
        Subject::Slab,
        "fresh slab allocator (kmalloc classes)",
    ),
    ("buddy", Subject::ByteBuddy, "fresh byte buddy over 4 MiB"),
    (
        "pages-buddy",
        Subject::PageBuddy,
        "fresh buddy page allocator over 4 MiB",
    ),
    (
        "pages-bitmap",
        Subject::PageBitmap,
        "fresh bitmap page allocator over 4 MiB",
    ),
];

fn byte_spec() -> Spec {
    Spec::random(SEED, 8, 1024, LIVE)
}

fn page_spec() -> Spec {
    Spec {
        sizes: Sizes::Pages {
            page_size: PAGE_SIZE,
            max_pages: 8,
        },
        max_live: 64,
        ..Spec::random(SEED, PAGE_SIZE, 8 * PAGE_SIZE, 64)
    }
}

/// Runs `spec` for `steps` against `target` and drains it; (ops, ticks).
/// A tenth of the steps run first, untimed, and are drained: QEMU
/// translates code the first time it runs it, the workload's own code (the
/// generator, the pattern fill and check) is shared by every row and each
/// allocator's code is its own, and a fresh allocator grows its first
/// slabs or pools; every row is timed warm.
fn measure(
    target: &mut impl Target,
    spec: Spec,
    steps: u64,
) -> Result<(u64, u64), workload::Failure> {
    // About 10 KiB: the boot stack has 64.
    let mut slots = [None::<Block>; LIVE];
    let mut warm_up = Generator::new(spec, &mut slots);
    warm_up.run(target, steps / 10)?;
    warm_up.drain(target)?;
    let mut generator = Generator::new(spec, &mut slots);
    let start = cpu::ticks();
    generator.run(target, steps)?;
    let summary = generator.drain(target)?;
    let ticks = cpu::ticks() - start;
    Ok((summary.allocs + summary.frees, ticks.max(1)))
}

/// A region of fresh pages for a fresh allocator, given back on drop.
type Outcome = Result<(u64, u64), BenchError>;

enum BenchError {
    Setup(AllocError),
    Workload(workload::Failure),
}

impl From<workload::Failure> for BenchError {
    fn from(failure: workload::Failure) -> Self {
        Self::Workload(failure)
    }
}

fn run_byte<A: kalloc::ByteAllocator>(allocator: A) -> Outcome {
    pages::lend(REGION_PAGES, allocator, |allocator| {
        measure(&mut Bytes(allocator), byte_spec(), BYTE_STEPS)
    })
    .map_err(BenchError::Setup)?
    .map_err(BenchError::from)
}

fn run_page<P: kalloc::PageAllocator>(allocator: P) -> Outcome {
    pages::lend(REGION_PAGES, allocator, |allocator| {
        measure(&mut Pages(allocator), page_spec(), PAGE_STEPS)
    })
    .map_err(BenchError::Setup)?
    .map_err(BenchError::from)
}

fn run(subject: Subject) -> Outcome {
    match subject {
        Subject::Heap => Ok(measure(&mut GlobalHeap, byte_spec(), BYTE_STEPS)?),
        Subject::Tlsf => run_byte(Tlsf::new()),
        Subject::ByteBuddy => run_byte(BuddyByteAllocator::new()),
        Subject::Slab => {
            let mut slab = SlabAllocator::new(heap::GlobalPages::default());
            let result = measure(&mut Bytes(&mut slab), byte_spec(), BYTE_STEPS);
            // Every object is freed: give every slab back.
            slab.shrink();
            Ok(result?)
        }
        Subject::PageBuddy => run_page(BuddyPageAllocator::new()),
        Subject::PageBitmap => run_page(BitmapPageAllocator::new()),
    }
}

/// `bench [allocator|list]`
pub fn bench<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let only = args.next_word();
    if only == Some("smp") {
        let ops = args.number_in_or(SMP_OPS, 1_000..=10_000_000)?;
        args.end()?;
        monitor.ledger.forget_freed();
        return bench_smp(ops, out);
    }
    args.end()?;
    if only == Some("list") {
        for (name, _, what) in SUBJECTS {
            writeln!(out, "  {name:<13} {what}")?;
        }
        return Ok(());
    }
    if let Some(word) = only
        && !SUBJECTS.iter().any(|(name, _, _)| *name == word)
    {
        return Err(ArgError::Invalid {
            word,
            expected: "heap, tlsf, slab, buddy, pages-buddy, pages-bitmap, list or smp [ops]",
        }
        .into());
    }
    // Other blocks come and go: a freed record may be reused from now on.
    monitor.ledger.forget_freed();
    let timebase = crate::platform::get().timebase_hz;
    writeln!(
        out,
        "seed {SEED:#x}; bytes: {BYTE_STEPS} steps, 8..1024 B, {LIVE} live; \
         pages: {PAGE_STEPS} steps, 1..8 pages, 64 live; pattern fill+check included"
    )?;
    writeln!(
        out,
        "{:<13} {:>9} {:>10} {:>12} {:>6}",
        "allocator", "ops", "ms", "ops/s", "ratio"
    )?;
    let mut first_rate: Option<u64> = None;
    let mut failed = false;
    for (name, subject, _) in SUBJECTS {
        if only.is_some_and(|word| word != name) {
            continue;
        }
        if subject == Subject::PageBuddy {
            // A different workload: its ratios start again.
            first_rate = None;
        }
        match run(subject) {
            Ok((ops, ticks)) => {
                let rate = (ops as u128 * timebase as u128 / ticks as u128) as u64;
                let base = *first_rate.get_or_insert(rate);
                let ratio = rate * 100 / base.max(1);
                writeln!(
                    out,
                    "{name:<13} {ops:>9} {:>10} {rate:>12} {:>3}.{:02}",
                    ticks * 1000 / timebase.max(1),
                    ratio / 100,
                    ratio % 100
                )?;
            }
            Err(BenchError::Setup(error)) => {
                writeln!(out, "{name:<13} could not start: {error}")?;
                failed = true;
            }
            Err(BenchError::Workload(failure)) => {
                writeln!(out, "{name:<13} FAILED: {failure}")?;
                failed = true;
            }
        }
    }
    if failed {
        return Err(CommandError::Failed("an allocator failed its run"));
    }
    Ok(())
}

/// `bench smp [ops]`: each workload of `memdiag::smp_bench` on 1, 2, ...
/// harts; aggregate ops/s, speedup over one hart, and the global
/// allocator's lock acquisitions per operation.
fn bench_smp<'a>(ops: u64, out: &mut dyn Write) -> Result<(), CommandError<'a>> {
    use crate::memdiag::smp_bench::{self, Workload};
    let timebase = crate::platform::get().timebase_hz;
    let heap = &crate::memory::global::HEAP;
    writeln!(
        out,
        "bench smp: {ops} operations per hart; heap {}{}; page allocator{}; {} harts online",
        heap::kind().map_or("?", heap::HeapKind::name),
        if heap.caches_enabled() {
            " with per-hart caches"
        } else {
            " (no per-hart caches)"
        },
        if pages::lists_enabled() {
            " with per-hart lists"
        } else {
            " (no per-hart lists)"
        },
        crate::arch::smp::online_count()
    )?;
    writeln!(
        out,
        "workload harts        ops      ms        ops/s  speedup  locks/op (heap, pages)  failures"
    )?;
    for workload in Workload::ALL {
        let mut one_hart = 0;
        for harts in 1..=smp_bench::max_harts() {
            let run = smp_bench::run(workload, harts, ops);
            let rate = run.ops * timebase / run.ticks.max(1);
            if harts == 1 {
                one_hart = rate.max(1);
            }
            let speedup = rate * 100 / one_hart;
            let per_op = |locks: u64| {
                let x10000 = locks * 10_000 / run.ops.max(1);
                (x10000 / 10_000, x10000 % 10_000)
            };
            let ((heap_whole, heap_frac), (page_whole, page_frac)) =
                (per_op(run.heap_locks), per_op(run.page_locks));
            writeln!(
                out,
                "{:<8} {:>5} {:>10} {:>7} {:>12} {:>5}.{:02}  {heap_whole:>4}.{heap_frac:04} {page_whole:>4}.{page_frac:04}  {:>12}",
                workload.name(),
                run.harts,
                run.ops,
                run.ticks * 1000 / timebase,
                rate,
                speedup / 100,
                speedup % 100,
                run.failures
            )?;
        }
    }
    Ok(())
}
