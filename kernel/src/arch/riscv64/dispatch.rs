//! The Rust side of the trap vector: counts the trap on this hart and
//! dispatches on scause to the timer, the cross-hart wake-up, the PLIC
//! driver, the fault catcher, or the fatal path. It sits above every
//! handler, so the low-level trap module (vector, frame) imports none.

use super::trap::{
    SUPERVISOR_EXTERNAL, SUPERVISOR_SOFTWARE, SUPERVISOR_TIMER, TrapCause, TrapFrame, fatal,
};
use super::{fault_catch, hart, smp, timer};
use core::sync::atomic::Ordering;

/// Called by the trap vector with the saved frame (by name: `rvos_trap`).
#[unsafe(no_mangle)]
extern "C" fn rvos_trap(frame: &mut TrapFrame) {
    let cause = TrapCause::from_scause(frame.scause);
    let hart = hart::try_current();
    let depth = hart.map_or(1, |h| h.trap_depth.fetch_add(1, Ordering::Relaxed) + 1);
    let interrupt = matches!(cause, TrapCause::Interrupt(_));
    if let Some(hart) = hart.filter(|_| interrupt) {
        hart.interrupt_depth.fetch_add(1, Ordering::Relaxed);
    }
    match cause {
        TrapCause::Interrupt(SUPERVISOR_TIMER) => timer::on_interrupt(),
        TrapCause::Interrupt(SUPERVISOR_SOFTWARE) => smp::on_software_interrupt(),
        TrapCause::Interrupt(SUPERVISOR_EXTERNAL) => crate::drivers::plic::on_external_interrupt(),
        TrapCause::Exception(_) if depth == 1 && fault_catch::recover(frame) => {}
        _ => fatal(frame, cause),
    }
    if let Some(hart) = hart {
        if interrupt {
            hart.interrupt_depth.fetch_sub(1, Ordering::Relaxed);
        }
        hart.trap_depth.fetch_sub(1, Ordering::Relaxed);
    }
}
