//! Every hart the device tree lists runs, on its own stack with its own
//! `tp` block, takes timer interrupts, and runs jobs.

use super::*;
use crate::arch::cpu;
use crate::ktest::prelude::*;
use core::sync::atomic::AtomicU64;

static SEEN: [AtomicUsize; crate::platform::MAX_HARTS] =
    [const { AtomicUsize::new(0) }; crate::platform::MAX_HARTS];

fn record_hart(slot: usize) {
    let me = hart::current();
    let sp = cpu::stack_pointer();
    // Encodes "tp block matches the slot and sp is inside its stack".
    let ok = me.slot() == slot && me.stack().contains(&sp) && cpu::irq_enabled();
    SEEN[slot].store(if ok { 1 } else { 2 }, Ordering::Release);
}

ktest! {
    fn every_listed_hart_is_online_on_its_own_stack_and_tp_block() {
        let platform = crate::platform::get();
        kassert_eq!(online_count(), platform.hart_ids().len());
        if let Some(expected) = crate::ktest::test_args().expect_harts {
            kassert_eq!(online_count(), expected);
        }
        for seen in &SEEN {
            seen.store(0, Ordering::Relaxed);
        }
        run_on_all_harts(record_hart);
        for block in hart::online() {
            kassert_eq!(SEEN[block.slot()].load(Ordering::Acquire), 1, "hart {} (slot {})", block.hart_id(), block.slot());
            kassert!(platform.hart_ids().contains(&block.hart_id()));
        }
        let mut ids: [usize; 8] = [usize::MAX; 8];
        for (i, block) in hart::online().take(8).enumerate() {
            kassert!(!ids.contains(&block.hart_id()), "hart id {} twice", block.hart_id());
            ids[i] = block.hart_id();
            let stack = block.stack();
            for other in hart::online().filter(|o| o.slot() != block.slot()) {
                let theirs = other.stack();
                kassert!(stack.end <= theirs.start || theirs.end <= stack.start, "stacks of slots {} and {} overlap", block.slot(), other.slot());
            }
        }
        Ok(())
    }
}

static TICKS_BEFORE: [AtomicU64; crate::platform::MAX_HARTS] =
    [const { AtomicU64::new(0) }; crate::platform::MAX_HARTS];

ktest! {
    fn the_timer_ticks_on_every_hart_with_interrupts_enabled() {
        kassert!(crate::arch::timer::interval() > 0, "timer_hz=0: no ticks to check");
        kassert!(cpu::irq_enabled(), "interrupts are masked in normal kernel execution");
        for block in hart::online() {
            TICKS_BEFORE[block.slot()].store(block.timer_ticks.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        // Three intervals of waiting is enough for at least one tick each.
        let deadline = cpu::ticks() + 3 * crate::arch::timer::interval();
        while cpu::ticks() < deadline {
            core::hint::spin_loop();
        }
        for block in hart::online() {
            let before = TICKS_BEFORE[block.slot()].load(Ordering::Relaxed);
            let after = block.timer_ticks.load(Ordering::Relaxed);
            kassert!(after > before, "hart {} took no timer interrupt ({before} -> {after})", block.hart_id());
        }
        Ok(())
    }
}

static ON_TRAP_STACK: AtomicUsize = AtomicUsize::new(0);
static OFF_TRAP_STACK: AtomicUsize = AtomicUsize::new(0);

fn check_trap_stack() {
    let sp = cpu::stack_pointer();
    if hart::current().trap_stack().contains(&sp) {
        ON_TRAP_STACK.fetch_add(1, Ordering::Relaxed);
    } else {
        OFF_TRAP_STACK.fetch_add(1, Ordering::Relaxed);
    }
}

ktest! {
    fn interrupts_are_handled_on_the_hart_s_trap_stack() {
        kassert!(crate::arch::timer::interval() > 0, "timer_hz=0: no ticks to check");
        ON_TRAP_STACK.store(0, Ordering::Relaxed);
        OFF_TRAP_STACK.store(0, Ordering::Relaxed);
        crate::arch::timer::set_hook(Some(check_trap_stack));
        let deadline = cpu::ticks() + 3 * crate::arch::timer::interval();
        while cpu::ticks() < deadline {
            core::hint::spin_loop();
        }
        crate::arch::timer::set_hook(None);
        let (on, off) = (ON_TRAP_STACK.load(Ordering::Relaxed), OFF_TRAP_STACK.load(Ordering::Relaxed));
        kassert!(on > 0, "no timer interrupt ran the hook");
        kassert_eq!(off, 0, "{off} of {} handlers ran off the trap stack", on + off);
        Ok(())
    }
}
