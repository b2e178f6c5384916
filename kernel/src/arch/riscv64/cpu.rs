//! Small CPU-level helpers: registers Rust cannot name, halting, time.

use core::arch::asm;

/// The current stack pointer.
#[inline(always)]
pub fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register into a local; no memory or flags touched.
    unsafe { asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// The address of the instruction that reads it.
#[inline(always)]
pub fn program_counter() -> usize {
    let pc: usize;
    // SAFETY: `auipc rd, 0` only writes rd.
    unsafe { asm!("auipc {}, 0", out(reg) pc, options(nomem, nostack, preserves_flags)) };
    pc
}

/// The `time` CSR: ticks of the platform timer at the device tree's
/// timebase frequency.
#[inline]
pub fn ticks() -> u64 {
    riscv::register::time::read64()
}

/// Stops this hart for good (interrupts stay masked, so `wfi` never leads
/// anywhere but back into the loop).
pub fn halt() -> ! {
    // SAFETY: clearing sstatus.SIE only masks interrupts on this hart.
    unsafe { riscv::register::sstatus::clear_sie() };
    loop {
        riscv::asm::wfi();
    }
}
