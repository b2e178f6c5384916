//! Byte-allocator benchmark: our TLSF, buddy and slab side by side with
//! rlsf, talc, buddy_system_allocator and linked_list_allocator on the same
//! seeded traces. Criterion times each (allocator, workload); the summary
//! tables printed at the end (throughput ratios, heap efficiency, latency
//! percentiles) come from the same run.
//!
//! `cargo bench -p rvos-kalloc --bench byte` (full) or with
//! `KALLOC_BENCH_QUICK=1` (short criterion runs, fewer rounds);
//! `KALLOC_BENCH_TABLES_ONLY=1` skips criterion and prints only the tables;
//! `KALLOC_BENCH_PROFILE=<contender>/<random|churn64>` plays one trace 200
//! times and nothing else (for `perf` and `valgrind --tool=callgrind`);
//! `KALLOC_BENCH_IR=<contender>/<random|churn64|burst64>` plays it through
//! out-of-line wrappers for counting each allocator's own instructions
//! (`benches/ir_per_op.sh` runs it under callgrind and prints Ir per call).
//! The harness floor row (a bump pointer that never frees) is what the
//! play loop costs per step without any allocator; the unchecked LIFO row
//! (64 B churn only) is the fastest any allocator could be on that trace.

#[path = "../tests/byte_common/host.rs"]
#[allow(dead_code)]
mod host;

/// Expands `$mac!(T)` for every listed contender type.
macro_rules! for_each {
    ($mac:ident, $($ty:ty),*) => { $( $mac!($ty); )* };
}

#[path = "byte/contenders.rs"]
mod contenders;
#[path = "byte/goals.rs"]
mod goals;
#[path = "byte/instructions.rs"]
mod instructions;
#[path = "byte/measure.rs"]
mod measure;
#[path = "byte/traces.rs"]
mod traces;

use std::time::Duration;

use contenders::*;
use criterion::Criterion;
use host::Arena;
use measure::{Efficiency, efficiency, latencies, profile_only, time_play};
use traces::{Step, churn_64, fresh_slots, play, random_actions};

const ARENA: usize = 32 << 20;
const MAX_LIVE: usize = 4096;

struct Config {
    quick: bool,
    rounds: usize,
    actions: usize,
    efficiency_rounds: u64,
}

fn criterion_bench<C: Contender>(c: &mut Criterion, arena: &Arena, workload: &str, trace: &[Step]) {
    c.bench_function(&format!("{workload}/{}", C::NAME), |b| {
        b.iter_batched_ref(
            || (C::new(arena), fresh_slots()),
            |(contender, slots)| play(contender, trace, slots),
            criterion::BatchSize::LargeInput,
        )
    });
}

