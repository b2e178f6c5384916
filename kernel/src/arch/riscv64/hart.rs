//! Per-hart data, reached in O(1) through `tp`: every hart that runs Rust
//! code points `tp` at its own [`HartLocal`] in the static [`HARTS`] table
//! (indexed by *slot*: 0 for the boot hart, then the others in
//! device-tree order).
//! Rust code on `riscv64gc-unknown-none-elf` never uses `tp` itself.
//!
//! The block holds what only its hart writes (interrupt-masking depth, the
//! armed expected fault, tick counter) and what others read (hart id, stack
//! bounds, online flag).

use crate::platform::MAX_HARTS;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use ksync::IrqNesting;

/// One hart's private block.
#[repr(C)]
pub struct HartLocal {
    hart_id: AtomicUsize,
    slot: AtomicUsize,
    /// Stack bounds (virtual); the guard page lies just below `stack_bottom`.
    stack_bottom: AtomicUsize,
    stack_top: AtomicUsize,
    /// The trap stack (sscratch), with its own guard page below it.
    trap_stack_bottom: AtomicUsize,
    trap_stack_top: AtomicUsize,
    online: AtomicBool,
    /// Timer interrupts taken on this hart.
    pub timer_ticks: AtomicU64,
    /// The timebase count when this hart's last timer interrupt re-armed
    /// the timer (0 before the first): how long ago a hart last ticked.
    pub last_tick_at: AtomicU64,
    /// Nesting depth of trap handlers currently running on this hart.
    pub trap_depth: AtomicUsize,
    /// Of those, interrupt handlers (not exceptions, which run on behalf
    /// of the code they interrupted).
    pub interrupt_depth: AtomicUsize,
    /// ksync's interrupt-masking depth for this hart.
    pub irq_nesting: IrqNesting,
    /// ksync's lock-order validation state for this hart.
    pub lockdep: ksync::lockdep::LockdepHart,
}

impl HartLocal {
    const fn new() -> Self {
        Self {
            hart_id: AtomicUsize::new(usize::MAX),
            slot: AtomicUsize::new(usize::MAX),
            stack_bottom: AtomicUsize::new(0),
            stack_top: AtomicUsize::new(0),
            trap_stack_bottom: AtomicUsize::new(0),
            trap_stack_top: AtomicUsize::new(0),
            online: AtomicBool::new(false),
            timer_ticks: AtomicU64::new(0),
            last_tick_at: AtomicU64::new(0),
            trap_depth: AtomicUsize::new(0),
            interrupt_depth: AtomicUsize::new(0),
            irq_nesting: IrqNesting::new(),
            lockdep: ksync::lockdep::LockdepHart::new(),
        }
    }

    pub fn hart_id(&self) -> usize {
        self.hart_id.load(Ordering::Relaxed)
    }

    /// Position of the hart in the device tree's list (0-based).
    pub fn slot(&self) -> usize {
        self.slot.load(Ordering::Relaxed)
    }

    /// The hart's stack, `bottom..top`; the guard page is the page below.
    pub fn stack(&self) -> core::ops::Range<usize> {
        self.stack_bottom.load(Ordering::Relaxed)..self.stack_top.load(Ordering::Relaxed)
    }

    /// The hart's trap stack, `bottom..top` (empty before it has one).
    pub fn trap_stack(&self) -> core::ops::Range<usize> {
        self.trap_stack_bottom.load(Ordering::Relaxed)..self.trap_stack_top.load(Ordering::Relaxed)
    }

    /// Records the trap stack (before the hart uses it).
    pub fn set_trap_stack(&self, stack: core::ops::Range<usize>) {
        self.trap_stack_bottom.store(stack.start, Ordering::Relaxed);
        self.trap_stack_top.store(stack.end, Ordering::Release);
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    pub fn set_online(&self) {
        self.online.store(true, Ordering::Release);
    }
}

/// The boot hart's slot; the others take slots 1.. in device-tree order.
pub const BOOT_SLOT: usize = 0;

/// Every hart's block, by slot.
pub static HARTS: [HartLocal; MAX_HARTS] = [const { HartLocal::new() }; MAX_HARTS];

/// Fills slot `slot` for hart `hart_id` with its stack bounds (called by
/// the boot hart for every hart before starting it).
pub fn describe(slot: usize, hart_id: usize, stack: core::ops::Range<usize>) {
    let block = &HARTS[slot];
    block.hart_id.store(hart_id, Ordering::Relaxed);
    block.slot.store(slot, Ordering::Relaxed);
    block.stack_bottom.store(stack.start, Ordering::Relaxed);
    block.stack_top.store(stack.end, Ordering::Release);
}

/// Points the calling hart's `tp` at slot `slot`'s block.
pub fn install(slot: usize) {
    let block: *const HartLocal = &HARTS[slot];
    // SAFETY: `tp` is reserved for the hart-local pointer in this kernel and
    // the block is a static, so it outlives every read through `tp`.
    unsafe { asm!("mv tp, {}", in(reg) block, options(nostack, preserves_flags)) };
}

/// The running hart's block, or `None` before it is installed.
#[inline]
pub fn try_current() -> Option<&'static HartLocal> {
    let block: *const HartLocal;
    // SAFETY: reads `tp` into a local.
    unsafe { asm!("mv {}, tp", out(reg) block, options(nomem, nostack, preserves_flags)) };
    // SAFETY: a non-null `tp` was set by `install` (the entry code zeroes it
    // first) and points into the static `HARTS`.
    unsafe { block.as_ref() }
}

/// The running hart's block. Panics before `install` (boot code only).
#[inline]
pub fn current() -> &'static HartLocal {
    try_current().expect("hart-local block not installed yet")
}

/// The running hart's id, or `None` before its block is installed.
pub fn current_id() -> Option<usize> {
    try_current().map(HartLocal::hart_id)
}

/// The blocks of the harts that run kernel code.
pub fn online() -> impl Iterator<Item = &'static HartLocal> {
    HARTS.iter().filter(|h| h.is_online())
}
