//! Supervisor trap handling: the assembly vector saves every register into a
//! [`TrapFrame`] on the current stack and calls `rvos_trap` (`dispatch.rs`),
//! which dispatches on scause.
//!
//! Interrupts: the supervisor timer interrupt ticks (`timer`), the
//! supervisor software interrupt is the cross-hart wake-up (`smp`), the
//! supervisor external interrupt goes to the PLIC driver. An
//! exception is recovered only if a test armed a recovery point on this
//! hart (`fault_catch`); otherwise it is fatal: the handler prints scause
//! (decoded), sepc, stval, for page faults the region the address hits
//! (explained by the memory diagnostics, see [`set_fault_explainer`]), and
//! the registers, reports the running in-kernel test
//! as failed, and stops the machine with [`FailureCode::FatalTrap`].
//! The vector restores sp from the frame last, so recovery can move it.
//!
//! Each hart handles traps on its own trap stack (its top in sscratch
//! while the hart runs normal code, 0 while a handler runs), so a fault
//! caused by a kernel stack overflowing into its guard page is still
//! reported. A trap inside a handler, or before the hart has a trap stack,
//! stays on the current stack.

use crate::power::{self, FailureCode};
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use riscv::register::{
    scause,
    stvec::{self, Stvec, TrapMode},
};

/// Registers at the time of the trap. `regs[n]` is `xn`; `regs[0]` is
/// unused and `regs[2]` holds the interrupted sp. The layout is shared with
/// the assembly below.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct TrapFrame {
    pub regs: [usize; 32],
    pub sepc: usize,
    pub sstatus: usize,
    pub scause: usize,
    pub stval: usize,
    /// sscratch on the way out: the trap-stack top, or 0 when this trap
    /// interrupted another handler.
    pub resume_sscratch: usize,
    _pad: usize,
}

const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();
const _: () = assert!(
    FRAME_SIZE.is_multiple_of(16),
    "the RISC-V ABI keeps sp 16-byte aligned"
);

core::arch::global_asm!(
    ".section .text",
    ".balign 4",
    ".globl rvos_trap_vector",
    "rvos_trap_vector:",
    // sscratch = this hart's trap-stack top in normal execution, 0 inside
    // a handler (or before the hart has a trap stack).
    "    csrrw sp, sscratch, sp",
    "    bnez  sp, 1f",
    // Nested (or no trap stack yet): stay on the interrupted stack.
    "    csrr  sp, sscratch",
    "    addi  sp, sp, -{frame}",
    "    sd    t0, 5*8(sp)",
    "    li    t0, 0",
    "    j     2f",
    "1:  addi  sp, sp, -{frame}",
    "    sd    t0, 5*8(sp)",
    "    addi  t0, sp, {frame}",
    // What sscratch goes back to on the way out.
    "2:  sd    t0, 36*8(sp)",
    "    .irp n, 1,3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "    sd    x\\n, \\n*8(sp)",
    "    .endr",
    "    csrr  t0, sscratch",
    "    sd    t0, 2*8(sp)",
    "    csrw  sscratch, zero",
    "    csrr  t0, sepc",
    "    sd    t0, 32*8(sp)",
    "    csrr  t0, sstatus",
    "    sd    t0, 33*8(sp)",
    "    csrr  t0, scause",
    "    sd    t0, 34*8(sp)",
    "    csrr  t0, stval",
    "    sd    t0, 35*8(sp)",
    "    mv    a0, sp",
    // By name: the dispatcher (`dispatch.rs`) sits above every handler,
    // and this module needs nothing of them.
    "    call  rvos_trap",
    "    ld    t0, 36*8(sp)",
    "    csrw  sscratch, t0",
    "    ld    t0, 32*8(sp)",
    "    csrw  sepc, t0",
    "    ld    t0, 33*8(sp)",
    "    csrw  sstatus, t0",
    "    .irp n, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "    ld    x\\n, \\n*8(sp)",
    "    .endr",
    "    ld    sp, 2*8(sp)",
    "    sret",
    frame = const FRAME_SIZE,
);

unsafe extern "C" {
    fn rvos_trap_vector();
}

/// Makes the calling hart take its traps on its trap stack (if it has one).
pub fn use_trap_stack() {
    let top = super::hart::current().trap_stack().end;
    // SAFETY: sscratch is only read by the trap vector, which takes a
    // non-zero value as the top of a stack this hart owns exclusively.
    unsafe { riscv::register::sscratch::write(top) };
}

/// Points stvec at the trap vector (direct mode) on the calling hart.
pub fn install() {
    let vector = rvos_trap_vector as *const () as usize;
    // SAFETY: the vector is 4-byte aligned code that saves and restores the
    // full register state, so taking a trap at any point is sound.
    unsafe { stvec::write(Stvec::new(vector, TrapMode::Direct)) };
}

/// scause interrupt codes.
pub const SUPERVISOR_SOFTWARE: usize = 1;
pub const SUPERVISOR_TIMER: usize = 5;
pub const SUPERVISOR_EXTERNAL: usize = 9;

/// Prints what a faulting address hits (the memory diagnostics know the
/// kernel's regions; this module does not).
pub type FaultExplainer = fn(addr: usize, access: Access);

