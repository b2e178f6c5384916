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

/// Stack size of every secondary hart (the boot stack's size too).
pub const STACK_PAGES: usize = 16;
const STRIDE_PAGES: usize = STACK_PAGES + 1;
/// Trap stack size of every hart.
pub const TRAP_STACK_PAGES: usize = 4;
const TRAP_STRIDE_PAGES: usize = TRAP_STACK_PAGES + 1;

/// Allocates the kernel stacks of `others` (slot, hart id) and records
/// each in its hart-local block with the hart id; then a trap stack for
/// the boot hart and each of `others`.
pub fn allocate(others: impl Iterator<Item = (usize, usize)> + Clone) -> AllocResult<()> {
    let count = others.clone().count();
    if count > 0 {
        let base = super::pages::alloc(count * STRIDE_PAGES, PAGE_SIZE)?;
        for (index, (slot, hart_id)) in others.clone().enumerate() {
            let bottom = base + (index * STRIDE_PAGES + 1) * PAGE_SIZE;
            hart::describe(slot, hart_id, bottom..bottom + STACK_PAGES * PAGE_SIZE);
        }
    }
    let base = super::pages::alloc((count + 1) * TRAP_STRIDE_PAGES, PAGE_SIZE)?;
    let slots = core::iter::once(hart::BOOT_SLOT).chain(others.map(|(slot, _)| slot));
    for (index, slot) in slots.enumerate() {
        let bottom = base + (index * TRAP_STRIDE_PAGES + 1) * PAGE_SIZE;
        hart::HARTS[slot].set_trap_stack(bottom..bottom + TRAP_STACK_PAGES * PAGE_SIZE);
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
