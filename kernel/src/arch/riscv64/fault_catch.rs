//! Catching an expected exception: [`catch_fault`] runs a closure with a
//! recovery point armed on the current hart; if the closure takes a
//! synchronous exception, the trap handler records scause/stval/sepc and
//! returns to the recovery point instead of stopping the kernel, as a
//! `setjmp`/`longjmp` pair would.
//!
//! The recovery point is the callee-saved state (ra, sp, s0..s11) saved by
//! `rvos_catch_fault` before it calls the closure; the trap handler
//! rewrites the trap frame with it and sets sepc to `rvos_fault_recovered`,
//! which returns 1 from `rvos_catch_fault`. The frames of the closure are
//! abandoned without running destructors, so the closure must not hold
//! locks or own heap memory at the faulting instruction.

use super::trap::TrapFrame;
use crate::platform::MAX_HARTS;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// ra, sp, s0..s11.
const SAVED_REGS: usize = 14;

/// A hart's recovery point and what the last caught fault was.
struct FaultSlot {
    armed: AtomicBool,
    saved: UnsafeCell<[usize; SAVED_REGS]>,
    scause: AtomicUsize,
    stval: AtomicUsize,
    sepc: AtomicUsize,
}

// SAFETY: `saved` is written by `rvos_catch_fault` and read by the trap
// handler, both on the slot's own hart (slots are indexed by the hart's
// slot in `SLOTS`), never concurrently.
unsafe impl Sync for FaultSlot {}

/// One recovery point per hart slot.
static SLOTS: [FaultSlot; MAX_HARTS] = [const { FaultSlot::new() }; MAX_HARTS];

impl FaultSlot {
    const fn new() -> Self {
        Self {
            armed: AtomicBool::new(false),
            saved: UnsafeCell::new([0; SAVED_REGS]),
            scause: AtomicUsize::new(0),
            stval: AtomicUsize::new(0),
            sepc: AtomicUsize::new(0),
        }
    }
}

/// The exception a closure took.
#[cfg(feature = "ktest")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaughtFault {
    pub scause: usize,
    pub stval: usize,
    pub sepc: usize,
}

core::arch::global_asm!(
    ".section .text",
    ".balign 4",
    // usize rvos_catch_fault(void (*f)(void *), void *arg, usize saved[14])
    ".globl rvos_catch_fault",
    "rvos_catch_fault:",
    "    sd    ra, 0(a2)",
    "    sd    sp, 8(a2)",
    "    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11",
    "    sd    s\\n, (16+\\n*8)(a2)",
    "    .endr",
    "    mv    s0, a2",
    "    mv    t0, a0",
    "    mv    a0, a1",
    "    jalr  t0",
    "    mv    a2, s0",
    "    ld    ra, 0(a2)",
    "    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11",
    "    ld    s\\n, (16+\\n*8)(a2)",
    "    .endr",
    "    li    a0, 0",
    "    ret",
    // The trap handler returns here with ra, sp, s0..s11 restored.
    ".globl rvos_fault_recovered",
    "rvos_fault_recovered:",
    "    li    a0, 1",
    "    ret",
);

unsafe extern "C" {
    #[cfg(feature = "ktest")]
    fn rvos_catch_fault(
        f: extern "C" fn(*mut u8),
        arg: *mut u8,
        saved: *mut [usize; SAVED_REGS],
    ) -> usize;
    fn rvos_fault_recovered();
}

#[cfg(feature = "ktest")]
extern "C" fn trampoline<F: FnOnce()>(arg: *mut u8) {
    // SAFETY: `arg` is the `Option<F>` that `catch_fault` passes, alive for
    // the whole call.
    let slot = unsafe { &mut *arg.cast::<Option<F>>() };
    if let Some(f) = slot.take() {
        f();
    }
}

#[cfg(feature = "ktest")]
/// Runs `f`; returns the exception it took, or `None` if it returned.
pub fn catch_fault<F: FnOnce()>(f: F) -> Option<CaughtFault> {
    let slot = &SLOTS[super::hart::current().slot()];
    assert!(
        !slot.armed.load(Ordering::Relaxed),
        "catch_fault does not nest"
    );
    let mut closure = Some(f);
    slot.armed.store(true, Ordering::Relaxed);
    // SAFETY: `saved` belongs to this hart's slot, which nothing else
    // touches until the handler reads it on this hart; the trampoline only
    // reads `closure`, which outlives the call.
    let faulted =
        unsafe { rvos_catch_fault(trampoline::<F>, (&raw mut closure).cast(), slot.saved.get()) };
    slot.armed.store(false, Ordering::Relaxed);
    drop(closure);
    (faulted != 0).then(|| CaughtFault {
        scause: slot.scause.load(Ordering::Relaxed),
        stval: slot.stval.load(Ordering::Relaxed),
        sepc: slot.sepc.load(Ordering::Relaxed),
    })
}

/// Called by the trap handler for a synchronous exception at trap depth 1:
/// if a recovery point is armed on this hart, records the fault, rewrites
/// `frame` to resume there and returns true.
pub fn recover(frame: &mut TrapFrame) -> bool {
    let Some(hart) = super::hart::try_current() else {
        return false;
    };
    let slot = &SLOTS[hart.slot()];
    if !slot.armed.swap(false, Ordering::Relaxed) {
        return false;
    }
    slot.scause.store(frame.scause, Ordering::Relaxed);
    slot.stval.store(frame.stval, Ordering::Relaxed);
    slot.sepc.store(frame.sepc, Ordering::Relaxed);
    // SAFETY: armed means `rvos_catch_fault` filled `saved` on this hart
    // and has not returned yet.
    let saved = unsafe { &*slot.saved.get() };
    frame.regs[1] = saved[0];
    frame.regs[2] = saved[1];
    frame.regs[8] = saved[2];
    frame.regs[9] = saved[3];
    // s2..s11 are x18..x27.
    frame.regs[18..28].copy_from_slice(&saved[4..14]);
    frame.sepc = rvos_fault_recovered as *const () as usize;
    true
}
