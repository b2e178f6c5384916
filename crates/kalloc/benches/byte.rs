//! Byte-allocator benchmark: our TLSF, buddy and slab side by side with
//! rlsf, talc, buddy_system_allocator and linked_list_allocator on the same
//! seeded traces. Criterion times each (allocator, workload); the summary
//! tables printed at the end (throughput ratios, heap efficiency, latency
//! percentiles) come from the same run.
//!
//! `cargo bench -p kalloc --bench byte` (full) or with
//! `KALLOC_BENCH_QUICK=1` (short criterion runs, fewer rounds);
//! `KALLOC_BENCH_TABLES_ONLY=1` skips criterion and prints only the tables.

#[path = "../tests/byte_common/host.rs"]
#[allow(dead_code)]
mod host;

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use criterion::Criterion;
use host::{Arena, HostPages};
use kalloc::ByteAllocator;
use kalloc::byte::{BuddyByteAllocator, SlabAllocator, Tlsf};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ARENA: usize = 32 << 20;
const MAX_LIVE: usize = 4096;

/// The interface every contender is driven through.
trait Contender {
    const NAME: &'static str;
    fn new(arena: &Arena) -> Self;
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>>;
    /// # Safety
    /// `ptr` was returned by `alloc(layout)` and is freed once.
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout);
}

struct OurTlsf(Tlsf);
impl Contender for OurTlsf {
    const NAME: &'static str = "kalloc TLSF";
    fn new(arena: &Arena) -> Self {
        let mut tlsf = Tlsf::new();
        // SAFETY: the arena outlives the contender (see `run_fresh`).
        unsafe { tlsf.add_pool(arena.at(0), arena.len()).unwrap() };
        Self(tlsf)
    }
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(ptr, layout).unwrap() }
    }
}

struct OurBuddy(BuddyByteAllocator);
impl Contender for OurBuddy {
    const NAME: &'static str = "kalloc buddy";
    fn new(arena: &Arena) -> Self {
        let mut buddy = BuddyByteAllocator::new();
        // SAFETY: the arena outlives the contender.
        unsafe { buddy.add_pool(arena.at(0), arena.len()).unwrap() };
        Self(buddy)
    }
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(ptr, layout).unwrap() }
    }
}

/// The slab over the test page source (first fit over a page map): fine
/// for slabs, too slow for page-sized requests, so it runs the small-object
/// workload only.
struct OurSlab(SlabAllocator<HostPages>);
impl Contender for OurSlab {
    const NAME: &'static str = "kalloc slab";
    fn new(arena: &Arena) -> Self {
        // SAFETY: the arena outlives the contender and nothing else uses it.
        Self(SlabAllocator::new(unsafe { HostPages::over(arena) }))
    }
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(ptr, layout).unwrap() }
    }
}

struct Rlsf(rlsf::Tlsf<'static, u32, u32, 28, 32>);
impl Contender for Rlsf {
    const NAME: &'static str = "rlsf";
    fn new(arena: &Arena) -> Self {
        let mut tlsf = rlsf::Tlsf::new();
        let pool = NonNull::slice_from_raw_parts(arena.at(0), arena.len());
        // SAFETY: the arena outlives the contender and nothing else uses it.
        unsafe { tlsf.insert_free_block_ptr(pool).unwrap() };
        Self(tlsf)
    }
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.allocate(layout)
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate(ptr, layout.align()) }
    }
}

struct Talc(talc::Talc<talc::ErrOnOom>);
impl Contender for Talc {
    const NAME: &'static str = "talc";
    fn new(arena: &Arena) -> Self {
        let mut talc = talc::Talc::new(talc::ErrOnOom);
        // SAFETY: the arena outlives the contender and nothing else uses it.
        unsafe {
            talc.claim(talc::Span::from_base_size(
                arena.at(0).as_ptr(),
                arena.len(),
            ))
            .unwrap()
        };
        Self(talc)
    }
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: `layout` has a non-zero size (every trace's sizes do).
        unsafe { self.0.malloc(layout).ok() }
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.free(ptr, layout) }
    }
}

