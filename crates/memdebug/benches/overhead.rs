//! The cost of each debug layer on the random-actions workload, as ratios
//! to the undecorated TLSF heap.
//!
//! Workload (the byte-allocator benchmark's "random actions"): a 32 MiB
//! arena, up to 4096 live blocks, sizes log-uniform in 8 B..64 KiB, one
//! request in 16 with an alignment up to 4096; each step allocates or frees
//! a random live block with equal odds. The action list is generated once
//! from a fixed seed, so every variant does the same work.
//!
//! Run: `cargo bench -p memdebug --bench overhead` (`QUICK=1` for a short
//! run). Prints the median ns per action of 7 rounds, and the ratio.

use std::alloc::Layout;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::time::Instant;

use kalloc::byte::Tlsf;
use kalloc::{BaseAllocator, ByteAllocator};
use memdebug::{DebugByteAllocator, DebugConfig, DebugFlags, IgnoreReports, RecordSlot};
use workload::Rng;

const ARENA: usize = 32 << 20;
const MAX_LIVE: usize = 4096;

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
                let size = rng.log_uniform(8, 64 << 10);
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

/// Runs the actions; returns nanoseconds per action.
fn run(heap: &mut impl ByteAllocator, actions: &[Action]) -> f64 {
    let mut live: Vec<(NonNull<u8>, Layout)> = Vec::with_capacity(MAX_LIVE);
    let start = Instant::now();
    for action in actions {
        match *action {
            Action::Alloc(layout) => {
                if let Ok(ptr) = heap.alloc(layout) {
                    live.push((ptr, layout));
                }
            }
            Action::Free(pick) if !live.is_empty() => {
                let (ptr, layout) = live.swap_remove(pick % live.len());
                // SAFETY: a live block of this heap.
                black_box(unsafe { heap.dealloc(ptr, layout) }).unwrap();
            }
            Action::Free(_) => {}
        }
    }
    let elapsed = start.elapsed();
    for (ptr, layout) in live {
        // SAFETY: a live block of this heap.
        unsafe { heap.dealloc(ptr, layout).unwrap() };
    }
    elapsed.as_nanos() as f64 / actions.len() as f64
}

struct Arena(*mut u8, Layout);

impl Arena {
    fn new() -> Self {
        let layout = Layout::from_size_align(ARENA, 4096).unwrap();
        // SAFETY: non-zero size.
        Arena(unsafe { std::alloc::alloc(layout) }, layout)
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.0, self.1) }
    }
}

fn clock() -> u64 {
    0
}

fn measure(flags: Option<DebugFlags>, actions: &[Action]) -> f64 {
    let arena = Arena::new();
    let mut table: Vec<MaybeUninit<RecordSlot>> =
        (0..16384).map(|_| MaybeUninit::uninit()).collect();
    let mut history: Vec<MaybeUninit<usize>> = (0..1024).map(|_| MaybeUninit::uninit()).collect();
    let mut tlsf = Tlsf::new();
    // SAFETY: the arena is ours for the heap's lifetime.
    unsafe { tlsf.init(arena.0 as usize, ARENA).unwrap() };
    match flags {
        None => run(&mut tlsf, actions),
        Some(flags) => {
            let config = DebugConfig::bytes(flags);
            let mut layer = DebugByteAllocator::new(
                "bench",
                tlsf,
                config,
                IgnoreReports,
                &mut table,
                &mut history,
                clock,
            );
            run(&mut layer, actions)
        }
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: do a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let quick = smoke || std::env::var_os("QUICK").is_some();
    let actions = actions(if quick { 20_000 } else { 400_000 });
    let rounds = if quick { 3 } else { 7 };
    let variants: [(&str, Option<DebugFlags>); 7] = [
        ("tlsf (no layer)", None),
        ("off", Some(DebugFlags::empty())),
        ("poison", Some(DebugFlags::POISON)),
        ("redzone", Some(DebugFlags::REDZONE)),
        ("track", Some(DebugFlags::TRACK)),
        (
            "poison+allocpoison",
            Some(DebugFlags::POISON | DebugFlags::ALLOC_POISON),
        ),
        ("all", Some(DebugFlags::all())),
    ];
    println!(
        "random actions, {} actions, median of {rounds} rounds",
        actions.len()
    );
    println!("{:<20} {:>10} {:>8}", "layer", "ns/action", "ratio");
    let mut base = None;
    for (name, flags) in variants {
        let ns = median((0..rounds).map(|_| measure(flags, &actions)).collect());
        let base = *base.get_or_insert(ns);
        println!("{name:<20} {ns:>10.1} {:>8.2}", ns / base);
    }
}
