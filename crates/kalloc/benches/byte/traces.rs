//! The seeded traces every contender plays (random actions, 64-byte
//! churn) and the play loop itself.

use std::alloc::Layout;
use std::ptr::NonNull;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::MAX_LIVE;
use crate::contenders::Contender;

/// One step of a trace: allocate `layout` into slot `slot`, or free the
/// block in slot `slot`.
#[derive(Clone, Copy)]
pub enum Step {
    Alloc { slot: usize, layout: Layout },
    Free { slot: usize },
}

/// Random actions: sizes log-uniform 8 B..64 KiB, one in 16 with an
/// alignment of 64..4096, up to `MAX_LIVE` live blocks (a slot model keeps
/// the trace identical for everyone; a failed allocation leaves its slot
/// empty and the later free skips it).
pub fn random_actions(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut live: Vec<usize> = Vec::new();
    let mut free_slots: Vec<usize> = (0..MAX_LIVE).rev().collect();
    let mut trace = Vec::with_capacity(steps + MAX_LIVE);
    for _ in 0..steps {
        let grow = live.is_empty() || (live.len() < MAX_LIVE && rng.gen_bool(0.5));
        if grow {
            let size = (2f64.powf(rng.gen_range(3.0..16.0))) as usize;
            let align = if rng.gen_ratio(1, 16) {
                1 << rng.gen_range(6..=12)
            } else {
                8
            };
            let slot = free_slots.pop().unwrap();
            live.push(slot);
            trace.push(Step::Alloc {
                slot,
                layout: Layout::from_size_align(size, align).unwrap(),
            });
        } else {
            let slot = live.swap_remove(rng.gen_range(0..live.len()));
            free_slots.push(slot);
            trace.push(Step::Free { slot });
        }
    }
    trace.extend(live.into_iter().map(|slot| Step::Free { slot }));
    trace
}

/// Small fixed-size churn: 1024 live 64-byte blocks, then random
/// free-one-allocate-one.
pub fn churn_64(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let layout = Layout::from_size_align(64, 8).unwrap();
    let mut trace: Vec<Step> = (0..1024).map(|slot| Step::Alloc { slot, layout }).collect();
    for _ in 0..steps / 2 {
        let slot = rng.gen_range(0..1024);
        trace.push(Step::Free { slot });
        trace.push(Step::Alloc { slot, layout });
    }
    trace.extend((0..1024).map(|slot| Step::Free { slot }));
    trace
}

/// Plays a trace, writing one byte into every block it allocates (so a
/// block is touched as a user would touch it).
pub fn play<C: Contender>(c: &mut C, trace: &[Step], slots: &mut [Option<(NonNull<u8>, Layout)>]) {
    for step in trace {
        match *step {
            Step::Alloc { slot, layout } => {
                slots[slot] = c.alloc(layout).map(|p| {
                    // SAFETY: a live block of at least one byte.
                    unsafe { p.as_ptr().write(1) };
                    (p, layout)
                })
            }
            Step::Free { slot } => {
                if let Some((p, layout)) = slots[slot].take() {
                    // SAFETY: live block, freed once.
                    unsafe { c.free(p, layout) }
                }
            }
        }
    }
}

/// One empty slot per possible live block.
pub fn fresh_slots() -> Vec<Option<(NonNull<u8>, Layout)>> {
    vec![None; MAX_LIVE]
}
