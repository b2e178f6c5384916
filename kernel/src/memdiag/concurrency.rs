//! Concurrency on every hart: each hart drives two seeded workloads (bytes
//! through the global allocator, pages through the page allocator) for a
//! bounded time, every block filled with its owner/sequence pattern and
//! checked before it is freed; blocks are handed to the next hart, which
//! checks and frees them (cross-hart frees). Afterwards every counter is
//! back at its starting value. A second run does the same while the timer
//! interrupt allocates and frees on every tick.

use crate::arch::{PAGE_SIZE, cpu, hart, smp, timer};
use crate::ktest::prelude::*;
use crate::memdiag::targets::{self, Frames, GlobalHeap, Mailbox, snapshot};
use crate::memory::heap;
use crate::sync::IrqSpinLock;
use alloc::boxed::Box;
use core::sync::atomic::Ordering;
use core::sync::atomic::{AtomicBool, AtomicU64};
use workload::{Aligns, Generator, Lifetimes, Sizes, Spec, Target};

/// Harts taking part (slots beyond stay idle in the job).
const TEST_HARTS: usize = 8;
/// Blocks in flight from one hart to the next.
const MAILBOX: usize = 16;
const SEED: u64 = 0x5eed_0005;
/// Live blocks per hart (bounds the work left after the deadline: under
/// an oversubscribed host every lock handoff can wait for a vCPU).
const BYTE_LIVE: usize = 32;
const PAGE_LIVE: usize = 8;
/// Tick rate during the runs (and so also of the timer-interrupt hook).
const TEST_TIMER_HZ: u32 = 1000;

static BYTE_MAIL: [IrqSpinLock<Mailbox<MAILBOX>>; TEST_HARTS] =
    [const { IrqSpinLock::new("byte mailbox", Mailbox::new()) }; TEST_HARTS];
static PAGE_MAIL: [IrqSpinLock<Mailbox<MAILBOX>>; TEST_HARTS] =
    [const { IrqSpinLock::new("page mailbox", Mailbox::new()) }; TEST_HARTS];
static FAILURE: IrqSpinLock<Option<(usize, workload::Failure)>> =
    IrqSpinLock::new("workload failure", None);
static DEADLINE: AtomicU64 = AtomicU64::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);
static CROSS_FREES: AtomicU64 = AtomicU64::new(0);
static ROUNDS: AtomicU64 = AtomicU64::new(0);

fn participants() -> usize {
    smp::online_count().min(TEST_HARTS)
}

fn byte_spec(slot: usize) -> Spec {
    Spec {
        seed: SEED ^ slot as u64,
        sizes: Sizes::Random { min: 1, max: 6000 },
        aligns: Aligns::Occasional { max: 256 },
        lifetimes: Lifetimes::Random,
        max_live: BYTE_LIVE,
        free_percent: 50,
        oom_expected: false,
        owner: slot as u32,
    }
}

fn page_spec(slot: usize) -> Spec {
    Spec {
        seed: SEED.rotate_left(17) ^ slot as u64,
        sizes: Sizes::Pages {
            page_size: PAGE_SIZE,
            max_pages: 8,
        },
        aligns: Aligns::Natural,
        lifetimes: Lifetimes::Random,
        max_live: PAGE_LIVE,
        free_percent: 50,
        oom_expected: false,
        owner: 1000 + slot as u32,
    }
}

fn record(slot: usize, result: Result<(), workload::Failure>) -> bool {
    match result {
        Ok(()) => true,
        Err(failure) => {
            FAILURE.lock().get_or_insert((slot, failure));
            false
        }
    }
}

/// [`targets::exchange`] among the test's harts.
fn exchange(
    slot: usize,
    generator: &mut Generator<'_>,
    target: &mut impl Target,
    mail: &[IrqSpinLock<Mailbox<MAILBOX>>],
) -> Result<(), workload::Failure> {
    targets::exchange(slot, participants(), generator, target, mail, &CROSS_FREES)
}

fn hammer(slot: usize) {
    if slot >= participants() {
        return;
    }
    let mut byte_slots = [None; BYTE_LIVE];
    let mut page_slots = [None; PAGE_LIVE];
    let mut bytes = Generator::new(byte_spec(slot), &mut byte_slots);
    let mut frames = Generator::new(page_spec(slot), &mut page_slots);
    let deadline = DEADLINE.load(Ordering::Acquire);
    let mut round = 0u64;
    let mut run = || -> Result<(), workload::Failure> {
        while cpu::ticks() < deadline {
            bytes.run(&mut GlobalHeap, 16)?;
            frames.run(&mut Frames, 2)?;
            exchange(slot, &mut bytes, &mut GlobalHeap, &BYTE_MAIL)?;
            if round.is_multiple_of(4) {
                exchange(slot, &mut frames, &mut Frames, &PAGE_MAIL)?;
            }
            round += 1;
            if FAILURE.lock().is_some() {
                break;
            }
        }
        bytes.drain(&mut GlobalHeap)?;
        frames.drain(&mut Frames)?;
        Ok(())
    };
    let ok = record(slot, run());
    ROUNDS.fetch_add(round, Ordering::Relaxed);
    if ok {
        let (b, f) = (bytes.summary(), frames.summary());
        ALLOCS.fetch_add(b.allocs + f.allocs, Ordering::Relaxed);
        FREES.fetch_add(b.frees + f.frees, Ordering::Relaxed);
    }
}

