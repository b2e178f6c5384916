//! Boot-time synchronisation helpers: write-once cells for the facts the boot
//! hart discovers (platform, devices) before any other hart runs, and the
//! kernel's instance of the `ksync` locks ([`KernelArch`] and the aliases).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

/// A value set once and then read by anyone; a second `set` panics.
pub struct BootCell<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is written exactly once, before `state` becomes READY
// with Release ordering; readers only touch it after an Acquire load of
// READY, and never mutably.
unsafe impl<T: Send + Sync> Sync for BootCell<T> {}

impl<T> BootCell<T> {
    pub const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
        }
    }

    /// Stores the value; panics if the cell was already set.
    pub fn set(&self, value: T) -> &T {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            panic!("BootCell<{}> set twice", core::any::type_name::<T>());
        }
        // SAFETY: the EMPTY -> WRITING transition makes us the only writer,
        // and no reader looks before READY.
        unsafe { *self.value.get() = Some(value) };
        self.state.store(READY, Ordering::Release);
        self.get().expect("just set")
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) != READY {
            return None;
        }
        // SAFETY: READY means the single write happened-before this read and
        // no further write will occur.
        unsafe { (*self.value.get()).as_ref() }
    }
}

/// The kernel's [`ksync::Arch`]: the hart id from the `tp` block, interrupt
/// masking through sstatus.SIE, the masking depth in the `tp` block.
pub struct KernelArch;

/// Masking depth for code that runs before the hart-local block exists
/// (only the boot hart, with interrupts still off).
static EARLY_NESTING: ksync::IrqNesting = ksync::IrqNesting::new();

/// The hart id locks see before the hart-local block exists: only the boot
/// hart runs then. Distinct from every real hart id and from `usize::MAX`,
/// which ksync's debug checks reserve for "no holder".
pub const EARLY_HART_ID: usize = usize::MAX - 1;

impl ksync::Arch for KernelArch {
    fn hart_id() -> usize {
        crate::arch::hart::current_id().unwrap_or(EARLY_HART_ID)
    }

    fn irq_save_disable() -> usize {
        crate::arch::cpu::irq_save_disable()
    }

    fn irq_restore(saved: usize) {
        crate::arch::cpu::irq_restore(saved);
    }

    fn irq_nesting() -> &'static ksync::IrqNesting {
        crate::arch::hart::try_current().map_or(&EARLY_NESTING, |hart| &hart.irq_nesting)
    }

    /// Locks taken before the hart-local block exists are not validated
    /// (only the boot hart runs then, in a fixed order).
    fn lockdep() -> Option<&'static ksync::lockdep::LockdepHart> {
        crate::arch::hart::try_current().map(|hart| &hart.lockdep)
    }

    fn in_interrupt() -> bool {
        crate::arch::hart::try_current().is_some_and(|hart| {
            hart.interrupt_depth
                .load(core::sync::atomic::Ordering::Relaxed)
                > 0
        })
    }

    fn irqs_enabled() -> bool {
        crate::arch::cpu::irq_enabled()
    }
}

/// Test-and-test-and-set lock; interrupts untouched.
#[allow(dead_code, reason = "part of the kernel's lock vocabulary")]
pub type SpinLock<T> = ksync::SpinLock<T, KernelArch>;
/// Fair FIFO lock; interrupts untouched.
#[allow(dead_code, reason = "part of the kernel's lock vocabulary")]
pub type TicketLock<T> = ksync::TicketLock<T, KernelArch>;
/// Spin lock that masks interrupts on this hart while held.
#[allow(dead_code, reason = "part of the kernel's lock vocabulary")]
pub type IrqSpinLock<T> = ksync::IrqSpinLock<T, KernelArch>;
/// Fair lock that masks interrupts on this hart while held: every lock an
/// interrupt handler may also take (the allocators) is one of these.
pub type IrqTicketLock<T> = ksync::IrqTicketLock<T, KernelArch>;
