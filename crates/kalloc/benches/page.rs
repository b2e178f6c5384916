//! Page-allocator benchmark: our buddy, bitmap and linear-scan allocators
//! side by side with `buddy_system_allocator`'s `FrameAllocator`, on
//! 1 GiB of 4 KiB pages (262,144), same seeded workloads.
//!
//! `cargo bench -p rvos-kalloc --bench page` (full) or with
//! `KALLOC_BENCH_QUICK=1` (short criterion runs). After criterion, the
//! bench prints a table of ratios measured in the same run.

use std::alloc::{Layout, alloc, dealloc};
use std::hint::black_box;
use std::time::{Duration, Instant};

use buddy_system_allocator::FrameAllocator;
use criterion::{BenchmarkId, Criterion};
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator, LinearPageAllocator};
use kalloc::{BaseAllocator, PageAllocator};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const PAGE: usize = 4096;
const PAGES: usize = 1 << 18;
const GIB: usize = 1 << 30;
/// Room below the managed gigabyte for our allocators' metadata; what the
/// metadata leaves is reserved, so every contender has exactly `PAGES`.
const SLACK: usize = 8 << 20;

/// Host memory: `SLACK` bytes, then a 1 GiB-aligned gigabyte. Only the
/// metadata at its start is ever touched.
struct Memory {
    ptr: *mut u8,
    layout: Layout,
}

