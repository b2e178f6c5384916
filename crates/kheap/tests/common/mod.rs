//! A host [`kheap::Cpu`]: each thread is on the CPU it sets with
//! [`set_cpu`] (so one thread can play several CPUs in a model test, or
//! each thread be one CPU), interrupts are a per-thread flag, and the heap
//! under test sits on a buddy page allocator over a leaked arena.

#![allow(dead_code)]

use std::cell::Cell;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use kalloc::BaseAllocator;
use kalloc::byte::SlabAllocator;
use kalloc::page::BuddyPageAllocator;
use kheap::{CachedHeap, NoHooks};
use ksync::{Arch, IrqNesting};

pub const CPUS: usize = 8;
pub const PAGE: usize = 4096;

/// The calling thread's CPU and interrupt-enable flag, in one
/// thread-local (one lookup per access).
struct ThreadCpu {
    cpu: Cell<usize>,
    irq_enabled: Cell<bool>,
}

thread_local! {
    static THREAD_CPU: ThreadCpu = const {
        ThreadCpu {
            cpu: Cell::new(0),
            irq_enabled: Cell::new(true),
        }
    };
}

/// Puts the calling thread on CPU `cpu`.
pub fn set_cpu(cpu: usize) {
    assert!(cpu < CPUS);
    THREAD_CPU.with(|t| t.cpu.set(cpu));
}

pub struct TestCpu;

impl Arch for TestCpu {
    fn hart_id() -> usize {
        THREAD_CPU.with(|t| t.cpu.get())
    }

    #[inline(always)]
    fn irq_save_disable() -> usize {
        THREAD_CPU.with(|t| usize::from(t.irq_enabled.replace(false)))
    }

    #[inline(always)]
    fn irq_restore(saved: usize) {
        THREAD_CPU.with(|t| t.irq_enabled.set(saved != 0));
    }

    /// Per thread, not per CPU number: tests of one binary run in
    /// parallel threads that may play the same CPU number.
    fn irq_nesting() -> &'static IrqNesting {
        thread_local! {
            static NESTING: &'static IrqNesting = {
                let nesting: &'static IrqNesting = Box::leak(Box::new(IrqNesting::new()));
                keep(nesting);
                nesting
            };
        }
        NESTING.with(|nesting| *nesting)
    }

    fn relax() {
        std::thread::yield_now();
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl kheap::Cpu for TestCpu {
    #[inline(always)]
    fn cpu_index() -> usize {
        THREAD_CPU.with(|t| t.cpu.get())
    }

    fn now() -> u64 {
        epoch().elapsed().as_nanos() as u64
    }

    /// Two seconds: answers come from threads the OS may not run at once.
    const DRAIN_PATIENCE: u64 = 2_000_000_000;
}

pub type Depot = SlabAllocator<BuddyPageAllocator>;
pub type Heap = CachedHeap<TestCpu, Depot, NoHooks, CPUS>;

/// Memory deliberately leaked for a test's duration, kept reachable from a
/// static so Miri's leak check does not count it.
struct Kept(#[allow(dead_code)] *mut u8);
// SAFETY: the pointers are never dereferenced through this list.
unsafe impl Send for Kept {}
static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

pub fn keep<T: ?Sized>(ptr: *const T) {
    KEPT.lock().unwrap().push(Kept(ptr.cast_mut().cast()));
}

/// A heap over `pages` fresh pages, leaked (tests are short).
pub fn heap(pages: usize) -> &'static Heap {
    let heap: &'static Heap = Box::leak(Box::new(CachedHeap::new("heap")));
    let arena = std::alloc::Layout::from_size_align(pages * PAGE, PAGE).unwrap();
    // SAFETY: a non-zero layout.
    let start = unsafe { std::alloc::alloc(arena) };
    assert!(!start.is_null());
    keep(start);
    keep(heap);
    let mut pages_allocator = BuddyPageAllocator::new();
    // SAFETY: fresh memory, leaked, used by nothing else.
    unsafe { pages_allocator.add_memory(start.expose_provenance(), pages * PAGE) }.unwrap();
    heap.init(SlabAllocator::new(pages_allocator));
    heap
}

/// Bytes the slab allocator under `heap` hands out (objects parked in
/// magazines count: the slab allocator handed them out).
pub fn depot_used(heap: &Heap) -> usize {
    use kalloc::ByteAllocator;
    heap.with_depot(|depot| depot.used_bytes()).unwrap()
}

/// Fills a block with a pattern derived from its address and a tag.
pub fn fill(ptr: *mut u8, size: usize, tag: u8) {
    for i in 0..size {
        // SAFETY: the block is the caller's, `size` bytes long.
        unsafe { ptr.add(i).write(tag ^ (i as u8)) };
    }
}

/// Checks the pattern of [`fill`].
pub fn check(ptr: *mut u8, size: usize, tag: u8) {
    for i in 0..size {
        // SAFETY: as in `fill`.
        let byte = unsafe { ptr.add(i).read() };
        assert_eq!(byte, tag ^ (i as u8), "block {ptr:p} byte {i} overwritten");
    }
}
