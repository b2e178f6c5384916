//! The per-CPU caches on simulated CPUs (one thread switching CPUs): the
//! fast path, the exact double-free check, bad frees, the lock budget,
//! draining and the counters.

mod common;

use std::alloc::Layout;
use std::ptr::NonNull;

use common::{Heap, depot_used, heap, set_cpu};
use kalloc::AllocError;
use kheap::magazine_capacity;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn alloc(heap: &Heap, size: usize) -> NonNull<u8> {
    heap.alloc(layout(size)).expect("allocation")
}

fn free(heap: &Heap, ptr: NonNull<u8>, size: usize) -> Result<(), AllocError> {
    // SAFETY: blocks of this heap (or, for the error cases, freed ones).
    unsafe { heap.dealloc(ptr, layout(size)) }
}

#[test]
fn an_object_freed_on_a_cpu_comes_back_there_without_the_lock() {
    let heap = heap(256);
    set_cpu(0);
    let first = alloc(heap, 64);
    free(heap, first, 64).unwrap();
    let locked = heap.stats().lock_acquisitions;
    let again = alloc(heap, 64);
    assert_eq!(again, first, "the last object freed is handed out first");
    free(heap, again, 64).unwrap();
    assert_eq!(
        heap.stats().lock_acquisitions,
        locked,
        "no lock on the fast path"
    );
}

#[test]
fn a_second_free_of_a_parked_object_is_a_double_free_on_every_cpu() {
    let heap = heap(256);
    set_cpu(0);
    let object = alloc(heap, 48);
    free(heap, object, 48).unwrap();
    for cpu in [0, 1, 3] {
        set_cpu(cpu);
        assert_eq!(
            free(heap, object, 48),
            Err(AllocError::DoubleFree),
            "on CPU {cpu}"
        );
        // SAFETY: the object came from this heap.
        let verdict = unsafe { heap.check_dealloc(object, layout(48)) };
        assert_eq!(verdict, Err(AllocError::DoubleFree));
    }
    // Parked once: two allocations on CPU 0 never both get it.
    set_cpu(0);
    let (a, b) = (alloc(heap, 48), alloc(heap, 48));
    assert_ne!(a, b);
    assert!(a == object || b == object);
    free(heap, a, 48).unwrap();
    free(heap, b, 48).unwrap();
}

#[test]
fn a_double_free_after_the_object_went_back_to_the_slab_is_caught_there() {
    let heap = heap(256);
    set_cpu(0);
    let object = alloc(heap, 100);
    free(heap, object, 100).unwrap();
    // The refill parked a batch besides; the drain gives back all of it.
    let parked = heap.stats().cached_total();
    assert!(parked > 1);
    assert_eq!(heap.drain_this_cpu(), parked);
    assert_eq!(heap.stats().cached_total(), 0);
    assert_eq!(free(heap, object, 100), Err(AllocError::DoubleFree));
}

#[test]
fn bad_frees_are_refused_and_change_nothing() {
    let heap = heap(256);
    set_cpu(2);
    let object = alloc(heap, 64);
    let before = heap.stats();
    // SAFETY: one byte into a live 64-byte object: inside the heap.
    let inside = unsafe { object.add(8) };
    assert_eq!(free(heap, inside, 64), Err(AllocError::NotAllocated));
    assert_eq!(
        free(heap, object, 512),
        Err(AllocError::NotAllocated),
        "another class"
    );
    let mut outside = 0u64;
    let outside = NonNull::from(&mut outside).cast::<u8>();
    assert_eq!(free(heap, outside, 64), Err(AllocError::OutOfRange));
    let after = heap.stats();
    assert_eq!(
        (after.frees, after.cached_total()),
        (before.frees, before.cached_total())
    );
    free(heap, object, 64).unwrap();
}

#[test]
fn a_live_object_whose_data_looks_parked_is_freed_not_refused() {
    let heap = heap(256);
    set_cpu(0);
    let donor = alloc(heap, 32);
    free(heap, donor, 32).unwrap();
    // SAFETY: the parked object's first word is readable (it is the
    // heap's); only for building the look-alike below.
    let mark = unsafe { donor.cast::<usize>().read() };
    let object = alloc(heap, 32);
    assert_eq!(object, donor);
    // The mark is address-bound: the user writes the very word a parked
    // object holds, which sends the free the slow way.
    // SAFETY: the object is live and ours.
    unsafe { object.cast::<usize>().write(mark) };
    free(heap, object, 32).unwrap();
    assert_eq!(free(heap, object, 32), Err(AllocError::DoubleFree));
}