impl Memory {
    fn new() -> Self {
        let layout = Layout::from_size_align(2 * GIB, GIB).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc(layout) };
        assert!(!ptr.is_null());
        Self { ptr, layout }
    }
    /// The managed gigabyte's first address.
    fn base(&self) -> usize {
        self.ptr.wrapping_add(GIB).expose_provenance()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

trait Contender {
    const NAME: &'static str;
    fn new(mem: &Memory) -> Self;
    fn alloc(&mut self, count: usize) -> Option<usize>;
    fn free(&mut self, addr: usize, count: usize);
}

/// Adds `[base - SLACK, base + 1 GiB)` and reserves everything below `base`.
fn ours<A: PageAllocator + BaseAllocator>(mut a: A, mem: &Memory) -> A {
    let start = mem.base() - SLACK;
    // SAFETY: the range is inside `mem`, used by one contender at a time,
    // and its provenance is exposed by `Memory::base`.
    unsafe { a.add_memory(start, SLACK + GIB).unwrap() };
    let managed_below = a.total_pages() - PAGES;
    if managed_below > 0 {
        let first = mem.base() - managed_below * PAGE;
        a.alloc_pages_at(first, managed_below, PAGE).unwrap();
    }
    assert_eq!(a.available_pages(), PAGES);
    a
}

macro_rules! our_contender {
    ($wrapper:ident, $ty:ty, $name:literal) => {
        struct $wrapper($ty);
        impl Contender for $wrapper {
            const NAME: &'static str = $name;
            fn new(mem: &Memory) -> Self {
                Self(ours(<$ty>::new(), mem))
            }
            fn alloc(&mut self, count: usize) -> Option<usize> {
                self.0.alloc_pages(count, PAGE).ok()
            }
            fn free(&mut self, addr: usize, count: usize) {
                self.0.dealloc_pages(addr, count).unwrap();
            }
        }
    };
}

our_contender!(Buddy, BuddyPageAllocator, "kalloc buddy");
our_contender!(Bitmap, BitmapPageAllocator, "kalloc bitmap");
our_contender!(Linear, LinearPageAllocator, "kalloc linear");

/// `buddy_system_allocator::FrameAllocator` over the same frame numbers.
struct Peer(FrameAllocator<20>);
impl Contender for Peer {
    const NAME: &'static str = "bsa FrameAllocator";
    fn new(mem: &Memory) -> Self {
        let mut f = FrameAllocator::<20>::new();
        let first = mem.base() / PAGE;
        f.add_frame(first, first + PAGES);
        Self(f)
    }
    fn alloc(&mut self, count: usize) -> Option<usize> {
        self.0.alloc(count).map(|frame| frame * PAGE)
    }
    fn free(&mut self, addr: usize, count: usize) {
        self.0.dealloc(addr / PAGE, count);
    }
}

/// A contender in a workload's steady state.
struct State<C> {
    alloc: C,
    live: Vec<(usize, usize)>,
    used: usize,
    rng: SmallRng,
}

#[derive(Clone, Copy, Debug)]
enum Workload {
    /// Half the memory taken by long-lived blocks; allocate one page, free it.
    Churn50,
    /// Blocks of 2^0..=2^10 pages, random victims, held at this percentage.
    Mixed(usize),
    /// Mixed fill to 90%, half the blocks freed at random; then allocate
    /// and free one block of `2^k` pages.
    Contig(u32),
}

impl Workload {
    const ALL: [Workload; 6] = [
        Workload::Churn50,
        Workload::Mixed(50),
        Workload::Mixed(90),
        Workload::Contig(0),
        Workload::Contig(4),
        Workload::Contig(9),
    ];

    fn name(self) -> String {
        match self {
            Workload::Churn50 => "single-page churn @50%".into(),
            Workload::Mixed(p) => format!("mixed orders 0..=10 @{p}%"),
            Workload::Contig(k) => format!("2^{k} pages after fragmentation"),
        }
    }
}

impl<C: Contender> State<C> {
    fn new(mem: &Memory, workload: Workload) -> Self {
        let mut s = Self {
            alloc: C::new(mem),
            live: Vec::new(),
            used: 0,
            rng: SmallRng::seed_from_u64(0x5eed),
        };
        match workload {
            Workload::Churn50 => {
                while s.used < PAGES / 2 {
                    s.take(512);
                }
            }
            Workload::Mixed(percent) => s.fill(PAGES * percent / 100),
            Workload::Contig(_) => {
                s.fill(PAGES * 9 / 10);
                for _ in 0..s.live.len() / 2 {
                    s.free_random();
                }
            }
        }
        s
    }

    fn take(&mut self, count: usize) -> bool {
        match self.alloc.alloc(count) {
            Some(addr) => {
                self.live.push((addr, count));
                self.used += count;
                true
            }
            None => false,
        }
    }

    fn free_random(&mut self) {
        if self.live.is_empty() {
            return;
        }
        let (addr, count) = self
            .live
            .swap_remove(self.rng.gen_range(0..self.live.len()));
        self.alloc.free(addr, count);
        self.used -= count;
    }

    fn fill(&mut self, target: usize) {
        let mut failures = 0;
        while self.used < target && failures < 64 {
            let count = 1 << self.rng.gen_range(0..=10);
            if !self.take(count) {
                failures += 1;
            }
        }
    }

    /// One operation of the workload's steady state.
    fn step(&mut self, workload: Workload) {
        match workload {
            Workload::Churn50 | Workload::Contig(_) => {
                let count = match workload {
                    Workload::Contig(k) => 1 << k,
                    _ => 1,
                };
                if let Some(addr) = self.alloc.alloc(black_box(count)) {
                    self.alloc.free(black_box(addr), count);
                }
            }
            Workload::Mixed(percent) => {
                if self.used < PAGES * percent / 100 {
                    let count = 1 << self.rng.gen_range(0..=10);
                    if !self.take(count) {
                        self.free_random();
                    }
                } else {
                    self.free_random();
                }
            }
        }
    }
}

fn quick() -> bool {
    std::env::var_os("KALLOC_BENCH_QUICK").is_some()
}

fn bench_one<C: Contender>(c: &mut Criterion, mem: &Memory, workload: Workload) {
    let mut state = State::<C>::new(mem, workload);
    let mut group = c.benchmark_group(workload.name());
    if quick() {
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600));
    }
    group.bench_function(BenchmarkId::from_parameter(C::NAME), |b| {
        b.iter(|| state.step(workload))
    });
    group.finish();
}