static EXPLAIN_FAULT: AtomicUsize = AtomicUsize::new(0);

/// Installs the explanation a fatal page fault prints after its address.
pub fn set_fault_explainer(explain: FaultExplainer) {
    EXPLAIN_FAULT.store(explain as usize, Ordering::Release);
}

pub fn fatal(frame: &TrapFrame, cause: TrapCause) -> ! {
    let hart = crate::arch::hart::current_id();
    crate::println!(
        "\nFATAL: unhandled trap on hart {}: {} (scause {:#x})",
        HartDisplay(hart),
        cause,
        frame.scause
    );
    crate::println!(
        "  sepc  {:#018x}  stval {:#018x}  sstatus {:#018x}",
        frame.sepc,
        frame.stval,
        frame.sstatus
    );
    if let Some(access) = cause.page_fault_access() {
        crate::print!("  {access} at {:#x}", frame.stval);
        let explain = EXPLAIN_FAULT.load(Ordering::Acquire);
        if explain != 0 {
            // SAFETY: `EXPLAIN_FAULT` only ever holds 0 or a `FaultExplainer`
            // stored by `set_fault_explainer`.
            let explain = unsafe { core::mem::transmute::<usize, FaultExplainer>(explain) };
            crate::print!(": ");
            explain(frame.stval, access);
        }
        crate::println!();
    }
    // The entry code does not store x0 (its slot holds whatever was
    // there); x0 reads as zero.
    let reg = |n: usize| if n == 0 { 0 } else { frame.regs[n] };
    for row in 0..8 {
        let n = row * 4;
        crate::println!(
            "  x{:<2} {:#018x}  x{:<2} {:#018x}  x{:<2} {:#018x}  x{:<2} {:#018x}",
            n,
            reg(n),
            n + 1,
            reg(n + 1),
            n + 2,
            reg(n + 2),
            n + 3,
            reg(n + 3)
        );
    }
    crate::ktest::abort_running_test(format_args!(
        "fatal trap: {cause} at sepc {:#x}, stval {:#x}",
        frame.sepc, frame.stval
    ));
    power::fail(FailureCode::FatalTrap)
}

/// The hart id as printed in diagnostics (`?` before it is known).
pub struct HartDisplay(pub Option<usize>);

impl fmt::Display for HartDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => f.write_str("?"),
        }
    }
}

/// A decoded scause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapCause {
    Interrupt(usize),
    Exception(usize),
}

/// What a page fault tried to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Fetch,
    Load,
    Store,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fetch => "instruction fetch",
            Self::Load => "load",
            Self::Store => "store",
        })
    }
}

impl TrapCause {
    /// The access of a page fault (or access fault), `None` for any
    /// other cause.
    pub fn page_fault_access(self) -> Option<Access> {
        match self {
            Self::Exception(1 | 12) => Some(Access::Fetch),
            Self::Exception(5 | 13) => Some(Access::Load),
            Self::Exception(7 | 15) => Some(Access::Store),
            _ => None,
        }
    }

    pub fn from_scause(raw: usize) -> Self {
        let code = raw & !(1 << (usize::BITS - 1));
        if scause::Scause::from_bits(raw).is_interrupt() {
            Self::Interrupt(code)
        } else {
            Self::Exception(code)
        }
    }
}

impl fmt::Display for TrapCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::Interrupt(1) => "supervisor software interrupt",
            Self::Interrupt(5) => "supervisor timer interrupt",
            Self::Interrupt(9) => "supervisor external interrupt",
            Self::Interrupt(_) => "unknown interrupt",
            Self::Exception(0) => "instruction address misaligned",
            Self::Exception(1) => "instruction access fault",
            Self::Exception(2) => "illegal instruction",
            Self::Exception(3) => "breakpoint",
            Self::Exception(4) => "load address misaligned",
            Self::Exception(5) => "load access fault",
            Self::Exception(6) => "store/AMO address misaligned",
            Self::Exception(7) => "store/AMO access fault",
            Self::Exception(8) => "environment call from U-mode",
            Self::Exception(9) => "environment call from S-mode",
            Self::Exception(12) => "instruction page fault",
            Self::Exception(13) => "load page fault",
            Self::Exception(15) => "store/AMO page fault",
            Self::Exception(_) => "unknown exception",
        };
        f.write_str(name)
    }
}

#[cfg(feature = "ktest")]
mod tests {
    use super::*;
    use crate::ktest::prelude::*;

    ktest! {
        fn trap_vector_is_installed_in_direct_mode() {
            let stvec = stvec::read();
            let address = stvec.address();
            kassert_eq!(address, rvos_trap_vector as *const () as usize);
            kassert_eq!(stvec.trap_mode(), TrapMode::Direct);
            kassert!(address >= crate::arch::KERNEL_OFFSET, "vector {address:#x} is not in the high half");
            Ok(())
        }
    }

    ktest! {
        fn scause_decodes_interrupts_and_exceptions() {
            kassert_eq!(TrapCause::from_scause((1 << 63) | 5), TrapCause::Interrupt(5));
            kassert_eq!(TrapCause::from_scause(13), TrapCause::Exception(13));
            Ok(())
        }
    }
}
