//! Measurements over the traces: wall time of one play, per-operation
//! latency percentiles, heap efficiency, and the single-trace profiling
//! mode.

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::contenders::*;
use crate::host::Arena;
use crate::traces::{Step, fresh_slots, play};

/// Wall time of one play of `trace` on a fresh contender.
pub fn time_play<C: Contender>(arena: &Arena, trace: &[Step]) -> Duration {
    let mut c = C::new(arena);
    let mut slots = fresh_slots();
    let start = Instant::now();
    play(&mut c, black_box(trace), &mut slots);
    start.elapsed()
}

/// Profiling aid: `KALLOC_BENCH_PROFILE=<contender>/<random|churn64>` plays
/// that trace 200 times and nothing else (for `perf stat` / `perf record`).
pub fn profile_only(arena: &Arena, random: &[Step], churn: &[Step]) -> bool {
    let Ok(what) = std::env::var("KALLOC_BENCH_PROFILE") else {
        return false;
    };
    let trace = if what.ends_with("/random") {
        random
    } else {
        churn
    };
    macro_rules! profile {
        ($ty:ty) => {
            if what.starts_with(<$ty>::NAME) {
                for _ in 0..200 {
                    black_box(time_play::<$ty>(arena, trace));
                }
                return true;
            }
        };
    }
    for_each!(
        profile, OurTlsf, OurBuddy, OurSlab, Rlsf, Talc, Bsa, Llff, Floor, Lifo
    );
    panic!("unknown contender in KALLOC_BENCH_PROFILE={what}");
}

/// Cycle counter: `rdtsc` on x86_64, nanoseconds elsewhere. `rdtsc` alone
/// does not wait for earlier instructions, so an operation's cache misses
/// could finish after its end stamp; the fences on both sides (Intel's
/// recipe for timing short code) keep the whole operation between stamps.
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `lfence` and `rdtsc` have no preconditions on x86_64.
    unsafe {
        use core::arch::x86_64::{_mm_lfence, _rdtsc};
        _mm_lfence();
        let now = _rdtsc();
        _mm_lfence();
        now
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Per-operation latency percentiles (p50, p99, p99.9, max) over one play
/// of a trace.
pub struct Latencies {
    /// Every step.
    pub all: [u64; 4],
    /// The allocations alone.
    pub allocs: [u64; 4],
    /// The frees of a block alone (a free of a slot whose allocation
    /// failed does nothing and is not counted).
    pub frees: [u64; 4],
    /// The allocations with an alignment above 16 bytes (the TLSF's slow
    /// path; zeros if the trace has none).
    pub aligned: [u64; 4],
}

/// The latency percentiles of one play of `trace` on a fresh contender,
/// after one untimed play by the same contender: without it, whichever
/// contender a round times first meets caches and TLB filled by another
/// one's play (or by the throughput plays before the round), and its tail
/// percentiles grow, whichever allocator it is.
pub fn latencies<C: Contender>(arena: &Arena, trace: &[Step]) -> Latencies {
    std::hint::black_box(time_play::<C>(arena, trace));
    let mut c = C::new(arena);
    let mut slots = fresh_slots();
    let mut samples = Vec::with_capacity(trace.len());
    let (mut allocs, mut frees, mut aligned) = (Vec::new(), Vec::new(), Vec::new());
    for step in trace {
        let frees_a_block = matches!(*step, Step::Free { slot } if slots[slot].is_some());
        let t0 = ticks();
        play(&mut c, std::slice::from_ref(step), &mut slots);
        let took = ticks() - t0;
        samples.push(took);
        match step {
            Step::Alloc { layout, .. } => {
                allocs.push(took);
                if layout.align() > 16 {
                    aligned.push(took);
                }
            }
            Step::Free { .. } if frees_a_block => frees.push(took),
            Step::Free { .. } => {}
        }
    }
    Latencies {
        all: percentiles(samples),
        allocs: percentiles(allocs),
        frees: percentiles(frees),
        aligned: percentiles(aligned),
    }
}

fn percentiles(mut samples: Vec<u64>) -> [u64; 4] {
    if samples.is_empty() {
        return [0; 4];
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    [at(0.5), at(0.99), at(0.999), *samples.last().unwrap()]
}

/// Where the arena is at the first failed allocation, as shares of the
/// arena averaged over the rounds.
#[derive(Default)]
pub struct Efficiency {
    /// Requested bytes in use: the efficiency.
    pub requested: f64,
    /// Payload bytes of the allocated blocks beyond the requests (rounding
    /// and minimum sizes), and payload bytes of the free blocks; the rest
    /// of the arena is headers and pool metadata. Only for contenders that
    /// count their payloads.
    pub payload: Option<(f64, f64)>,
    /// The failed request's size in bytes, averaged.
    pub failed_request: f64,
}

/// The arena at the first failed allocation, random sizes log-uniform
/// from 8 B to `2^max_log2` B with one free for every three allocations,
/// averaged over seeded rounds.
pub fn efficiency<C: Contender>(arena_bytes: usize, max_log2: f64, rounds: u64) -> Efficiency {
    let mut sum = Efficiency::default();
    let share = |bytes: usize| bytes as f64 / arena_bytes as f64 / rounds as f64;
    for seed in 0..rounds {
        let arena = Arena::new(arena_bytes);
        let mut c = C::new(&arena);
        let mut rng = SmallRng::seed_from_u64(0xeff1 + seed);
        let mut live: Vec<(NonNull<u8>, Layout)> = Vec::new();
        let mut in_use = 0usize;
        loop {
            if !live.is_empty() && rng.gen_ratio(1, 4) {
                let (p, layout) = live.swap_remove(rng.gen_range(0..live.len()));
                in_use -= layout.size();
                // SAFETY: live block, freed once.
                unsafe { c.free(p, layout) };
                continue;
            }
            let size = (2f64.powf(rng.gen_range(3.0..max_log2))) as usize;
            let layout = Layout::from_size_align(size, 8).unwrap();
            match c.alloc(layout) {
                Some(p) => {
                    in_use += size;
                    live.push((p, layout));
                }
                None => {
                    sum.failed_request += size as f64 / rounds as f64;
                    break;
                }
            }
        }
        sum.requested += share(in_use);
        if let Some((used, free)) = c.payload_bytes() {
            let (rounding, free_share) = sum.payload.unwrap_or_default();
            sum.payload = Some((rounding + share(used - in_use), free_share + share(free)));
        }
        for (p, layout) in live {
            // SAFETY: live blocks, freed once.
            unsafe { c.free(p, layout) };
        }
    }
    sum
}
