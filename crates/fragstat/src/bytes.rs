//! Byte-allocator churn (the ratio of the largest free block to all free
//! memory over time) and heap efficiency (the share of the arena in use
//! at the first failed allocation).

use std::alloc::Layout;
use std::ptr::NonNull;

use kalloc::ByteAllocator;
use workload::Rng;

/// Sizes of both workloads: log-uniform in this range.
const MIN_SIZE: usize = 16;
const MAX_SIZE: usize = 16 << 10;

pub struct Sample {
    pub step: u64,
    pub used: usize,
    pub free: usize,
    pub largest_free: usize,
    /// Allocation requests so far, and how many of them failed.
    pub requests: u64,
    pub failures: u64,
}

fn layout(rng: &mut Rng) -> Layout {
    Layout::from_size_align(rng.log_uniform(MIN_SIZE, MAX_SIZE), 8).unwrap()
}

/// Churns around 80% use; `largest_free` reports the allocator's largest
/// free block.
pub fn churn<A: ByteAllocator>(
    heap: &mut A,
    largest_free: impl Fn(&A) -> usize,
    seed: u64,
    steps: u64,
    every: u64,
) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    let target = heap.total_bytes() * 80 / 100;
    let mut live: Vec<(NonNull<u8>, Layout)> = Vec::new();
    let mut samples = Vec::new();
    let (mut requests, mut failures) = (0, 0);
    for step in 0..=steps {
        if step % every == 0 {
            samples.push(Sample {
                step,
                used: heap.used_bytes(),
                free: heap.available_bytes(),
                largest_free: largest_free(heap),
                requests,
                failures,
            });
        }
        if heap.used_bytes() < target && (live.is_empty() || rng.chance(55)) {
            let layout = layout(&mut rng);
            requests += 1;
            match heap.alloc(layout) {
                Ok(ptr) => live.push((ptr, layout)),
                Err(_) => failures += 1,
            }
        } else if !live.is_empty() {
            let (ptr, layout) = live.swap_remove(rng.below(live.len() as u64) as usize);
            // SAFETY: a live block of this heap.
            unsafe { heap.dealloc(ptr, layout).unwrap() };
        }
    }
    for (ptr, layout) in live {
        // SAFETY: a live block of this heap.
        unsafe { heap.dealloc(ptr, layout).unwrap() };
    }
    samples
}

/// Allocates random sizes (freeing a random block one step in three) until
/// the first failure; returns the requested bytes live at that moment over
/// `arena` bytes.
pub fn efficiency<A: ByteAllocator>(heap: &mut A, arena: usize, seed: u64) -> f64 {
    let mut rng = Rng::new(seed);
    let mut live: Vec<(NonNull<u8>, Layout)> = Vec::new();
    let mut requested = 0usize;
    loop {
        if !live.is_empty() && rng.below(3) == 0 {
            let (ptr, layout) = live.swap_remove(rng.below(live.len() as u64) as usize);
            requested -= layout.size();
            // SAFETY: a live block of this heap.
            unsafe { heap.dealloc(ptr, layout).unwrap() };
            continue;
        }
        let layout = layout(&mut rng);
        match heap.alloc(layout) {
            Ok(ptr) => {
                requested += layout.size();
                live.push((ptr, layout));
            }
            Err(_) => break,
        }
    }
    for (ptr, layout) in live {
        // SAFETY: a live block of this heap.
        unsafe { heap.dealloc(ptr, layout).unwrap() };
    }
    requested as f64 / arena as f64
}