/// Frees what is left in the mailboxes (checked) once every hart stopped.
fn drain_mailboxes() -> Result<(), workload::Failure> {
    let mut slots = [None; MAILBOX];
    let mut adopt = Generator::new(byte_spec(0), &mut slots);
    for (mail, is_pages) in [(&BYTE_MAIL, false), (&PAGE_MAIL, true)] {
        for mailbox in mail.iter() {
            loop {
                let popped = mailbox.lock().pop();
                let Some(block) = popped else { break };
                if is_pages {
                    adopt.check_and_free(&mut Frames, block)?;
                } else {
                    adopt.check_and_free(&mut GlobalHeap, block)?;
                }
                CROSS_FREES.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    FREES.fetch_add(adopt.summary().frees, Ordering::Relaxed);
    Ok(())
}

/// Runs `hammer` on every hart for `millis` (with `tick_hook` on every
/// timer interrupt meanwhile) and checks the counters.
#[allow(clippy::result_large_err, reason = "signature of every test")]
fn run_everywhere(millis: u64, label: &str, tick_hook: Option<fn()>) -> crate::ktest::TestResult {
    let before = snapshot();
    ALLOCS.store(0, Ordering::Relaxed);
    FREES.store(0, Ordering::Relaxed);
    CROSS_FREES.store(0, Ordering::Relaxed);
    *FAILURE.lock() = None;
    let timebase = crate::platform::get().timebase_hz;
    DEADLINE.store(cpu::ticks() + timebase * millis / 1000, Ordering::Release);
    ROUNDS.store(0, Ordering::Relaxed);
    // Fast ticks for the run: under QEMU's TCG a hart spinning on a lock
    // whose holder's vCPU is not scheduled waits for an interrupt, so the
    // boot rate (100 Hz) would leave the harts mostly waiting.
    let normal = timer::interval();
    timer::configure(timebase, TEST_TIMER_HZ);
    timer::set_hook(tick_hook);
    smp::run_on_all_harts(hammer);
    timer::set_hook(None);
    timer::configure(timebase, timebase.checked_div(normal).unwrap_or(0) as u32);
    let drained = drain_mailboxes();
    if let Some((slot, failure)) = *FAILURE.lock() {
        kassert!(false, "hart slot {slot}: {failure}");
    }
    if let Err(failure) = drained {
        kassert!(false, "mailbox drain: {failure}");
    }
    let after = snapshot();
    crate::println!(
        "\n    {label}: {} harts, {} rounds, {} allocs, {} frees ({} cross-hart)\n    {label}: before {before}\n    {label}: after  {after}",
        participants(),
        ROUNDS.load(Ordering::Relaxed),
        ALLOCS.load(Ordering::Relaxed),
        FREES.load(Ordering::Relaxed),
        CROSS_FREES.load(Ordering::Relaxed),
    );
    kassert!(
        CROSS_FREES.load(Ordering::Relaxed) > 0 || participants() == 1,
        "no block crossed harts"
    );
    kassert_eq!(
        ALLOCS.load(Ordering::Relaxed),
        FREES.load(Ordering::Relaxed),
        "every block allocated was freed"
    );
    kassert_eq!(after.live_blocks, before.live_blocks);
    kassert_eq!(after.live_bytes, before.live_bytes);
    kassert_eq!(after.large_pages, before.large_pages);
    kassert_eq!(after.heap_used_bytes, before.heap_used_bytes);
    if heap::kind() == Some(heap::HeapKind::Buddy) {
        // The byte buddy keeps the pools it grew (kalloc cannot detach
        // them); everything else must be back.
        kassert_eq!(
            after.pages_used - after.heap_pages,
            before.pages_used - before.heap_pages
        );
    } else {
        kassert_eq!(after.heap_pages, before.heap_pages);
        kassert_eq!(after.pages_used, before.pages_used);
    }
    Ok(())
}

ktest! {
    fn all_harts_allocate_and_free_pages_and_bytes_with_cross_hart_frees() {
        run_everywhere(1000, "concurrency", None)
    }
}

static HOOK_RUNS: AtomicU64 = AtomicU64::new(0);
static HOOK_BROKEN: AtomicBool = AtomicBool::new(false);

/// Allocates and frees inside the timer interrupt, checking contents.
fn allocate_in_interrupt() {
    let salt = HOOK_RUNS.fetch_add(1, Ordering::Relaxed);
    let len = 16 + (salt % 200) as usize;
    let numbers: alloc::vec::Vec<u64> = (0..len as u64).map(|i| i ^ salt).collect();
    let boxed = Box::new([salt as u8; 40]);
    let text = alloc::format!("tick {salt} on hart {}", hart::current().hart_id());
    let intact = numbers
        .iter()
        .enumerate()
        .all(|(i, &n)| n == i as u64 ^ salt)
        && boxed.iter().all(|&b| b == salt as u8)
        && text.starts_with("tick ");
    if !intact {
        HOOK_BROKEN.store(true, Ordering::Relaxed);
    }
}

ktest! {
    fn timer_interrupts_allocate_while_the_interrupted_code_allocates() {
        kassert!(timer::interval() > 0, "timer_hz=0: no interrupts to test with");
        HOOK_RUNS.store(0, Ordering::Relaxed);
        HOOK_BROKEN.store(false, Ordering::Relaxed);
        run_everywhere(600, "interrupts", Some(allocate_in_interrupt))?;
        let runs = HOOK_RUNS.load(Ordering::Relaxed);
        crate::println!("    interrupts: {runs} timer-interrupt allocations");
        kassert!(runs > 0, "the timer hook never ran");
        kassert!(!HOOK_BROKEN.load(Ordering::Relaxed), "a block allocated in the interrupt handler was corrupted");
        Ok(())
    }
}
