//! Interrupt masking: the IRQ-safe locks mask on acquire and restore the
//! outermost saved state on the last release, in any release order.

mod common;

use common::{HostArch, irq_enabled, set_irq_enabled};
use ksync::{Arch, IrqSpinLock, IrqTicketLock, SpinLock, irq_save};

#[test]
fn irq_lock_masks_while_held_and_restores_on_release() {
    set_irq_enabled(true);
    let lock = IrqSpinLock::<u8, HostArch>::new("irq", 0);
    {
        let _guard = lock.lock();
        assert!(!irq_enabled());
        assert_eq!(HostArch::irq_nesting().depth(), 1);
    }
    assert!(irq_enabled());
    assert_eq!(HostArch::irq_nesting().depth(), 0);
}

#[test]
fn plain_lock_leaves_interrupts_alone() {
    set_irq_enabled(true);
    let lock = SpinLock::<u8, HostArch>::new("plain", 0);
    let _guard = lock.lock();
    assert!(irq_enabled());
}

#[test]
fn nested_irq_locks_restore_only_after_the_last_release_in_any_order() {
    set_irq_enabled(true);
    let outer = IrqTicketLock::<(), HostArch>::new("outer", ());
    let inner = IrqSpinLock::<(), HostArch>::new("inner", ());
    let outer_guard = outer.lock();
    let inner_guard = inner.lock();
    assert_eq!(HostArch::irq_nesting().depth(), 2);
    // Released out of order: the outer lock goes first, yet interrupts
    // must stay masked while `inner` is still held.
    drop(outer_guard);
    assert!(!irq_enabled());
    drop(inner_guard);
    assert!(irq_enabled());
}

#[test]
fn outermost_saved_state_wins_when_interrupts_were_already_off() {
    set_irq_enabled(false);
    let lock = IrqSpinLock::<(), HostArch>::new("already-off", ());
    {
        let _masked = irq_save::<HostArch>();
        let _guard = lock.lock();
    }
    assert!(
        !irq_enabled(),
        "releasing must not enable interrupts the caller had off"
    );
    set_irq_enabled(true);
}

#[test]
fn failed_try_lock_restores_interrupts() {
    set_irq_enabled(true);
    let lock = IrqSpinLock::<(), HostArch>::new("try-irq", ());
    let _held = lock.lock();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            set_irq_enabled(true);
            assert!(lock.try_lock().is_none());
            assert!(irq_enabled());
            assert_eq!(HostArch::irq_nesting().depth(), 0);
        });
    });
}
