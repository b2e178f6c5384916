//! What `memdebug=` costs in the running kernel: one allocation workload
//! timed through `GlobalAlloc` (as `memdebug=` set it up at boot) and
//! through the undecorated path the layers wrap ([`KernelHeap`]: the heap
//! under its lock, no per-hart cache, no statistics, no layer), in
//! alternating rounds, best of [`ROUNDS`], printed as ns/op and a ratio.
//!
//! In the `memdebug=off` configuration the ratio is what the per-hart
//! caches, the off switch and the statistics give and take together;
//! under `memdebug=all`, the price of every layer. Timing under QEMU is
//! noisy: read the ratios, not the ns.

use super::layers::KernelHeap;
use crate::ktest::prelude::*;
use core::alloc::Layout;
use core::ptr::NonNull;
use kalloc::ByteAllocator;

const ROUNDS: usize = 5;
const OPS: usize = 3000;
const LIVE: usize = 64;
/// Heap sizes only: blocks of a page or more would pass the page layer on
/// both paths when it is on.
const SIZES: [usize; 9] = [16, 24, 64, 100, 256, 512, 1000, 2048, 3000];

/// One way of running the workload.
type Path = fn() -> Option<u64>;

/// Runs the workload through `alloc`/`free`; returns timebase ticks, or
/// `None` if an allocation failed.
fn workload(
    mut alloc: impl FnMut(Layout) -> Option<NonNull<u8>>,
    mut free: impl FnMut(NonNull<u8>, Layout),
) -> Option<u64> {
    let mut live: [Option<(NonNull<u8>, Layout)>; LIVE] = [None; LIVE];
    let start = crate::arch::cpu::ticks();
    for op in 0..OPS {
        if let Some((ptr, layout)) = live[op % LIVE].take() {
            free(ptr, layout);
        }
        let layout = Layout::from_size_align(SIZES[op % SIZES.len()], 8).ok()?;
        let ptr = alloc(layout)?;
        // SAFETY: a fresh block of at least one byte.
        unsafe { ptr.as_ptr().write_volatile(op as u8) };
        live[op % LIVE] = Some((ptr, layout));
    }
    for (ptr, layout) in live.into_iter().flatten() {
        free(ptr, layout);
    }
    Some(crate::arch::cpu::ticks() - start)
}

fn through_global_alloc() -> Option<u64> {
    workload(
        // SAFETY: non-zero sizes.
        |layout| NonNull::new(unsafe { alloc::alloc::alloc(layout) }),
        // SAFETY: each block is freed once, with its layout.
        |ptr, layout| unsafe { alloc::alloc::dealloc(ptr.as_ptr(), layout) },
    )
}

fn undecorated() -> Option<u64> {
    workload(
        |layout| KernelHeap.alloc(layout).ok(),
        |ptr, layout| {
            // SAFETY: each block came from `KernelHeap` with this layout
            // and is freed once.
            let freed = unsafe { KernelHeap.dealloc(ptr, layout) };
            debug_assert!(freed.is_ok(), "the heap refused a benchmark block");
        },
    )
}

ktest! {
    fn memdebug_overhead_against_the_undecorated_allocator() {
        let live_before = crate::memory::global::stats().live_blocks();
        let paths: [(&str, Path); 2] = [
            ("GlobalAlloc", through_global_alloc),
            ("undecorated", undecorated),
        ];
        let mut best = [u64::MAX; 2];
        for _ in 0..ROUNDS {
            for (index, (name, run)) in paths.iter().enumerate() {
                let ticks = run();
                kassert!(ticks.is_some(), "{name}: an allocation failed during the workload");
                best[index] = best[index].min(ticks.unwrap_or(u64::MAX));
            }
        }
        kassert_eq!(crate::memory::global::stats().live_blocks(), live_before);
        let ns = |ticks: u64| super::config::ticks_to_micros(ticks * 1000) / OPS as u64;
        let ratio = |a: u64, b: u64| {
            let x100 = a * 100 / b.max(1);
            (x100 / 100, x100 % 100)
        };
        let (whole, whole_frac) = ratio(best[0], best[1]);
        crate::println!(
            "    memdebug={}: ns/op GlobalAlloc {}, undecorated {}; \
             GlobalAlloc/undecorated {whole}.{whole_frac:02} (best of {ROUNDS} x {OPS} alloc+free)",
            super::config::flags(),
            ns(best[0]),
            ns(best[1]),
        );
        Ok(())
    }
}
