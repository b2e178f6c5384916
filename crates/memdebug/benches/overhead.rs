//! The cost of each debug layer, as ratios to the undecorated TLSF heap,
//! on two workloads run side by side:
//!
//! - **random actions** (the byte-allocator benchmark's workload): up to
//!   4096 live blocks, sizes log-uniform in 8 B..64 KiB, one request in 16
//!   with an alignment up to 4096; each step allocates or frees a random
//!   live block with equal odds. The program *never touches the memory it
//!   gets*, so the baseline is pure allocator bookkeeping and every byte a
//!   layer fills or checks is extra work, on memory that is not in cache.
//! - **generator** (`workload::Generator`, the same size and lifetime
//!   shape, a similar alignment shape): every block is filled with its own
//!   pattern when it is allocated and checked just before it is freed, as
//!   real code writes and reads the memory it asks for.
//!
//! Besides the layers, a "floor" variant writes the free poison over each
//! freed block and scans it straight back, with no table and no
//! quarantine: what any poisoning that checks every byte costs at least.
//!
//! Both workloads are fixed by a seed, so every variant does the same
//! work. Rounds are interleaved (round `r` runs every variant once,
//! starting at variant `r`) so a change in the machine's load hits all
//! variants alike; the arena is allocated and pre-faulted once, so no
//! variant pays the host's page faults; before each run the layer's table
//! memory is written, as a layer's `new` does, so all start from the same
//! cache state. Runs are timed by the CPU time the thread got (not wall
//! time), so waiting for a core on a loaded machine does not count. Prints
//! the median ns per step and the median of the per-round ratios to the
//! plain heap.
//!
//! Run: `cargo bench -p rvos-memdebug --bench overhead` (`QUICK=1` for a short
//! run; `ONLY=poison` for one variant next to the plain heap and
//! `WORKLOAD=random` or `WORKLOAD=generator` for one workload, e.g. under
//! `perf record`; `ROUNDS=101` for more rounds than the default 11).

use std::alloc::Layout;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::time::Instant;

use kalloc::byte::Tlsf;
use kalloc::{BaseAllocator, ByteAllocator};
use memdebug::{
    DebugByteAllocator, DebugConfig, DebugFlags, FREE_POISON, IgnoreReports, RecordSlot,
};
use workload::{Aligns, Block, Bytes, Generator, Lifetimes, Rng, Sizes, Spec};

const ARENA: usize = 32 << 20;
const MAX_LIVE: usize = 4096;
const MAX_SIZE: usize = 64 << 10;

#[derive(Clone, Copy)]
enum Action {
    Alloc(Layout),
    /// Free the live block at this index (modulo the live count).
    Free(usize),
}

fn actions(count: usize) -> Vec<Action> {
    let mut rng = Rng::new(0x5eed);
    let mut live = 0usize;
    (0..count)
        .map(|_| {
            if live > 0 && (live == MAX_LIVE || rng.chance(50)) {
                live -= 1;
                Action::Free(rng.below(u64::MAX) as usize)
            } else {
                live += 1;
                let size = rng.log_uniform(8, MAX_SIZE);
                let align = if rng.below(16) == 0 {
                    1 << rng.between(3, 12)
                } else {
                    8
                };
                Action::Alloc(Layout::from_size_align(size, align).unwrap())
            }
        })
        .collect()
}

/// Times a run by the CPU time this thread got (Linux's
/// `/proc/thread-self/schedstat`), so time spent waiting for a core on a
/// loaded machine does not count; wall time where that is unavailable.
struct Clock {
    cpu: Option<u64>,
    wall: Instant,
}

impl Clock {
    fn cpu_ns() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    fn start() -> Clock {
        Clock {
            cpu: Clock::cpu_ns(),
            wall: Instant::now(),
        }
    }

    fn elapsed_ns(&self) -> u64 {
        match (self.cpu, Clock::cpu_ns()) {
            (Some(start), Some(end)) => end - start,
            _ => self.wall.elapsed().as_nanos() as u64,
        }
    }
}

/// What one timed run did: nanoseconds per step and failed allocations.
#[derive(Clone, Copy)]
struct Run {
    ns_per_step: f64,
    failed: u64,
}

/// Plays the random actions (touching no block); drains untimed.
fn random_actions(heap: &mut impl ByteAllocator, actions: &[Action]) -> Run {
    let mut live: Vec<(NonNull<u8>, Layout)> = Vec::with_capacity(MAX_LIVE);
    let mut failed = 0;
    let start = Clock::start();
    for action in actions {
        match *action {
            Action::Alloc(layout) => match heap.alloc(layout) {
                Ok(ptr) => live.push((ptr, layout)),
                Err(_) => failed += 1,
            },
            Action::Free(pick) if !live.is_empty() => {
                let (ptr, layout) = live.swap_remove(pick % live.len());
                // SAFETY: a live block of this heap.
                black_box(unsafe { heap.dealloc(ptr, layout) }).unwrap();
            }
            Action::Free(_) => {}
        }
    }
    let elapsed = start.elapsed_ns();
    for (ptr, layout) in live {
        // SAFETY: a live block of this heap.
        unsafe { heap.dealloc(ptr, layout).unwrap() };
    }
    Run {
        ns_per_step: elapsed as f64 / actions.len() as f64,
        failed,
    }
}

