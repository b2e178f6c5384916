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

/// The return address of the function this is inlined into, when called
/// first thing, before that function makes any call (so `ra` still holds
/// it): the asm is volatile, so it is not moved past a call.
#[inline(always)]
pub fn return_address() -> usize {
    let ra: usize;
    // SAFETY: reads the `ra` register into a local; no memory, no stack.
    unsafe { asm!("mv {}, ra", out(reg) ra, options(nomem, nostack, preserves_flags)) };
    ra
}

/// Sleeps until an interrupt is pending on this hart (`wfi`). With
/// interrupts masked it still wakes on a pending one, which is then taken
/// when they are unmasked: check a condition with interrupts masked, sleep
/// here if it does not hold, then unmask, and no wake-up is lost.
#[inline]
pub fn wait_for_interrupt() {
    riscv::asm::wfi();
}

/// Unmasks external interrupts (`sie.SEIE`) on this hart, once the trap
/// vector dispatches them (to the PLIC driver).
pub fn enable_external_interrupts() {
    // SAFETY: unmasking a source the trap vector handles.
    unsafe { riscv::register::sie::set_sext() };
}

/// Whether external interrupts are unmasked (`sie.SEIE`) on this hart.
#[cfg_attr(
    not(feature = "ktest"),
    expect(dead_code, reason = "the in-kernel tests are its only user so far")
)]
pub fn external_interrupts_enabled() -> bool {
    riscv::register::sie::read().sext()
}

/// Executes `unimp`: an illegal-instruction exception on this hart.
///
/// # Safety
/// The trap must either be expected (`fault_catch` resumes at its recovery
/// point, skipping what follows) or end the kernel (a fatal trap).
#[cfg_attr(
    not(feature = "ktest"),
    expect(dead_code, reason = "the in-kernel tests are its only user so far")
)]
pub unsafe fn raise_illegal_instruction() {
    // SAFETY: the trap is handled as the caller guarantees.
    unsafe { asm!("unimp", options(nomem, nostack)) };
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
