//! The cached fast path alone: on one thread (CPU 0 of the host `Cpu` of
//! the tests), `KHEAP_FASTPATH_ITERS` iterations (default 1 million) of
//! one allocation of 64 bytes and its free, after a warm-up that loads the
//! magazine, so every iteration pops from and pushes to it (no refill, no
//! flush; checked from the heap's counters). The layout is opaque to the
//! optimiser, as it is behind `__rust_alloc`.
//!
//! `KHEAP_FASTPATH_MODE` picks the calls:
//! - `direct` (default): `CachedHeap::alloc` and `CachedHeap::dealloc`
//!   called from the loop, inlined or not as the compiler decides for any
//!   caller;
//! - `split`: the same two calls each in a function of its own
//!   (`fastpath::alloc_64`, `fastpath::free_64`), so a profiler shows what
//!   each costs (plus a call and a return);
//! - `global`: through `GlobalAlloc`, what `#[global_allocator]` runs.
//!
//! Instructions per iteration, with the setup taken out: run it under
//! `valgrind --tool=callgrind` with two iteration counts and divide the
//! difference of the totals by the difference of the counts.
//!
//! Run: `cargo bench -p rvos-kheap --bench fastpath`. Without cargo bench's
//! `--bench` argument it prints `skipped` and returns.

#[path = "../tests/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Instant;

use common::Heap;

/// One allocation of the fast path, kept out of line.
#[inline(never)]
fn alloc_64(heap: &Heap, layout: Layout) -> NonNull<u8> {
    heap.alloc(layout).expect("fast-path allocation failed")
}

/// One free of the fast path, kept out of line.
#[inline(never)]
fn free_64(heap: &Heap, block: NonNull<u8>, layout: Layout) {
    // SAFETY: `block` came from `alloc_64` with this layout, freed once.
    unsafe { heap.dealloc(block, layout) }.expect("fast-path free refused");
}

#[derive(Clone, Copy)]
enum Mode {
    Direct,
    Split,
    Global,
}

#[inline(always)]
fn pair(heap: &Heap, layout: Layout, mode: Mode) {
    let layout = black_box(layout);
    match mode {
        Mode::Direct => {
            let block = heap.alloc(layout).expect("fast-path allocation failed");
            // SAFETY: just allocated with this layout, freed once.
            unsafe { heap.dealloc(black_box(block), layout) }.expect("fast-path free refused");
        }
        Mode::Split => free_64(heap, black_box(alloc_64(heap, layout)), layout),
        Mode::Global => {
            // SAFETY: a non-zero layout.
            let block = unsafe { GlobalAlloc::alloc(heap, layout) };
            assert!(!block.is_null(), "fast-path allocation failed");
            // SAFETY: just allocated with this layout, freed once.
            unsafe { GlobalAlloc::dealloc(heap, black_box(block), layout) };
        }
    }
}

/// The timed loop, one function per mode so a profiler can find it.
#[inline(never)]
fn iterate(heap: &Heap, layout: Layout, mode: Mode, iters: u64) {
    for _ in 0..iters {
        pair(heap, layout, mode);
    }
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("skipped (run it with `cargo bench -p rvos-kheap --bench fastpath`)");
        return;
    }
    let iters: u64 = std::env::var("KHEAP_FASTPATH_ITERS")
        .map(|value| {
            value
                .replace('_', "")
                .parse()
                .expect("KHEAP_FASTPATH_ITERS")
        })
        .unwrap_or(1_000_000);
    let mode = match std::env::var("KHEAP_FASTPATH_MODE").as_deref() {
        Err(_) | Ok("direct") => Mode::Direct,
        Ok("split") => Mode::Split,
        Ok("global") => Mode::Global,
        Ok(other) => panic!("KHEAP_FASTPATH_MODE={other}: direct, split or global"),
    };

    common::set_cpu(0);
    let heap = common::heap(256);
    let layout = Layout::from_size_align(64, 8).unwrap();
    assert!(heap.caches_enabled());
    iterate(heap, layout, mode, 1000);

    let before = heap.stats();
    let began = Instant::now();
    iterate(heap, layout, mode, iters);
    let elapsed = began.elapsed();
    let after = heap.stats();
    assert_eq!(
        (after.lock_acquisitions, after.refills, after.flushes),
        (before.lock_acquisitions, before.refills, before.flushes),
        "an iteration left the fast path"
    );
    assert_eq!(after.allocs - before.allocs, iters);
    println!(
        "kheap fast path ({}): {iters} x (alloc 64 B + free), {:.2} ns per pair, no lock taken",
        match mode {
            Mode::Direct => "direct",
            Mode::Split => "split",
            Mode::Global => "GlobalAlloc",
        },
        elapsed.as_nanos() as f64 / iters.max(1) as f64
    );
}