/// Runs the workload generator (every block written, then checked before
/// its free); drains untimed.
fn generator(heap: &mut impl ByteAllocator, steps: u64, slots: &mut [Option<Block>]) -> Run {
    let spec = Spec {
        aligns: Aligns::Occasional { max: 4096 },
        lifetimes: Lifetimes::Random,
        sizes: Sizes::Random {
            min: 8,
            max: MAX_SIZE,
        },
        oom_expected: true,
        ..Spec::random(0x5eed, 8, MAX_SIZE, MAX_LIVE)
    };
    slots.fill(None);
    let mut generator = Generator::new(spec, slots);
    let mut target = Bytes(heap);
    let start = Clock::start();
    let summary = generator
        .run(&mut target, steps)
        .unwrap_or_else(|failure| panic!("{failure}"));
    let elapsed = start.elapsed_ns();
    generator
        .drain(&mut target)
        .unwrap_or_else(|failure| panic!("{failure}"));
    Run {
        ns_per_step: elapsed as f64 / steps as f64,
        failed: summary.expected_failures,
    }
}

/// The host memory every run uses: the heap's arena (pre-faulted) and the
/// layer's table and history.
struct Memory {
    arena: *mut u8,
    table: Vec<MaybeUninit<RecordSlot>>,
    history: Vec<MaybeUninit<usize>>,
    slots: Vec<Option<Block>>,
}

const ARENA_LAYOUT: Layout = match Layout::from_size_align(ARENA, 4096) {
    Ok(layout) => layout,
    Err(_) => panic!("bad arena layout"),
};

impl Memory {
    fn new() -> Self {
        // SAFETY: non-zero size.
        let arena = unsafe { std::alloc::alloc(ARENA_LAYOUT) };
        assert!(!arena.is_null());
        // SAFETY: the arena is ours; touching every page now keeps the
        // host's page faults out of every timed run.
        unsafe { arena.write_bytes(0, ARENA) };
        Memory {
            arena,
            table: (0..16384).map(|_| MaybeUninit::uninit()).collect(),
            history: (0..1024).map(|_| MaybeUninit::uninit()).collect(),
            slots: vec![None; MAX_LIVE],
        }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.arena, ARENA_LAYOUT) }
    }
}

fn clock() -> u64 {
    0
}

#[derive(Clone, Copy)]
enum Workload<'a> {
    RandomActions(&'a [Action]),
    Generator(u64),
}

/// What runs on top of the plain heap.
#[derive(Clone, Copy)]
enum Variant {
    /// Nothing: the baseline.
    Plain,
    /// No layer, only `FREE_POISON` written over each freed block and read
    /// back at once: the least any poisoning must cost (see [`FillFloor`]).
    Floor,
    /// A debug layer with these flags.
    Layer(DebugFlags),
}

/// The floor under poisoning: fills each block with the free poison when
/// it is freed and scans it straight back (while it is still in cache),
/// with no table, no quarantine, no red zones. Any poisoning layer writes
/// and reads every freed byte at least this once.
struct FillFloor(Tlsf);

impl BaseAllocator for FillFloor {
    unsafe fn init(&mut self, start: usize, size: usize) -> kalloc::AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.init(start, size) }
    }

    unsafe fn add_memory(&mut self, start: usize, size: usize) -> kalloc::AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.add_memory(start, size) }
    }
}

impl ByteAllocator for FillFloor {
    fn alloc(&mut self, layout: Layout) -> kalloc::AllocResult<NonNull<u8>> {
        self.0.alloc(layout)
    }

    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> kalloc::AllocResult {
        // SAFETY: the caller owns the live block `ptr..ptr + size`.
        let block = unsafe {
            ptr.as_ptr().write_bytes(FREE_POISON, layout.size());
            std::slice::from_raw_parts(ptr.as_ptr(), layout.size())
        };
        let word = u64::from_ne_bytes([FREE_POISON; 8]);
        // SAFETY: any bit pattern is a valid u64.
        let (head, middle, tail) = unsafe { block.align_to::<u64>() };
        let diff = middle.iter().fold(0, |d, &w| d | (w ^ word))
            | head
                .iter()
                .chain(tail)
                .fold(0, |d, &b| d | u64::from(b ^ FREE_POISON));
        black_box(diff);
        // SAFETY: forwarded from the caller.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    fn total_bytes(&self) -> usize {
        self.0.total_bytes()
    }

    fn used_bytes(&self) -> usize {
        self.0.used_bytes()
    }

    fn available_bytes(&self) -> usize {
        self.0.available_bytes()
    }
}