struct Bsa(buddy_system_allocator::Heap<33>);
impl Contender for Bsa {
    const NAME: &'static str = "buddy_system_allocator";
    fn new(arena: &Arena) -> Self {
        let mut heap = buddy_system_allocator::Heap::<33>::new();
        // SAFETY: the arena outlives the contender and nothing else uses it.
        unsafe { heap.init(arena.at(0).as_ptr().expose_provenance(), arena.len()) };
        Self(heap)
    }
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.0.dealloc(ptr, layout)
    }
}

struct Llff(linked_list_allocator::Heap);
impl Contender for Llff {
    const NAME: &'static str = "linked_list_allocator";
    fn new(arena: &Arena) -> Self {
        let mut heap = linked_list_allocator::Heap::empty();
        // SAFETY: the arena outlives the contender and nothing else uses it.
        unsafe { heap.init(arena.at(0).as_ptr(), arena.len()) };
        Self(heap)
    }
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.allocate_first_fit(layout).ok()
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate(ptr, layout) }
    }
}

macro_rules! for_each {
    ($mac:ident, $($ty:ty),*) => { $( $mac!($ty); )* };
}

/// One step of a trace: allocate `layout` into slot `slot`, or free the
/// block in slot `slot`.
#[derive(Clone, Copy)]
enum Step {
    Alloc { slot: usize, layout: Layout },
    Free { slot: usize },
}

