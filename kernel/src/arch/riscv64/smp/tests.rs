//! Every hart the device tree lists runs, on its own stack with its own
//! `tp` block, takes timer interrupts, and runs jobs.

use super::*;
use crate::arch::cpu;
use crate::ktest::prelude::*;

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

/// How long the timer tests wait for ticks (see [`wait_until`]); a tick is
/// due every interval (10 ms at the default rate).
const TICK_WAIT_SECONDS: u64 = 2;

ktest! {
    fn the_timer_ticks_on_every_hart_with_interrupts_enabled() {
        kassert!(crate::arch::timer::interval() > 0, "timer_hz=0: no ticks to check");
        kassert!(cpu::irq_enabled(), "interrupts are masked in normal kernel execution");
        let ticks = |block: &hart::HartLocal| block.timer_ticks.load(Ordering::Relaxed);
        let before: [u64; crate::platform::MAX_HARTS] = core::array::from_fn(|slot| ticks(&hart::HARTS[slot]));
        wait_until(TICK_WAIT_SECONDS, || hart::online().all(|block| ticks(block) > before[block.slot()]));
        for block in hart::online() {
            let (before, after) = (before[block.slot()], ticks(block));
            // What a failure needs to tell a stalled hart (last tick long
            // ago, no trap in progress) from one stuck in a handler.
            let since_ms = cpu::ticks().saturating_sub(block.last_tick_at.load(Ordering::Relaxed)) * 1000 / crate::platform::get().timebase_hz;
            let depth = block.trap_depth.load(Ordering::Relaxed);
            kassert!(
                after > before,
                "hart {} took no timer interrupt in {TICK_WAIT_SECONDS} s ({before} -> {after}; its last tick re-armed {since_ms} ms ago; {depth} traps in progress on it)",
                block.hart_id()
            );
        }
        Ok(())
    }
}

/// Timer handlers per hart slot that ran on / off the hart's trap stack.
static ON_TRAP_STACK: [AtomicUsize; crate::platform::MAX_HARTS] =
    [const { AtomicUsize::new(0) }; crate::platform::MAX_HARTS];
static OFF_TRAP_STACK: [AtomicUsize; crate::platform::MAX_HARTS] =
    [const { AtomicUsize::new(0) }; crate::platform::MAX_HARTS];

fn check_trap_stack() {
    let me = hart::current();
    let sp = cpu::stack_pointer();
    let counter = if me.trap_stack().contains(&sp) {
        &ON_TRAP_STACK
    } else {
        &OFF_TRAP_STACK
    };
    counter[me.slot()].fetch_add(1, Ordering::Relaxed);
}

fn handlers_on_slot(slot: usize) -> (usize, usize) {
    (
        ON_TRAP_STACK[slot].load(Ordering::Relaxed),
        OFF_TRAP_STACK[slot].load(Ordering::Relaxed),
    )
}

ktest! {
    fn interrupts_are_handled_on_the_hart_s_trap_stack() {
        kassert!(crate::arch::timer::interval() > 0, "timer_hz=0: no ticks to check");
        for (on, off) in ON_TRAP_STACK.iter().zip(&OFF_TRAP_STACK) {
            on.store(0, Ordering::Relaxed);
            off.store(0, Ordering::Relaxed);
        }
        crate::arch::timer::set_hook(Some(check_trap_stack));
        wait_until(TICK_WAIT_SECONDS, || hart::online().all(|block| handlers_on_slot(block.slot()) != (0, 0)));
        crate::arch::timer::set_hook(None);
        for block in hart::online() {
            let (on, off) = handlers_on_slot(block.slot());
            kassert!(on > 0, "no timer interrupt ran the hook on hart {} in {TICK_WAIT_SECONDS} s", block.hart_id());
            kassert_eq!(off, 0, "{off} of {} handlers on hart {} ran off the trap stack", on + off, block.hart_id());
        }
        Ok(())
    }
}
