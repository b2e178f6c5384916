//! Instruction counting:
//! `KALLOC_BENCH_IR=<contender>/<random|churn64|burst64>` plays one trace
//! `IR_PLAYS` times with every allocation and free called through an
//! out-of-line wrapper (`ir_alloc`, `ir_free`), so that
//! callgrind's inclusive cost of each wrapper is what the allocator itself
//! executed: the allocator is inlined into the wrapper or called from it,
//! and the play loop, the trace and the slot array stay outside. The
//! number of calls of each is printed, so Ir per call is one division.
//! `benches/ir_per_op.sh` runs it under callgrind for the contenders and
//! prints the table.
//!
//! The wrappers cost a call, a return and moving the arguments (a few
//! instructions per call, alike for every contender); the harness floor
//! (a bump pointer) run through the same wrappers shows how many.

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;

use crate::contenders::*;
use crate::host::Arena;
use crate::traces::{Step, fresh_slots};

/// Plays per run: every play starts from a fresh contender over the same
/// arena, so each executes the same instructions; several plays only
/// dilute the setup, which the wrappers exclude anyway.
const IR_PLAYS: usize = 10;
/// Plays of the burst trace (`goals.rs`), 2000 steps each.
const BURST_IR_PLAYS: usize = 200;

#[inline(never)]
fn ir_alloc<C: Contender>(c: &mut C, layout: Layout) -> Option<NonNull<u8>> {
    c.alloc(layout)
}

#[inline(never)]
fn ir_free<C: Contender>(c: &mut C, ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: forwarded from `play_counted`, which frees each block once.
    unsafe { c.free(ptr, layout) }
}

/// The play loop of `traces::play` through the wrappers; returns the
/// number of allocation and free calls.
fn play_counted<C: Contender>(c: &mut C, trace: &[Step]) -> (u64, u64) {
    let mut slots = fresh_slots();
    let (mut allocs, mut frees) = (0, 0);
    for step in trace {
        match *step {
            Step::Alloc { slot, layout } => {
                allocs += 1;
                slots[slot] = ir_alloc(c, layout).map(|p| {
                    // SAFETY: a live block of at least one byte.
                    unsafe { p.as_ptr().write(1) };
                    (p, layout)
                })
            }
            Step::Free { slot } => {
                if let Some((p, layout)) = slots[slot].take() {
                    frees += 1;
                    ir_free(c, p, layout);
                }
            }
        }
    }
    (allocs, frees)
}

/// Runs the counting mode if `KALLOC_BENCH_IR` names a contender and a
/// trace (`random`, `churn64` or `burst64`); returns whether it did. A
/// burst play is short, so it is played `BURST_IR_PLAYS` times.
pub fn count_only(arena: &Arena, random: &[Step], churn: &[Step], burst: &[Step]) -> bool {
    let Ok(what) = std::env::var("KALLOC_BENCH_IR") else {
        return false;
    };
    let (trace, plays) = if what.ends_with("/random") {
        (random, IR_PLAYS)
    } else if what.ends_with("/burst64") {
        (burst, BURST_IR_PLAYS)
    } else {
        (churn, IR_PLAYS)
    };
    macro_rules! count {
        ($ty:ty) => {
            if what.starts_with(<$ty>::NAME) {
                let (mut allocs, mut frees) = (0, 0);
                for _ in 0..plays {
                    let mut c = <$ty>::new(arena);
                    let (a, f) = play_counted(&mut c, black_box(trace));
                    allocs += a;
                    frees += f;
                }
                println!("ir_calls {} allocs {allocs} frees {frees}", <$ty>::NAME);
                return true;
            }
        };
    }
    for_each!(
        count, OurTlsf, OurBuddy, OurSlab, Rlsf, Talc, Bsa, Llff, Floor, Lifo
    );
    panic!("unknown contender in KALLOC_BENCH_IR={what}");
}