fn measure(variant: Variant, workload: Workload, memory: &mut Memory) -> Run {
    let mut tlsf = Tlsf::new();
    // SAFETY: the arena is ours, and no block of an earlier run is live.
    unsafe { tlsf.init(memory.arena as usize, ARENA).unwrap() };
    // Every variant starts from the same cache state: a layer's `new`
    // initialises its table, so the plain heap's runs write it too.
    let table_bytes = std::mem::size_of_val(memory.table.as_slice());
    // SAFETY: the table memory is ours and `MaybeUninit` takes any bytes.
    unsafe { black_box(memory.table.as_mut_ptr().cast::<u8>()).write_bytes(0, table_bytes) };
    let slots = &mut memory.slots;
    match variant {
        Variant::Plain => match workload {
            Workload::RandomActions(actions) => random_actions(&mut tlsf, actions),
            Workload::Generator(steps) => generator(&mut tlsf, steps, slots),
        },
        Variant::Floor => match workload {
            Workload::RandomActions(actions) => random_actions(&mut FillFloor(tlsf), actions),
            Workload::Generator(steps) => generator(&mut FillFloor(tlsf), steps, slots),
        },
        Variant::Layer(flags) => {
            let mut layer = DebugByteAllocator::new(
                "bench",
                tlsf,
                DebugConfig::bytes(flags),
                IgnoreReports,
                &mut memory.table,
                &mut memory.history,
                clock,
            );
            match workload {
                Workload::RandomActions(actions) => random_actions(&mut layer, actions),
                Workload::Generator(steps) => generator(&mut layer, steps, slots),
            }
        }
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

const VARIANTS: [(&str, Variant); 8] = [
    ("tlsf (no layer)", Variant::Plain),
    ("off", Variant::Layer(DebugFlags::empty())),
    ("floor: fill+scan", Variant::Floor),
    ("poison", Variant::Layer(DebugFlags::POISON)),
    ("redzone", Variant::Layer(DebugFlags::REDZONE)),
    ("track", Variant::Layer(DebugFlags::TRACK)),
    (
        "poison+allocpoison",
        Variant::Layer(DebugFlags::POISON.union(DebugFlags::ALLOC_POISON)),
    ),
    ("all", Variant::Layer(DebugFlags::all())),
];

/// Runs every variant `rounds` times, interleaved (round `r` starts at
/// variant `r`, so no variant always follows the same one), and prints the
/// median ns per step and the median of the per-round ratios to the plain
/// heap (each ratio compares two runs made moments apart, which cancels
/// most of a shared machine's changes in load).
fn table(
    title: &str,
    rounds: usize,
    variants: &[(&str, Variant)],
    mut run: impl FnMut(Variant) -> Run,
) {
    let mut samples = vec![Vec::new(); variants.len()];
    let mut failed = vec![0; variants.len()];
    for round in 0..rounds {
        for offset in 0..variants.len() {
            let index = (round + offset) % variants.len();
            let result = run(variants[index].1);
            samples[index].push(result.ns_per_step);
            failed[index] = result.failed;
        }
    }
    println!("{title}, {rounds} interleaved rounds");
    println!(
        "{:<20} {:>9} {:>7} {:>7}",
        "layer", "ns/step", "ratio", "failed"
    );
    for (index, (name, _)) in variants.iter().enumerate() {
        let ns = median(samples[index].clone());
        let ratios = samples[index]
            .iter()
            .zip(&samples[0])
            .map(|(ns, base)| ns / base)
            .collect();
        println!(
            "{name:<20} {ns:>9.1} {:>7.2} {:>7}",
            median(ratios),
            failed[index]
        );
    }
    println!();
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: do a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let quick = smoke || std::env::var_os("QUICK").is_some();
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 3 } else { 11 });
    let only = std::env::var("ONLY").ok();
    let variants: Vec<_> = VARIANTS
        .iter()
        .enumerate()
        .filter(|(index, (name, _))| *index == 0 || only.as_deref().is_none_or(|o| o == *name))
        .map(|(_, variant)| *variant)
        .collect();
    let mut memory = Memory::new();
    let workload = std::env::var("WORKLOAD").ok();
    let wanted = |name: &str| workload.as_deref().is_none_or(|w| w == name);
    if wanted("random") {
        let trace = actions(if quick { 20_000 } else { 400_000 });
        table(
            &format!(
                "random actions (blocks never touched), {} steps",
                trace.len()
            ),
            rounds,
            &variants,
            |variant| measure(variant, Workload::RandomActions(&trace), &mut memory),
        );
    }
    if wanted("generator") {
        let steps = match (smoke, quick) {
            (true, _) => 2_000,
            (false, true) => 10_000,
            (false, false) => 100_000,
        };
        table(
            &format!("generator (every block written and checked), {steps} steps"),
            rounds,
            &variants,
            |variant| measure(variant, Workload::Generator(steps), &mut memory),
        );
    }
}