/// Nanoseconds per operation, from a fresh state, for the ratio table.
fn time_one<C: Contender>(mem: &Memory, workload: Workload) -> f64 {
    let mut state = State::<C>::new(mem, workload);
    let budget = Duration::from_millis(if quick() { 100 } else { 300 });
    for _ in 0..100 {
        state.step(workload);
    }
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            state.step(workload);
        }
        ops += 64;
    }
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The ratio table: every (workload, contender) timed `rounds` times,
/// interleaved (each round runs all contenders of a workload back to back,
/// in a rotating order), and the median of each is reported.
fn ratio_table(mem: &Memory) {
    let rounds = if quick() { 3 } else { 5 };
    println!(
        "\nns per operation (median of {rounds} interleaved rounds) and ratios, \
         262,144 pages of 4 KiB; load average before: {}\n",
        load_average()
    );
    println!(
        "| workload | buddy ns | bitmap ns | linear ns | bsa ns | linear/buddy | bsa/buddy | bitmap/buddy |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    type Timer = fn(&Memory, Workload) -> f64;
    let timers: [Timer; 4] = [
        time_one::<Buddy>,
        time_one::<Bitmap>,
        time_one::<Linear>,
        time_one::<Peer>,
    ];
    for workload in Workload::ALL {
        let mut samples: [Vec<f64>; 4] = Default::default();
        for round in 0..rounds {
            for i in 0..timers.len() {
                let who = (i + round) % timers.len();
                samples[who].push(timers[who](mem, workload));
            }
        }
        let [buddy, bitmap, linear, peer] = samples.map(median);
        println!(
            "| {} | {buddy:.1} | {bitmap:.1} | {linear:.1} | {peer:.1} | {:.1}x | {:.2}x | {:.2}x |",
            workload.name(),
            linear / buddy,
            peer / buddy,
            bitmap / buddy,
        );
    }
    println!("\nload average after: {}", load_average());
}

/// `KALLOC_BENCH_STEPS=<contender>,<workload index>,<steps>` runs that
/// many steps of one workload and exits, for instruction counts under
/// `valgrind --tool=callgrind` (difference of two step counts = cost per
/// step, free of the setup). Contenders: buddy, bitmap, linear, bsa.
fn run_steps(spec: &str, mem: &Memory) {
    fn go<C: Contender>(mem: &Memory, workload: Workload, steps: usize) {
        let mut state = State::<C>::new(mem, workload);
        for _ in 0..steps {
            state.step(workload);
        }
        black_box(&state.live);
    }
    let parts: Vec<&str> = spec.split(',').collect();
    let [name, index, steps] = parts[..] else {
        panic!("KALLOC_BENCH_STEPS=<contender>,<workload index>,<steps>");
    };
    let workload = Workload::ALL[index.parse::<usize>().unwrap()];
    let steps = steps.parse().unwrap();
    match name {
        "buddy" => go::<Buddy>(mem, workload, steps),
        "bitmap" => go::<Bitmap>(mem, workload, steps),
        "linear" => go::<Linear>(mem, workload, steps),
        "bsa" => go::<Peer>(mem, workload, steps),
        _ => panic!("unknown contender {name}"),
    }
}

fn main() {
    let mem = Memory::new();
    if let Some(spec) = std::env::var_os("KALLOC_BENCH_STEPS") {
        run_steps(spec.to_str().unwrap(), &mem);
        return;
    }
    if std::env::var_os("KALLOC_BENCH_TABLE_ONLY").is_some() {
        ratio_table(&mem);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    for workload in Workload::ALL {
        bench_one::<Buddy>(&mut c, &mem, workload);
        bench_one::<Bitmap>(&mut c, &mem, workload);
        bench_one::<Linear>(&mut c, &mem, workload);
        bench_one::<Peer>(&mut c, &mem, workload);
    }
    c.final_summary();
    // In criterion's test mode (`cargo test --benches`, `-- --test`) the
    // run is a smoke test: no table then.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test") {
        return;
    }
    ratio_table(&mem);
}
