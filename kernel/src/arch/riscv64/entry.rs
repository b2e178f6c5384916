//! The first instructions: OpenSBI jumps to `_start` at physical 0x8020_0000
//! with paging off, the hart id in a0 and the device-tree address in a1.
//!
//! `_start` points sp at the boot stack, switches satp to the boot page table
//! (which maps this code both at its physical and at its linked high-half
//! address), moves sp and pc to the high half, clears `.bss`, and calls
//! [`rvos_boot_entry`]. No Rust runs before the switch, so nothing can reach
//! a static through an absolute (high-half) address while paging is off.
//! The paging switch is an assembler macro so the secondary-hart entry,
//! `rvos_secondary_start` (started by SBI HSM with paging off, its hart id
//! in a0 and the physical top of its stack in a1), reuses it.
//!
//! Only one hart may run `_start`: it takes the boot stack and clears
//! `.bss` under the feet of anyone already running. So `_start` opens with
//! a lottery, as Linux's `head.S` does: the first hart through boots the
//! kernel; any later one (firmware that releases several harts to the
//! kernel's entry, or a hart that arrives late) asks SBI HSM to stop it,
//! so the boot hart can start it at `rvos_secondary_start` like the rest.
//! The ticket lives in `.data`, which the winner's `.bss` clear spares.

use super::{boot_page_table::BOOT_PAGE_TABLE, cpu, hart};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

core::arch::global_asm!(
    // ENABLE_BOOT_PAGING: satp <- Sv39 | PPN(boot table); then jump to the
    // high-half alias of the next instruction and move sp there too.
    // Clobbers t0, t1.
    ".macro ENABLE_BOOT_PAGING",
    "    lla   t0, {boot_table}",
    "    srli  t0, t0, 12",
    "    li    t1, 8 << 60",
    "    or    t0, t0, t1",
    "    csrw  satp, t0",
    "    sfence.vma",
    "    li    t1, {offset}",
    "    add   sp, sp, t1",
    "    lla   t0, 1f",
    "    add   t0, t0, t1",
    "    jr    t0",
    "1:",
    ".endm",
    "",
    ".section .text.entry, \"ax\", @progbits",
    ".globl _start",
    "_start:",
    // The lottery: only the hart that draws ticket 0 goes on. `lla` is
    // PC-relative, so with paging off it yields the ticket's physical
    // address.
    "    lla   t0, {lottery}",
    "    li    t1, 1",
    // (The assembler for `global_asm!` rejects AMOs without this.)
    "    .option push",
    "    .option arch, +a",
    "    amoadd.w t1, t1, (t0)",
    "    .option pop",
    "    bnez  t1, 6f",
    // tp = 0 until the hart-local block is installed: "hart unknown".
    "    mv    tp, zero",
    "    lla   sp, __boot_stack_top",
    "    ENABLE_BOOT_PAGING",
    // Now in the high half: `lla` yields high-half addresses.
    "    lla   t0, __bss_start",
    "    lla   t1, __bss_end",
    "2:  bgeu  t0, t1, 3f",
    "    sd    zero, 0(t0)",
    "    addi  t0, t0, 8",
    "    j     2b",
    "3:  call  {rust_entry}",
    "4:  wfi",
    "    j     4b",
    // A losing hart: SBI HSM hart_stop (EID "HSM", FID 1) returns it to
    // the firmware, stopped; it only comes back if that fails.
    "6:  li    a7, 0x48534d",
    "    li    a6, 1",
    "    ecall",
    "7:  wfi",
    "    j     7b",
    "",
    ".globl rvos_secondary_start",
    "rvos_secondary_start:",
    "    mv    tp, zero",
    "    mv    sp, a1",
    "    ENABLE_BOOT_PAGING",
    "    call  {secondary_entry}",
    "5:  wfi",
    "    j     5b",
    boot_table = sym BOOT_PAGE_TABLE,
    offset = const super::KERNEL_OFFSET,
    lottery = sym BOOT_LOTTERY,
    rust_entry = sym rvos_boot_entry,
    secondary_entry = sym rvos_secondary_entry,
);

/// First Rust code on a secondary hart.
extern "C" fn rvos_secondary_entry(hart_id: usize) -> ! {
    super::smp::secondary_main(hart_id)
}

/// Harts that entered `_start`; the first one boots. In `.data`, not
/// `.bss`: the winner clears `.bss` after drawing, and a late hart must
/// still find the ticket taken.
#[unsafe(link_section = ".data.boot_lottery")]
pub static BOOT_LOTTERY: AtomicU32 = AtomicU32::new(0);

/// The stack pointer and program counter seen by the first Rust code, kept
/// for the in-kernel test that checks the switch to the high half.
pub static BOOT_ENTRY_SP: AtomicUsize = AtomicUsize::new(0);
pub static BOOT_ENTRY_PC: AtomicUsize = AtomicUsize::new(0);
/// satp as the boot hart's entry code left it (the boot table).
pub static BOOT_ENTRY_SATP: AtomicUsize = AtomicUsize::new(0);

/// First Rust code on the boot hart, running in the high half on the boot
/// stack with `.bss` cleared.
#[unsafe(no_mangle)]
extern "C" fn rvos_boot_entry(hart_id: usize, dtb_phys: usize) -> ! {
    BOOT_ENTRY_SP.store(cpu::stack_pointer(), Ordering::Relaxed);
    BOOT_ENTRY_PC.store(cpu::program_counter(), Ordering::Relaxed);
    BOOT_ENTRY_SATP.store(riscv::register::satp::read().bits(), Ordering::Relaxed);
    let stack = crate::memory::layout::sections()[5].virt.clone();
    hart::describe(hart::BOOT_SLOT, hart_id, stack);
    hart::install(hart::BOOT_SLOT);
    super::trap::install();
    crate::kernel_main(hart_id, dtb_phys)
}

#[cfg(feature = "ktest")]
mod tests {
    use super::*;
    use crate::ktest::prelude::*;
    use crate::memory::layout;

    ktest! {
        fn pc_and_sp_were_in_the_high_half_after_the_switch() {
            let sp = BOOT_ENTRY_SP.load(Ordering::Relaxed);
            let pc = BOOT_ENTRY_PC.load(Ordering::Relaxed);
            let sections = layout::sections();
            let (text, stack) = (&sections[0].virt, &sections[5].virt);
            kassert!(pc >= crate::arch::KERNEL_OFFSET && text.contains(&pc), "pc {pc:#x} not in high-half .text {text:x?}");
            kassert!(sp >= crate::arch::KERNEL_OFFSET && sp > stack.start && sp <= stack.end, "sp {sp:#x} not in the high-half boot stack {stack:x?}");
            let now = cpu::program_counter();
            kassert!(text.contains(&now), "pc {now:#x} left .text");
            Ok(())
        }
    }

    ktest! {
        fn the_boot_lottery_ticket_survives_the_bss_clear() {
            // In `.bss` the winner's clear would reset it, and a late hart
            // would draw ticket 0 again and boot a second time.
            let ticket = core::ptr::addr_of!(BOOT_LOTTERY) as usize;
            let sections = layout::sections();
            let (data, bss) = (&sections[3].virt, &sections[4].virt);
            kassert!(data.contains(&ticket), "ticket {ticket:#x} not in .data {data:x?}");
            kassert!(!bss.contains(&ticket), "ticket {ticket:#x} in .bss {bss:x?}");
            // This hart drew 0 and booted; any later entrant was stopped.
            kassert!(BOOT_LOTTERY.load(Ordering::Relaxed) >= 1);
            Ok(())
        }
    }
}
