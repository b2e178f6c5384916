//! The 64-byte and buddy goals in one short run, and a second 64-byte
//! trace, `burst64`: 1000 allocations, then 1000 frees in random order.
//!
//! `KALLOC_BENCH_GOALS=31` (the value is the number of rounds; 31 if it
//! is not a number) times every contender on the random, 64 B churn and
//! 64 B burst traces, in rounds that interleave the contenders (so a
//! change in the machine's load hits all of them alike), and prints each
//! one's median time per operation, the slab's ratio to talc on both
//! 64-byte traces and the byte buddy's to buddy_system_allocator on every
//! trace. A burst play is short, so one burst sample is `BURST_PLAYS`
//! plays, each on a fresh contender; the times of the plays alone are
//! summed.
//!
//! `KALLOC_BENCH_IR=<contender>/burst64` (`instructions.rs`) counts the
//! burst trace's instructions, so `benches/ir_per_op.sh burst64
//! <contender>...` works on it too.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use crate::contenders::*;
use crate::host::Arena;
use crate::measure::time_play;
use crate::traces::Step;

/// Blocks of the burst trace.
const BURST_BLOCKS: usize = 1000;
/// Plays summed into one burst sample.
const BURST_PLAYS: u32 = 50;

/// `BURST_BLOCKS` allocations of 64 bytes, then every block freed, in a
/// seeded random order.
pub fn burst_64(seed: u64) -> Vec<Step> {
    let layout = std::alloc::Layout::from_size_align(64, 8).unwrap();
    let mut order: Vec<usize> = (0..BURST_BLOCKS).collect();
    order.shuffle(&mut SmallRng::seed_from_u64(seed));
    (0..BURST_BLOCKS)
        .map(|slot| Step::Alloc { slot, layout })
        .chain(order.into_iter().map(|slot| Step::Free { slot }))
        .collect()
}

/// Runs the goals mode if asked; returns whether it did.
pub fn run(arena: &Arena, random: &[Step], churn: &[Step], burst: &[Step]) -> bool {
    let Ok(rounds) = std::env::var("KALLOC_BENCH_GOALS") else {
        return false;
    };
    let rounds = rounds.parse().unwrap_or(31);
    goals(arena, rounds, random, churn, burst);
    true
}

/// One contender's samples: random, churn64, burst64.
struct Row {
    name: &'static str,
    samples: [Vec<Duration>; 3],
}

fn goals(arena: &Arena, rounds: usize, random: &[Step], churn: &[Step], burst: &[Step]) {
    let mut rows: Vec<Row> = Vec::new();
    for round in 0..rounds {
        macro_rules! time_round {
            ($ty:ty) => {{
                if round == 0 {
                    rows.push(Row {
                        name: <$ty>::NAME,
                        samples: Default::default(),
                    });
                }
                let row = rows.iter_mut().find(|r| r.name == <$ty>::NAME).unwrap();
                // The slab and the LIFO bound serve 64-byte traces only.
                if !matches!(<$ty>::NAME, OurSlab::NAME | Lifo::NAME) {
                    row.samples[0].push(time_play::<$ty>(arena, random));
                }
                row.samples[1].push(time_play::<$ty>(arena, churn));
                row.samples[2].push(
                    (0..BURST_PLAYS)
                        .map(|_| time_play::<$ty>(arena, burst))
                        .sum(),
                );
            }};
        }
        for_each!(
            time_round, OurSlab, Talc, Rlsf, OurTlsf, OurBuddy, Bsa, Llff, Floor, Lifo
        );
    }
    let steps = [
        random.len() as f64,
        churn.len() as f64,
        burst.len() as f64 * f64::from(BURST_PLAYS),
    ];
    // Median ns per step of each trace (NaN where not played).
    let medians: Vec<(&str, [f64; 3])> = rows
        .into_iter()
        .map(|row| {
            let per_step = std::array::from_fn(|k| {
                if row.samples[k].is_empty() {
                    return f64::NAN;
                }
                crate::median(row.samples[k].clone()).as_nanos() as f64 / steps[k]
            });
            (row.name, per_step)
        })
        .collect();
    let of = |name: &str| medians.iter().find(|r| r.0 == name).unwrap().1;
    let talc = of(Talc::NAME);
    println!(
        "\n== goals: median of {rounds} interleaved rounds (ns per step; ratio = time / talc's) =="
    );
    println!(
        "| allocator | random ns/op | churn64 ns/op | churn64 / talc | burst64 ns/op | burst64 / talc |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, [r, c, b]) in &medians {
        println!(
            "| {name} | {r:.2} | {c:.2} | {:.2} | {b:.2} | {:.2} |",
            c / talc[1],
            b / talc[2]
        );
    }
    let slab = of(OurSlab::NAME);
    let floor = of(Floor::NAME);
    let net = |ours: f64, peer: f64, floor: f64| (ours - floor) / (peer - floor);
    println!(
        "- slab / talc time: churn64 {:.2}x [net of the harness floor {:.2}x], burst64 {:.2}x [{:.2}x] (goal <= 0.5)",
        slab[1] / talc[1],
        net(slab[1], talc[1], floor[1]),
        slab[2] / talc[2],
        net(slab[2], talc[2], floor[2])
    );
    let (buddy, bsa) = (of(OurBuddy::NAME), of(Bsa::NAME));
    println!(
        "- buddy_system_allocator / kalloc buddy time: random {:.2}x, churn64 {:.2}x, burst64 {:.2}x (goal > 1 on each)",
        bsa[0] / buddy[0],
        bsa[1] / buddy[1],
        bsa[2] / buddy[2]
    );
}
