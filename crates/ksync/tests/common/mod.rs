//! A host [`Arch`]: each thread is a "hart" with its own id, its own
//! simulated interrupt-enable bit and "in an interrupt handler" flag, and
//! its own lock-validation state.

#![allow(dead_code)]

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use ksync::lockdep::LockdepHart;
use ksync::{Arch, IrqNesting};

/// Threads a test binary may create in total.
const MAX_HARTS: usize = 512;

static NEXT_HART: AtomicUsize = AtomicUsize::new(0);
static NESTING: [IrqNesting; MAX_HARTS] = [const { IrqNesting::new() }; MAX_HARTS];
static LOCKDEP: [LockdepHart; MAX_HARTS] = [const { LockdepHart::new() }; MAX_HARTS];

thread_local! {
    static HART: usize = {
        let hart = NEXT_HART.fetch_add(1, Ordering::Relaxed);
        assert!(hart < MAX_HARTS, "test binary created more than {MAX_HARTS} threads");
        hart
    };
    static IRQ_ENABLED: Cell<bool> = const { Cell::new(true) };
    static IN_INTERRUPT: Cell<bool> = const { Cell::new(false) };
}

/// Threads as harts; interrupts are a per-thread flag.
pub struct HostArch;

impl Arch for HostArch {
    fn hart_id() -> usize {
        HART.with(|hart| *hart)
    }

    fn irq_save_disable() -> usize {
        IRQ_ENABLED.with(|enabled| usize::from(enabled.replace(false)))
    }

    fn irq_restore(saved: usize) {
        IRQ_ENABLED.with(|enabled| enabled.set(saved != 0));
    }

    fn relax() {
        std::thread::yield_now();
    }

    fn irq_nesting() -> &'static IrqNesting {
        &NESTING[Self::hart_id()]
    }

    fn lockdep() -> Option<&'static LockdepHart> {
        Some(&LOCKDEP[Self::hart_id()])
    }

    fn in_interrupt() -> bool {
        IN_INTERRUPT.with(Cell::get)
    }

    fn irqs_enabled() -> bool {
        irq_enabled()
    }
}

/// Whether the calling thread's simulated interrupts are enabled.
pub fn irq_enabled() -> bool {
    IRQ_ENABLED.with(Cell::get)
}

/// Sets the calling thread's simulated interrupt-enable bit.
pub fn set_irq_enabled(on: bool) {
    IRQ_ENABLED.with(|enabled| enabled.set(on));
}

/// Marks the calling thread as running (or no longer running) an
/// interrupt handler, for the lock validator's interrupt rule.
pub fn set_in_interrupt(on: bool) {
    IN_INTERRUPT.with(|flag| flag.set(on));
}

/// The calling thread's lock-validation state.
pub fn lockdep_hart() -> &'static LockdepHart {
    HostArch::lockdep().expect("the host Arch validates every hart")
}

/// Iteration counts: full on the host, small under Miri.
pub const fn scaled(host: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { host }
}
