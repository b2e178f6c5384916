//! Per-hart data, reached in O(1) through `tp`. Today the block holds only the
//! hart id of the boot hart; SMP bring-up gives every hart its own block
//! (with its stack bounds, trap state, ...) and points its `tp` there.
//! Rust code on `riscv64gc-unknown-none-elf` never uses `tp` itself.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

/// One hart's private block. `tp` holds its address once the hart runs Rust
/// code, or 0 before that.
#[repr(C)]
pub struct HartLocal {
    hart_id: AtomicUsize,
}

static BOOT_HART: HartLocal = HartLocal {
    hart_id: AtomicUsize::new(usize::MAX),
};

/// Installs the boot hart's block in `tp`.
pub fn init_boot_hart(hart_id: usize) {
    BOOT_HART.hart_id.store(hart_id, Ordering::Relaxed);
    let block: *const HartLocal = &BOOT_HART;
    // SAFETY: `tp` is reserved for the hart-local pointer in this kernel and
    // the block is a static, so it outlives every read through `tp`.
    unsafe { asm!("mv tp, {}", in(reg) block, options(nostack, preserves_flags)) };
}

/// The running hart's id, or `None` before its block is installed.
pub fn current_id() -> Option<usize> {
    let block: *const HartLocal;
    // SAFETY: reads `tp` into a local.
    unsafe { asm!("mv {}, tp", out(reg) block, options(nomem, nostack, preserves_flags)) };
    if block.is_null() {
        return None;
    }
    // SAFETY: a non-null `tp` was set by `init_boot_hart` (the entry code
    // zeroes it first) and points at a static `HartLocal`.
    Some(unsafe { &*block }.hart_id.load(Ordering::Relaxed))
}
