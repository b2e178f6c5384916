//! What each hart does in stress mode: two seeded workloads (bytes through
//! the global allocator, pages through the page allocator) whose shapes
//! rotate every epoch, blocks handed to the next hart through a mailbox
//! (cross-hart frees), and the timer interrupt allocating too. Injected
//! failures are expected (`oom_expected`) and counted.

use crate::arch::{PAGE_SIZE, cpu};
use crate::memdiag::targets::{self, Frames, GlobalHeap, Mailbox};
use crate::memory::global::try_box;
use crate::memory::pages;
use crate::sync::IrqSpinLock;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use workload::{Aligns, Failure, Generator, Lifetimes, Sizes, Spec, Summary, Target};

/// Harts that run workloads (`SMP=8` fits; more stay idle).
pub const STRESS_HARTS: usize = 8;
const MAILBOX: usize = 32;
const BYTE_LIVE: usize = 64;
const PAGE_LIVE: usize = 16;
/// Rounds per epoch: then the live sets drain and the shapes change.
const EPOCH_ROUNDS: u64 = 256;

/// Run-wide counters (all harts).
pub struct Totals {
    pub allocs: AtomicU64,
    pub frees: AtomicU64,
    pub cross_frees: AtomicU64,
    /// `NoMemory` seen by the workloads and the timer hook.
    pub failures_seen: AtomicU64,
    pub hook_runs: AtomicU64,
    pub peak_pages_used: AtomicUsize,
    pub epochs: AtomicU64,
}

pub static TOTALS: Totals = Totals {
    allocs: AtomicU64::new(0),
    frees: AtomicU64::new(0),
    cross_frees: AtomicU64::new(0),
    failures_seen: AtomicU64::new(0),
    hook_runs: AtomicU64::new(0),
    peak_pages_used: AtomicUsize::new(0),
    epochs: AtomicU64::new(0),
};

/// The first failure any hart saw, with its hart slot.
pub static FAILURE: IrqSpinLock<Option<(usize, Failure)>> =
    IrqSpinLock::new("stress failure", None);
pub static HOOK_BROKEN: AtomicBool = AtomicBool::new(false);
pub static DEADLINE: AtomicU64 = AtomicU64::new(0);
pub static SEED: AtomicU64 = AtomicU64::new(0);
/// Called by hart slot 0 between rounds (the periodic report).
pub static REPORT: IrqSpinLock<Option<fn()>> = IrqSpinLock::new("stress report", None);

pub static BYTE_MAIL: [IrqSpinLock<Mailbox<MAILBOX>>; STRESS_HARTS] =
    [const { IrqSpinLock::new("stress byte mailbox", Mailbox::new()) }; STRESS_HARTS];
pub static PAGE_MAIL: [IrqSpinLock<Mailbox<MAILBOX>>; STRESS_HARTS] =
    [const { IrqSpinLock::new("stress page mailbox", Mailbox::new()) }; STRESS_HARTS];

/// The byte workload of `slot` in `epoch`: every size shape and lifetime
/// policy comes round, different harts on different ones at once.
pub fn byte_spec(slot: usize, epoch: u64) -> Spec {
    let turn = slot as u64 + epoch;
    let sizes = match turn % 6 {
        0 => Sizes::Random { min: 1, max: 6000 },
        1 => Sizes::PowersOfTwo { min: 8, max: 8192 },
        2 => Sizes::Odd { min: 1, max: 2047 },
        3 => Sizes::Increasing {
            min: 8,
            max: 3000,
            step: 24,
        },
        4 => Sizes::Decreasing {
            min: 8,
            max: 3000,
            step: 40,
        },
        _ => Sizes::Random { min: 16, max: 256 },
    };
    let lifetimes = match (turn / 6) % 4 {
        0 => Lifetimes::Random,
        1 => Lifetimes::Lifo,
        2 => Lifetimes::Fifo,
        _ => Lifetimes::Mixed {
            long_lived_percent: 10,
        },
    };
    Spec {
        seed: SEED.load(Ordering::Relaxed) ^ ((slot as u64) << 32) ^ epoch,
        sizes,
        aligns: Aligns::Occasional { max: 256 },
        lifetimes,
        max_live: BYTE_LIVE,
        free_percent: 50,
        oom_expected: true,
        owner: slot as u32,
    }
}

pub fn page_spec(slot: usize, epoch: u64) -> Spec {
    Spec {
        seed: SEED.load(Ordering::Relaxed).rotate_left(17) ^ ((slot as u64) << 32) ^ epoch,
        sizes: Sizes::Pages {
            page_size: PAGE_SIZE,
            max_pages: if epoch.is_multiple_of(2) { 8 } else { 33 },
        },
        aligns: Aligns::Natural,
        lifetimes: if epoch.is_multiple_of(3) {
            Lifetimes::Fifo
        } else {
            Lifetimes::Random
        },
        max_live: PAGE_LIVE,
        free_percent: 50,
        oom_expected: true,
        owner: 1000 + slot as u32,
    }
}

/// Harts the run asked for (`stress <seconds> [harts]` in the monitor).
pub static HARTS: AtomicUsize = AtomicUsize::new(STRESS_HARTS);

/// Hart slots taking part.
pub fn participants() -> usize {
    crate::arch::smp::online_count()
        .min(STRESS_HARTS)
        .min(HARTS.load(Ordering::Relaxed))
        .max(1)
}

