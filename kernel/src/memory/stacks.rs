//! Stacks of the harts, from the page allocator, each with an unmapped
//! guard page below it: the kernel stacks of the secondary harts (the boot
//! hart runs on the image's boot stack, whose guard page is the linker
//! script's `__boot_stack_guard`) and every hart's trap stack.
//!
//! ```text
//!   kernel stacks: | guard | stack of slot 1 (64 KiB) | guard | stack of slot 2 | ...
//!   trap stacks:   | guard | trap stack of slot 0 (16 KiB) | guard | slot 1 | ...
//!                    ^ unmapped in the kernel page table (boot table: still mapped)
//! ```

use crate::arch::{PAGE_SIZE, hart};
use kalloc::AllocResult;

/// Stack size of every secondary hart (the boot stack is the linker
/// script's `BOOT_STACK_SIZE`, larger: the heap is built on it).
pub const STACK_PAGES: usize = 16;
const STRIDE_PAGES: usize = STACK_PAGES + 1;
/// Trap stack size of every hart.
pub const TRAP_STACK_PAGES: usize = 4;
const TRAP_STRIDE_PAGES: usize = TRAP_STACK_PAGES + 1;

/// Allocates the kernel stacks of `others` (slot, hart id) and records
/// each in its hart-local block with the hart id; then a trap stack for
/// the boot hart and each of `others`. Every new stack is painted whole
/// (see [`stack_depth`]).
pub fn allocate(others: impl Iterator<Item = (usize, usize)> + Clone) -> AllocResult<()> {
    let count = others.clone().count();
    if count > 0 {
        let base = super::pages::alloc(count * STRIDE_PAGES, PAGE_SIZE)?;
        for (index, (slot, hart_id)) in others.clone().enumerate() {
            let bottom = base + (index * STRIDE_PAGES + 1) * PAGE_SIZE;
            let stack = bottom..bottom + STACK_PAGES * PAGE_SIZE;
            // SAFETY: just allocated for this stack, mapped RW in the linear
            // map and page-aligned; its hart has not started.
            unsafe { paint(stack.clone()) };
            hart::describe(slot, hart_id, stack);
        }
    }
    let base = super::pages::alloc((count + 1) * TRAP_STRIDE_PAGES, PAGE_SIZE)?;
    let slots = core::iter::once(hart::BOOT_SLOT).chain(others.map(|(slot, _)| slot));
    for (index, slot) in slots.enumerate() {
        let bottom = base + (index * TRAP_STRIDE_PAGES + 1) * PAGE_SIZE;
        let stack = bottom..bottom + TRAP_STACK_PAGES * PAGE_SIZE;
        // SAFETY: as above; no hart traps onto it before `set_trap_stack`
        // and its `use_trap_stack`.
        unsafe { paint(stack.clone()) };
        hart::HARTS[slot].set_trap_stack(stack);
    }
    Ok(())
}

/// The guard page below `block`'s trap stack (empty before it has one).
pub fn trap_guard_of(block: &hart::HartLocal) -> core::ops::Range<usize> {
    let bottom = block.trap_stack().start;
    if bottom == 0 {
        return 0..0;
    }
    bottom - PAGE_SIZE..bottom
}

/// The guard page below `slot`'s stack.
pub fn guard_of(block: &hart::HartLocal) -> core::ops::Range<usize> {
    let bottom = block.stack().start;
    bottom - PAGE_SIZE..bottom
}

/// What [`paint`] writes: a value no pointer or small integer takes, so a
/// word that differs was written by a stack frame.
const STACK_PAINT: u64 = 0x57ac_57ac_57ac_57ac;

/// Fills `range` with [`STACK_PAINT`], so [`deepest_use`] can later tell
/// how deep the stack ever went (Linux's `CONFIG_DEBUG_STACK_USAGE`).
///
/// # Safety
/// `range` is mapped RW, 8-byte aligned at both ends, and no live data
/// (no frame in use, nothing another hart reads) lies in it.
unsafe fn paint(range: core::ops::Range<usize>) {
    for addr in range.step_by(8) {
        // SAFETY: inside `range`, which the caller vouches for.
        unsafe { (addr as *mut u64).write_volatile(STACK_PAINT) };
    }
}

