//! The architecture hooks a one-hart kernel supplies: hart 0 always, and
//! an interrupt-enable flag standing in for `sstatus.SIE`.

use core::sync::atomic::{AtomicBool, Ordering};

use ksync::{Arch, IrqNesting};

/// A uniprocessor: every lock and cache belongs to CPU 0.
pub struct OneHart;

/// Whether "interrupts" are on; a real kernel reads and writes a CSR.
static IRQ_ENABLED: AtomicBool = AtomicBool::new(true);
static NESTING: IrqNesting = IrqNesting::new();

impl Arch for OneHart {
    fn hart_id() -> usize {
        0
    }

    fn irq_save_disable() -> usize {
        usize::from(IRQ_ENABLED.swap(false, Ordering::Relaxed))
    }

    fn irq_restore(saved: usize) {
        IRQ_ENABLED.store(saved != 0, Ordering::Relaxed);
    }

    fn irq_nesting() -> &'static IrqNesting {
        &NESTING
    }

    fn relax() {
        core::hint::spin_loop();
    }
}

impl kheap::Cpu for OneHart {
    fn cpu_index() -> usize {
        0
    }
}

/// Whether interrupts are enabled now (tests check locks restore them).
pub fn irq_enabled() -> bool {
    IRQ_ENABLED.load(Ordering::Relaxed)
}