fn main() {
    let quick = std::env::var_os("KALLOC_BENCH_QUICK").is_some();
    let config = if quick {
        Config {
            quick,
            rounds: 5,
            actions: 20_000,
            efficiency_rounds: 5,
        }
    } else {
        Config {
            quick,
            rounds: 15,
            actions: 100_000,
            efficiency_rounds: 20,
        }
    };
    let mut criterion = Criterion::default()
        .sample_size(if quick { 10 } else { 20 })
        .warm_up_time(Duration::from_millis(if quick { 200 } else { 1000 }))
        .measurement_time(Duration::from_millis(if quick { 500 } else { 3000 }))
        .configure_from_args();
    let arena = Arena::new(ARENA);
    let random = random_actions(0xbe9c, config.actions);
    let churn = churn_64(0xc4u64, config.actions);

    let burst = goals::burst_64(0xb0a5);

    // `KALLOC_BENCH_GOALS=31` (31 rounds) times only the goals' rows (`byte/goals.rs`).
    if goals::run(&arena, &random, &churn, &burst) {
        return;
    }
    if profile_only(&arena, &random, &churn)
        || instructions::count_only(&arena, &random, &churn, &burst)
    {
        return;
    }
    // `KALLOC_BENCH_EFFICIENCY_ONLY=1` prints the efficiency table alone.
    if std::env::var_os("KALLOC_BENCH_EFFICIENCY_ONLY").is_some() {
        efficiency_table(config.efficiency_rounds);
        return;
    }
    // `KALLOC_BENCH_TABLES_ONLY=1` skips the criterion part and prints only
    // the summary tables, which take a fraction of the time.
    let tables_only = std::env::var_os("KALLOC_BENCH_TABLES_ONLY").is_some();
    macro_rules! crit_random {
        ($ty:ty) => {
            criterion_bench::<$ty>(&mut criterion, &arena, "random", &random)
        };
    }
    macro_rules! crit_churn {
        ($ty:ty) => {
            criterion_bench::<$ty>(&mut criterion, &arena, "churn64", &churn)
        };
    }
    if !tables_only {
        for_each!(crit_random, OurTlsf, OurBuddy, Rlsf, Talc, Bsa, Llff);
        for_each!(
            crit_churn, OurTlsf, OurBuddy, OurSlab, Rlsf, Talc, Bsa, Llff
        );
        criterion.final_summary();
    }

    println!(
        "\n== kalloc byte allocators: {} mode, {} steps per trace, median of {} runs ==",
        if config.quick { "quick" } else { "full" },
        config.actions,
        config.rounds
    );
    // Rounds interleave the contenders, so load changes on a shared
    // machine hit all of them alike; each contender's median is kept.
    let mut samples: Vec<(&str, Vec<Duration>, Vec<Duration>)> = Vec::new();
    let mut lifo_churn = Vec::new();
    for round in 0..config.rounds {
        macro_rules! time_round {
            ($ty:ty) => {{
                if round == 0 {
                    samples.push((<$ty>::NAME, Vec::new(), Vec::new()));
                }
                let row = samples.iter_mut().find(|row| row.0 == <$ty>::NAME).unwrap();
                row.1.push(time_play::<$ty>(&arena, &random));
                row.2.push(time_play::<$ty>(&arena, &churn));
            }};
        }
        for_each!(
            time_round, OurTlsf, OurBuddy, OurSlab, Rlsf, Talc, Bsa, Llff, Floor
        );
        lifo_churn.push(time_play::<Lifo>(&arena, &churn));
    }
    let nanos = |plays: Vec<Duration>| median(plays).as_nanos() as f64;
    let rows: Vec<(&str, f64, f64)> = samples
        .into_iter()
        .map(|(name, r, c)| (name, nanos(r), nanos(c)))
        .collect();
    let ns_per_step = |total: f64, trace: &[Step]| total / trace.len() as f64;
    let ours = |name: &str| rows.iter().find(|r| r.0 == name).copied().unwrap();
    let tlsf = ours("kalloc TLSF");
    println!(
        "\nThroughput (ns per operation; ratio = peer time / kalloc TLSF time, >1 means TLSF is faster)"
    );
    println!("| allocator | random ns/op | random ratio | churn64 ns/op | churn64 ratio |");
    println!("|---|---:|---:|---:|---:|");
    for &(name, r, c) in &rows {
        if name == Floor::NAME {
            continue;
        }
        if name == "kalloc slab" {
            println!(
                "| {name} | n/a (slab: churn only) | | {:.1} | {:.2} |",
                ns_per_step(c, &churn),
                c / tlsf.2
            );
        } else {
            println!(
                "| {name} | {:.1} | {:.2} | {:.1} | {:.2} |",
                ns_per_step(r, &random),
                r / tlsf.1,
                ns_per_step(c, &churn),
                c / tlsf.2
            );
        }
    }
    let floor = ours(Floor::NAME);
    println!(
        "| {} | {:.1} | | {:.1} | |",
        Floor::NAME,
        ns_per_step(floor.1, &random),
        ns_per_step(floor.2, &churn)
    );
    let lifo = nanos(lifo_churn);
    println!(
        "| {} | n/a | | {:.1} | {:.2} |",
        Lifo::NAME,
        ns_per_step(lifo, &churn),
        lifo / tlsf.2
    );
    let slab = ours("kalloc slab");
    let buddy = ours("kalloc buddy");
    let bsa = ours("buddy_system_allocator");
    // Net ratios take the harness floor off both sides: what each
    // allocator itself costs per step. The goals are stated on the raw
    // ratios; the net ones show how much of a ratio the harness hides.
    let net = |peer: f64, ours: f64, floor: f64| (peer - floor) / (ours - floor).max(1.0);
    println!("\nGoals (raw ratio; net of the harness floor in brackets)");
    println!(
        "- TLSF random throughput vs rlsf: {:.2}x [{:.2}x], vs talc: {:.2}x [{:.2}x] (goal >= 1.0)",
        ours("rlsf").1 / tlsf.1,
        net(ours("rlsf").1, tlsf.1, floor.1),
        ours("talc").1 / tlsf.1,
        net(ours("talc").1, tlsf.1, floor.1)
    );
    println!(
        "- slab vs TLSF on 64 B churn: {:.2}x [{:.2}x] (goal >= 2.0; the unchecked LIFO bound: {:.2}x, about the floor)",
        tlsf.2 / slab.2,
        net(tlsf.2, slab.2, floor.2),
        tlsf.2 / lifo
    );
    println!(
        "- kalloc buddy vs buddy_system_allocator: random {:.2}x [{:.2}x], churn64 {:.2}x [{:.2}x] (goal > 1.0)",
        bsa.1 / buddy.1,
        net(bsa.1, buddy.1, floor.1),
        bsa.2 / buddy.2,
        net(bsa.2, buddy.2, floor.2)
    );

    efficiency_table(config.efficiency_rounds);

    let unit = if cfg!(target_arch = "x86_64") {
        "rdtsc cycles"
    } else {
        "ns"
    };
    // A percentile of one play moves with whatever else the machine did
    // during it; as for throughput, rounds interleave the contenders and
    // each figure is the median over the rounds.
    let latency_rounds = if config.quick { 3 } else { 7 };
    let mut random_lat: Vec<(&str, [Plays; 4])> = Vec::new();
    let mut churn_lat: Vec<(&str, Plays)> = Vec::new();
    for round in 0..latency_rounds {
        macro_rules! lat_round {
            ($ty:ty) => {{
                if round == 0 {
                    random_lat.push((<$ty>::NAME, Default::default()));
                }
                let row = random_lat
                    .iter_mut()
                    .find(|row| row.0 == <$ty>::NAME)
                    .unwrap();
                let play = latencies::<$ty>(&arena, &random);
                for (plays, figures) in
                    row.1
                        .iter_mut()
                        .zip([play.all, play.allocs, play.frees, play.aligned])
                {
                    plays.push(figures);
                }
            }};
        }
        for_each!(lat_round, OurTlsf, OurBuddy, Rlsf, Talc, Bsa, Llff);
        macro_rules! lat_churn_round {
            ($ty:ty) => {{
                if round == 0 {
                    churn_lat.push((<$ty>::NAME, Vec::new()));
                }
                let row = churn_lat
                    .iter_mut()
                    .find(|row| row.0 == <$ty>::NAME)
                    .unwrap();
                row.1.push(latencies::<$ty>(&arena, &churn).all);
            }};
        }
        for_each!(
            lat_churn_round,
            OurTlsf,
            OurBuddy,
            OurSlab,
            Rlsf,
            Talc,
            Bsa,
            Llff
        );
    }
    let random_lat: Vec<(&str, [[u64; 4]; 4])> = random_lat
        .iter()
        .map(|(name, plays)| (*name, plays.each_ref().map(|p| median_each(p))))
        .collect();
    println!(
        "\nLatency per operation on the random-actions trace ({unit}, median of {latency_rounds} plays)"
    );
    println!(
        "| allocator | p50 | p99 | p99.9 | max | allocs p99 | p99.9 | frees p99 | p99.9 | aligned allocs p50 | p99 | p99.9 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, [[p50, p99, p999, max], allocs, frees, aligned]) in &random_lat {
        println!(
            "| {name} | {p50} | {p99} | {p999} | {max} | {} | {} | {} | {} | {} | {} | {} |",
            allocs[1], allocs[2], frees[1], frees[2], aligned[0], aligned[1], aligned[2]
        );
    }
    println!(
        "\nLatency per operation on the 64 B churn trace ({unit}, median of {latency_rounds} plays)"
    );
    println!("| allocator | p50 | p99 | p99.9 | max |");
    println!("|---|---:|---:|---:|---:|");
    for (name, all) in &churn_lat {
        let [p50, p99, p999, max] = median_each(all);
        println!("| {name} | {p50} | {p99} | {p999} | {max} |");
    }
    let p999 =
        |name: &str, kind: usize| random_lat.iter().find(|row| row.0 == name).unwrap().1[kind][2];
    for (kind, what) in [(0, "all operations"), (1, "allocations"), (2, "frees")] {
        println!(
            "- TLSF p99.9 on random actions, {what}: {} against rlsf {}, talc {} (goal: below both)",
            p999(OurTlsf::NAME, kind),
            p999(Rlsf::NAME, kind),
            p999(Talc::NAME, kind)
        );
    }
}