#[test]
fn same_cpu_churn_takes_the_lock_at_most_once_per_sixteen_operations() {
    let heap = heap(if cfg!(miri) { 256 } else { 1024 });
    set_cpu(1);
    let sizes = [8, 24, 64, 96, 200, 256, 500, 1000, 2000];
    let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut ops = 0u64;
    let start = heap.stats().lock_acquisitions;
    // Under Miri a short run checks the paths; the ratio needs the long one.
    for _ in 0..if cfg!(miri) { 300 } else { 200_000 } {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if live.len() < 256 && (seed & 1 == 0 || live.is_empty()) {
            let size = sizes[(seed >> 8) as usize % sizes.len()];
            live.push((alloc(heap, size), size));
        } else {
            let (ptr, size) = live.swap_remove((seed >> 16) as usize % live.len());
            free(heap, ptr, size).unwrap();
        }
        ops += 1;
    }
    let locked = heap.stats().lock_acquisitions - start;
    assert!(
        cfg!(miri) || locked * 16 <= ops,
        "{locked} lock acquisitions for {ops} operations"
    );
    for (ptr, size) in live {
        free(heap, ptr, size).unwrap();
    }
}

#[test]
fn drain_gives_every_parked_object_back() {
    let heap = heap(512);
    let used_at_start = depot_used(heap);
    for cpu in 0..4 {
        set_cpu(cpu);
        let objects: Vec<_> = (0..40).map(|_| alloc(heap, 128)).collect();
        for object in objects {
            free(heap, object, 128).unwrap();
        }
    }
    let parked = heap.stats().cached_total();
    assert!(parked >= 4 * magazine_capacity(5), "{parked} parked");
    let mut drained = 0;
    for cpu in 0..4 {
        set_cpu(cpu);
        drained += heap.drain_this_cpu();
    }
    assert_eq!(drained, parked);
    assert_eq!(heap.stats().cached_total(), 0);
    assert_eq!(depot_used(heap), used_at_start);
}

#[test]
fn counters_sum_over_cpus_and_include_the_caches() {
    let heap = heap(512);
    set_cpu(0);
    let a = alloc(heap, 10);
    let b = alloc(heap, 3000);
    set_cpu(5);
    let c = alloc(heap, 700);
    free(heap, a, 10).unwrap(); // freed on another CPU than it came from
    let stats = heap.stats();
    assert_eq!((stats.allocs, stats.frees, stats.live_blocks()), (3, 1, 2));
    assert_eq!(stats.live_bytes(), 3700);
    assert_eq!(heap.parked_on(5)[1], 1, "CPU 5 parks the object it freed");
    let parked_on_0 = heap.parked_on(0);
    assert_eq!(
        parked_on_0[1],
        magazine_capacity(1) - 1,
        "the rest of CPU 0's refill"
    );
    assert_eq!(stats.cached_objects[1], parked_on_0[1] + 1);
    let class_bytes: usize = (0..kalloc::byte::KMALLOC_CLASSES)
        .map(|class| stats.cached_objects[class] * kalloc::byte::KMALLOC_SIZES[class])
        .sum();
    assert_eq!(stats.cached_bytes, class_bytes);
    free(heap, b, 3000).unwrap();
    free(heap, c, 700).unwrap();
    assert_eq!(heap.stats().live_bytes(), 0);
}

#[test]
fn an_exhausted_heap_fails_with_no_memory_and_recovers() {
    // Miri runs a smaller heap: the same paths, fewer blocks.
    let pages = if cfg!(miri) { 16 } else { 64 };
    let heap = heap(pages);
    set_cpu(0);
    let mut blocks = Vec::new();
    let error = loop {
        match heap.alloc_or_reclaim(layout(1024)) {
            Ok(block) => blocks.push(block),
            Err(error) => break error,
        }
    };
    assert_eq!(error, AllocError::NoMemory);
    assert!(blocks.len() > pages, "{} blocks", blocks.len());
    for block in blocks.drain(..) {
        free(heap, block, 1024).unwrap();
    }
    let again = heap
        .alloc_or_reclaim(layout(4096 * 8))
        .expect("memory is back after reclaim");
    free(heap, again, 4096 * 8).unwrap();
}

#[test]
fn the_watermark_is_within_the_fold_bound_of_the_true_peak() {
    let heap = heap(1024);
    set_cpu(3);
    let count = if cfg!(miri) { 64 } else { 1024 };
    let blocks: Vec<_> = (0..count).map(|_| alloc(heap, 1000)).collect();
    for block in blocks {
        free(heap, block, 1000).unwrap();
    }
    let peak = heap.stats().peak_bytes as isize;
    let true_peak = count as isize * 1000;
    assert!(
        (peak - true_peak).abs() < kheap::FOLD_BYTES,
        "peak {peak}, true peak {true_peak}"
    );
}