/// Clears the run-wide state before a run (the monitor may run several).
pub fn reset(harts: usize) {
    for counter in [
        &TOTALS.allocs,
        &TOTALS.frees,
        &TOTALS.cross_frees,
        &TOTALS.failures_seen,
        &TOTALS.hook_runs,
        &TOTALS.epochs,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    TOTALS.peak_pages_used.store(0, Ordering::Relaxed);
    *FAILURE.lock() = None;
    HOOK_BROKEN.store(false, Ordering::Relaxed);
    HARTS.store(harts, Ordering::Relaxed);
}

/// [`targets::exchange`] among this run's harts, counted in the totals.
fn exchange(
    slot: usize,
    generator: &mut Generator<'_>,
    target: &mut impl Target,
    mail: &[IrqSpinLock<Mailbox<MAILBOX>>],
) -> Result<(), Failure> {
    targets::exchange(
        slot,
        participants(),
        generator,
        target,
        mail,
        &TOTALS.cross_frees,
    )
}

/// Adds what a generator did since `seen` to the totals.
fn account(summary: Summary, seen: &mut Summary) {
    TOTALS
        .allocs
        .fetch_add(summary.allocs - seen.allocs, Ordering::Relaxed);
    TOTALS
        .frees
        .fetch_add(summary.frees - seen.frees, Ordering::Relaxed);
    TOTALS.failures_seen.fetch_add(
        summary.expected_failures - seen.expected_failures,
        Ordering::Relaxed,
    );
    *seen = summary;
}

/// One epoch on this hart: runs until the epoch's rounds are done or the
/// deadline passed, then drains (checking every block).
fn epoch(slot: usize, epoch: u64) -> Result<bool, Failure> {
    let mut byte_slots = [None; BYTE_LIVE];
    let mut page_slots = [None; PAGE_LIVE];
    let mut bytes = Generator::new(byte_spec(slot, epoch), &mut byte_slots);
    let mut frames = Generator::new(page_spec(slot, epoch), &mut page_slots);
    let deadline = DEADLINE.load(Ordering::Acquire);
    let (mut bytes_seen, mut frames_seen) = (Summary::default(), Summary::default());
    let mut result = Ok(());
    for round in 0..EPOCH_ROUNDS {
        if cpu::ticks() >= deadline || FAILURE.lock().is_some() {
            break;
        }
        result = (|| {
            bytes.run(&mut GlobalHeap, 16)?;
            frames.run(&mut Frames, 2)?;
            exchange(slot, &mut bytes, &mut GlobalHeap, &BYTE_MAIL)?;
            if round.is_multiple_of(4) {
                exchange(slot, &mut frames, &mut Frames, &PAGE_MAIL)?;
            }
            Ok(())
        })();
        if result.is_err() {
            break;
        }
        account(bytes.summary(), &mut bytes_seen);
        account(frames.summary(), &mut frames_seen);
        TOTALS
            .peak_pages_used
            .fetch_max(pages::usage().0, Ordering::Relaxed);
        if slot == 0 {
            let report = *REPORT.lock();
            if let Some(report) = report {
                report();
            }
        }
    }
    result?;
    bytes.drain(&mut GlobalHeap)?;
    frames.drain(&mut Frames)?;
    account(bytes.summary(), &mut bytes_seen);
    account(frames.summary(), &mut frames_seen);
    Ok(cpu::ticks() < deadline && FAILURE.lock().is_none())
}

/// The per-hart job: epochs until the deadline or a failure.
pub fn hammer(slot: usize) {
    if slot >= participants() {
        return;
    }
    let mut number = 0;
    loop {
        match epoch(slot, number) {
            Ok(true) => number += 1,
            Ok(false) => break,
            Err(failure) => {
                FAILURE.lock().get_or_insert((slot, failure));
                break;
            }
        }
        TOTALS.epochs.fetch_add(1, Ordering::Relaxed);
    }
}

/// Frees what is left in the mailboxes (checked) once every hart stopped.
pub fn drain_mailboxes() -> Result<(), Failure> {
    let mut slots = [None; MAILBOX];
    let mut adopt = Generator::new(byte_spec(0, 0), &mut slots);
    for mailbox in &BYTE_MAIL {
        while let Some(block) = { mailbox.lock().pop() } {
            adopt.check_and_free(&mut GlobalHeap, block)?;
            TOTALS.cross_frees.fetch_add(1, Ordering::Relaxed);
        }
    }
    for mailbox in &PAGE_MAIL {
        while let Some(block) = { mailbox.lock().pop() } {
            adopt.check_and_free(&mut Frames, block)?;
            TOTALS.cross_frees.fetch_add(1, Ordering::Relaxed);
        }
    }
    TOTALS
        .frees
        .fetch_add(adopt.summary().frees, Ordering::Relaxed);
    Ok(())
}

/// The timer hook: allocates and frees with the fallible APIs (injected
/// failures are expected here too), checking contents.
pub fn allocate_in_interrupt() {
    let salt = TOTALS.hook_runs.fetch_add(1, Ordering::Relaxed);
    let len = 16 + (salt % 200) as usize;
    let mut numbers: Vec<u64> = Vec::new();
    if numbers.try_reserve_exact(len).is_err() {
        TOTALS.failures_seen.fetch_add(1, Ordering::Relaxed);
        return;
    }
    numbers.extend((0..len as u64).map(|i| i ^ salt));
    let Ok(boxed) = try_box([salt as u8; 40]) else {
        TOTALS.failures_seen.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let intact = numbers
        .iter()
        .enumerate()
        .all(|(i, &n)| n == i as u64 ^ salt)
        && boxed.iter().all(|&b| b == salt as u8);
    if !intact {
        HOOK_BROKEN.store(true, Ordering::Relaxed);
    }
}
