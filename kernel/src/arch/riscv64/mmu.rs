//! The MMU as the rest of the kernel needs it: installing a page table on
//! this hart (`satp`) and invalidating TLB entries here and on the other
//! harts (`sfence.vma`, SBI RFENCE).

use super::{PAGE_SIZE, hart};

/// This hart's `satp`: which page table it translates through.
#[cfg_attr(
    not(feature = "ktest"),
    expect(dead_code, reason = "the page-table tests are its only user so far")
)]
pub fn current_satp() -> usize {
    riscv::register::satp::read().bits()
}

/// Installs the table `satp` names on this hart and flushes its TLB.
///
/// # Safety
/// The table maps this code, the current stack, the hart-local block and
/// every address the kernel will touch next, at the addresses it already
/// uses, with the permissions that code needs: execution continues in it.
pub unsafe fn switch_to(satp: usize) {
    // SAFETY: the caller's guarantee makes the switch transparent.
    unsafe { riscv::register::satp::write(riscv::register::satp::Satp::from_bits(satp)) };
    flush_local_all();
}

/// Drops every TLB entry of this hart.
pub fn flush_local_all() {
    riscv::asm::sfence_vma_all();
}

/// Invalidates `range` in the TLBs of every other online hart (SBI RFENCE)
/// and of this one; returns how many other harts were asked. Panics if the
/// firmware refuses: a stale entry on another hart would outlive the
/// mapping.
pub fn flush_all_harts(range: core::ops::Range<usize>) -> usize {
    let me = hart::current().hart_id();
    let mut remote = 0;
    for other in hart::online().filter(|h| h.hart_id() != me) {
        remote += 1;
        let ret = sbi_rt::remote_sfence_vma(
            sbi_rt::HartMask::from_mask_base(1, other.hart_id()),
            range.start,
            range.end - range.start,
        );
        assert_eq!(
            ret.error,
            0,
            "SBI remote_sfence_vma to hart {} failed",
            other.hart_id()
        );
    }
    let mut page = range.start & !(PAGE_SIZE - 1);
    while page < range.end {
        riscv::asm::sfence_vma(0, page);
        page += PAGE_SIZE;
    }
    remote
}