/// The most bytes of `stack` ever in use since it was painted: from its top
/// down to the lowest word no longer painted. The guard page below a stack
/// only catches an overflow that touches it: without stack probes a frame
/// larger than a page can step over it, so the depth is measured and
/// tested instead of trusted.
///
/// # Safety
/// `stack` is mapped readable and 8-byte aligned at both ends.
unsafe fn deepest_use(stack: core::ops::Range<usize>) -> usize {
    let lowest_written = stack
        .clone()
        .step_by(8)
        // SAFETY: inside `stack`, which the caller vouches for; a plain read.
        .find(|&addr| unsafe { (addr as *const u64).read_volatile() } != STACK_PAINT)
        .unwrap_or(stack.end);
    stack.end - lowest_written
}

/// How deep `block`'s kernel stack ever went, in bytes (0 before it has
/// one). The boot hart's counts from its first Rust frame.
pub fn stack_depth(block: &hart::HartLocal) -> usize {
    // SAFETY: a hart's stack (the boot stack, or pages `allocate` took) is
    // page-aligned and mapped RW for the whole run; empty before then.
    unsafe { deepest_use(block.stack()) }
}

/// How deep `block`'s trap stack ever went, in bytes (0 before it has one).
pub fn trap_stack_depth(block: &hart::HartLocal) -> usize {
    // SAFETY: as for `stack_depth`; trap stacks come from `allocate` too.
    unsafe { deepest_use(block.trap_stack()) }
}

/// Paints the unused part of the boot stack (below the caller's frame).
/// Called first thing on the boot hart.
#[inline(never)]
pub fn paint_boot_stack() {
    let stack = super::layout::boot_stack();
    // Leave this frame and a margin below it alone: they are in use.
    let end = (crate::arch::cpu::stack_pointer() - 256) & !7;
    // SAFETY: the boot stack is mapped RW and 8-byte aligned, and nothing
    // lives below this leaf function's frame and the margin.
    unsafe { paint(stack.start..end) };
}

/// The boot stack's [`stack_depth`] when the boot finished (before the
/// tests or the monitor ran: a test that overflows the boot stack on
/// purpose wipes its paint).
static DEPTH_AT_BOOT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Notes how deep the boot went; called once the boot is done.
pub fn record_boot_depth() {
    DEPTH_AT_BOOT.store(
        stack_depth(&hart::HARTS[hart::BOOT_SLOT]),
        core::sync::atomic::Ordering::Relaxed,
    );
}

/// The boot stack's depth when the boot finished.
#[cfg_attr(
    not(feature = "ktest"),
    expect(dead_code, reason = "the in-kernel tests are its only user")
)]
pub fn boot_depth() -> usize {
    DEPTH_AT_BOOT.load(core::sync::atomic::Ordering::Relaxed)
}

#[cfg(feature = "ktest")]
mod tests {
    use super::*;
    use crate::ktest::prelude::*;

    ktest! {
        fn the_boot_stack_keeps_a_quarter_free_at_its_deepest() {
            let size = crate::memory::layout::boot_stack().len();
            let used = boot_depth();
            crate::print!("(deepest {} of {} KiB during the boot) ", used / 1024, size / 1024);
            kassert!(used > 0, "the paint is gone or was never applied");
            kassert!(used <= size * 3 / 4, "the boot stack went {used} bytes deep of {size}");
            Ok(())
        }
    }

    ktest! {
        fn every_hart_s_stack_and_trap_stack_are_painted_and_keep_a_quarter_free() {
            // Every hart has taken a tick, so used its trap stack.
            wait_until(2, || hart::online().all(|h| h.timer_ticks.load(core::sync::atomic::Ordering::Relaxed) > 0));
            for block in hart::online() {
                let id = block.hart_id();
                let stacks = [
                    ("trap stack", trap_stack_depth(block), block.trap_stack().len()),
                    ("stack", stack_depth(block), block.stack().len()),
                ];
                // The boot stack has its own test: the overflow test wipes it.
                let count = if block.slot() == hart::BOOT_SLOT { 1 } else { 2 };
                for &(what, used, size) in stacks.iter().take(count) {
                    crate::print!("(hart {id} {what} {used}/{size}) ");
                    kassert!(used > 0, "hart {id}'s {what} was never painted or never used");
                    kassert!(used <= size * 3 / 4, "hart {id}'s {what} went {used} bytes deep of {size}");
                }
            }
            Ok(())
        }
    }
}