/// Random actions: sizes log-uniform 8 B..64 KiB, one in 16 with an
/// alignment of 64..4096, up to `MAX_LIVE` live blocks (a slot model keeps
/// the trace identical for everyone; a failed allocation leaves its slot
/// empty and the later free skips it).
fn random_actions(seed: u64, steps: usize) -> Vec<Step> {
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
fn churn_64(seed: u64, steps: usize) -> Vec<Step> {
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

/// Plays a trace; `time_op` wraps every allocator call (for latencies).
fn play<C: Contender>(c: &mut C, trace: &[Step], slots: &mut [Option<(NonNull<u8>, Layout)>]) {
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

fn fresh_slots() -> Vec<Option<(NonNull<u8>, Layout)>> {
    vec![None; MAX_LIVE]
}

/// Wall time of one play of `trace` on a fresh contender.
fn time_play<C: Contender>(arena: &Arena, trace: &[Step]) -> Duration {
    let mut c = C::new(arena);
    let mut slots = fresh_slots();
    let start = Instant::now();
    play(&mut c, black_box(trace), &mut slots);
    start.elapsed()
}

/// Profiling aid: `KALLOC_BENCH_PROFILE=<contender>/<random|churn64>` plays
/// that trace 200 times and nothing else (for `perf stat` / `perf record`).
fn profile_only(arena: &Arena, random: &[Step], churn: &[Step]) -> bool {
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
    for_each!(profile, OurTlsf, OurBuddy, OurSlab, Rlsf, Talc, Bsa, Llff);
    panic!("unknown contender in KALLOC_BENCH_PROFILE={what}");
}

/// Cycle counter: `rdtsc` on x86_64, nanoseconds elsewhere.
#[inline(always)]
fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` has no preconditions on x86_64.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Per-operation latency percentiles (p50, p99, p99.9, max) over a trace.
fn latencies<C: Contender>(arena: &Arena, trace: &[Step]) -> [u64; 4] {
    let mut c = C::new(arena);
    let mut slots = fresh_slots();
    let mut samples = Vec::with_capacity(trace.len());
    for step in trace {
        let t0 = ticks();
        play(&mut c, std::slice::from_ref(step), &mut slots);
        samples.push(ticks() - t0);
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    [at(0.5), at(0.99), at(0.999), *samples.last().unwrap()]
}

/// The share of the arena in use (requested bytes) at the first failed
/// allocation, random sizes 8 B..16 KiB with one free for every three
/// allocations, averaged over seeded rounds.
fn efficiency<C: Contender>(arena_bytes: usize, rounds: u64) -> f64 {
    let mut total = 0.0;
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
            let size = (2f64.powf(rng.gen_range(3.0..14.0))) as usize;
            let layout = Layout::from_size_align(size, 8).unwrap();
            match c.alloc(layout) {
                Some(p) => {
                    in_use += size;
                    live.push((p, layout));
                }
                None => break,
            }
        }
        total += in_use as f64 / arena_bytes as f64;
        for (p, layout) in live {
            // SAFETY: live blocks, freed once.
            unsafe { c.free(p, layout) };
        }
    }
    total / rounds as f64
}

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

    if profile_only(&arena, &random, &churn) {
        return;
    }
    // `KALLOC_BENCH_TABLES_ONLY=1` skips the criterion part and prints only
    // the summary tables (for quick side-by-side checks while tuning).
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
            time_round, OurTlsf, OurBuddy, OurSlab, Rlsf, Talc, Bsa, Llff
        );
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_nanos() as f64
    };
    let rows: Vec<(&str, f64, f64)> = samples
        .into_iter()
        .map(|(name, r, c)| (name, median(r), median(c)))
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
    let slab = ours("kalloc slab");
    let buddy = ours("kalloc buddy");
    let bsa = ours("buddy_system_allocator");
    println!("\nGoals");
    println!(
        "- TLSF random throughput vs rlsf: {:.2}x, vs talc: {:.2}x (goal >= 1.0)",
        ours("rlsf").1 / tlsf.1,
        ours("talc").1 / tlsf.1
    );
    println!(
        "- slab vs TLSF on 64 B churn: {:.2}x (goal >= 2.0)",
        tlsf.2 / slab.2
    );
    println!(
        "- kalloc buddy vs buddy_system_allocator: random {:.2}x, churn64 {:.2}x (goal > 1.0)",
        bsa.1 / buddy.1,
        bsa.2 / buddy.2
    );

    println!(
        "\nHeap efficiency (requested bytes in use at the first failed allocation / arena; 4 MiB arena, sizes 8 B..16 KiB, {} seeded rounds)",
        config.efficiency_rounds
    );
    println!("| allocator | efficiency |");
    println!("|---|---:|");
    macro_rules! eff_row {
        ($ty:ty) => {
            println!(
                "| {} | {:.1}% |",
                <$ty>::NAME,
                100.0 * efficiency::<$ty>(4 << 20, config.efficiency_rounds)
            );
        };
    }
    for_each!(eff_row, OurTlsf, OurBuddy, Rlsf, Talc, Bsa, Llff);

    let unit = if cfg!(target_arch = "x86_64") {
        "rdtsc cycles"
    } else {
        "ns"
    };
    println!("\nLatency per operation on the random-actions trace ({unit})");
    println!("| allocator | p50 | p99 | p99.9 | max |");
    println!("|---|---:|---:|---:|---:|");
    macro_rules! lat_row {
        ($ty:ty) => {{
            let [p50, p99, p999, max] = latencies::<$ty>(&arena, &random);
            println!("| {} | {p50} | {p99} | {p999} | {max} |", <$ty>::NAME);
        }};
    }
    for_each!(lat_row, OurTlsf, OurBuddy, Rlsf, Talc, Bsa, Llff);
    println!("\nLatency per operation on the 64 B churn trace ({unit})");
    println!("| allocator | p50 | p99 | p99.9 | max |");
    println!("|---|---:|---:|---:|---:|");
    macro_rules! lat_churn_row {
        ($ty:ty) => {{
            let [p50, p99, p999, max] = latencies::<$ty>(&arena, &churn);
            println!("| {} | {p50} | {p99} | {p999} | {max} |", <$ty>::NAME);
        }};
    }
    for_each!(
        lat_churn_row,
        OurTlsf,
        OurBuddy,
        OurSlab,
        Rlsf,
        Talc,
        Bsa,
        Llff
    );
}