/// The heap-efficiency table: the goal's workload (sizes up to 8 KiB)
/// and the wider one (up to 16 KiB), every pool-based contender.
fn efficiency_table(rounds: u64) {
    println!(
        "\nHeap efficiency (requested bytes in use at the first failed allocation / arena; 4 MiB arena, sizes log-uniform, one free per three allocations, {rounds} seeded rounds)"
    );
    println!("| allocator | 8 B..8 KiB | 8 B..16 KiB |");
    println!("|---|---:|---:|");
    let mut tlsf = Efficiency::default();
    macro_rules! eff_row {
        ($ty:ty) => {{
            let small = efficiency::<$ty>(4 << 20, 13.0, rounds);
            let large = efficiency::<$ty>(4 << 20, 14.0, rounds);
            println!(
                "| {} | {:.2}% | {:.2}% |",
                <$ty>::NAME,
                100.0 * small.requested,
                100.0 * large.requested
            );
            if <$ty>::NAME == OurTlsf::NAME {
                tlsf = small;
            }
        }};
    }
    for_each!(eff_row, OurTlsf, OurBuddy, Rlsf, Talc, Bsa, Llff);
    println!(
        "- TLSF efficiency at first failure, 8 B..8 KiB: {:.2}% (goal >= 98.5%)",
        100.0 * tlsf.requested
    );
    if let Some((rounding, free)) = tlsf.payload {
        let headers = 1.0 - tlsf.requested - rounding - free;
        println!(
            "  the rest of the arena then: {:.2}% rounding up to granules and minimum blocks, \
             {:.2}% headers and pool metadata, {:.2}% free (the failed request: {:.0} B on average)",
            100.0 * rounding,
            100.0 * headers,
            100.0 * free,
            tlsf.failed_request
        );
    }
}

/// The median of several plays' figures.
fn median<T: Ord>(mut plays: Vec<T>) -> T {
    plays.sort_unstable();
    plays.swap_remove(plays.len() / 2)
}

/// Percentiles (p50, p99, p99.9, max) of each play of one trace.
type Plays = Vec<[u64; 4]>;

/// The median of each percentile over several plays.
fn median_each(plays: &[[u64; 4]]) -> [u64; 4] {
    std::array::from_fn(|k| median(plays.iter().map(|play| play[k]).collect()))
}
