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

/// Spins until `done()` holds or `timeout` ticks have passed; returns
/// whether it held (asked once more at the deadline). For waits on another
/// hart or an interrupt, whose host thread QEMU may not run promptly.
pub fn spin_until(timeout: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = ticks() + timeout;
    while !done() {
        if ticks() >= deadline {
            return done();
        }
        core::hint::spin_loop();
    }
    true
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

/// Masks interrupts on this hart; returns 1 if they were enabled.
#[inline]
pub fn irq_save_disable() -> usize {
    let was_enabled = riscv::register::sstatus::read().sie();
    // SAFETY: clearing sstatus.SIE only masks interrupts on this hart.
    unsafe { riscv::register::sstatus::clear_sie() };
    usize::from(was_enabled)
}

/// Undoes [`irq_save_disable`].
#[inline]
pub fn irq_restore(saved: usize) {
    if saved != 0 {
        // SAFETY: re-enables what `irq_save_disable` found enabled; the trap
        // vector handles every unmasked source.
        unsafe { riscv::register::sstatus::set_sie() };
    }
}

/// Whether interrupts are enabled on this hart.
pub fn irq_enabled() -> bool {
    riscv::register::sstatus::read().sie()
}

/// Unmasks the timer and software interrupts, arms this hart's timer and
/// enables interrupts (sstatus.SIE): normal kernel execution from now on.
pub fn enable_hart_interrupts() {
    // SAFETY: unmasking the cross-hart wake-up source; the vector is set.
    unsafe { riscv::register::sie::set_ssoft() };
    super::timer::start_on_this_hart();
    // SAFETY: the trap vector handles every unmasked source.
    unsafe { riscv::register::sstatus::set_sie() };
}
