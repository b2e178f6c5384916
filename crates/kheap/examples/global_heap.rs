//! A `CachedHeap` as the host program's `#[global_allocator]`: every
//! `Box`, `Vec` and `String` below, and the standard library's own
//! allocations, come from per-CPU magazines over a slab allocator over a
//! buddy page allocator over a static arena. Each thread is a CPU.
//!
//! `cargo run -p rvos-kheap --example global_heap`
//!
//! A kernel does the same with its own `Cpu` (hart id, interrupt masking)
//! and calls `init` at boot; on the host the first allocation initialises
//! the heap, since the runtime allocates before `main`.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::thread;

use kalloc::BaseAllocator;
use kalloc::byte::SlabAllocator;
use kalloc::page::BuddyPageAllocator;
use kheap::ksync::{Arch, IrqNesting};
use kheap::{CachedHeap, Cpu, NoHooks};

/// CPU slots: the main thread and the workers below, with room to spare.
const CPUS: usize = 8;
const WORKERS: usize = 4;
const ARENA_BYTES: usize = 64 << 20;

/// The "RAM" of the heap: page aligned, zero until used (`.bss`).
#[repr(C, align(4096))]
struct Arena([u8; ARENA_BYTES]);
static mut ARENA: Arena = Arena([0; ARENA_BYTES]);

/// The host as the heap sees it: a thread takes the next free CPU slot at
/// its first allocation and keeps it (slots are never reused, so no two
/// running threads share one); "interrupts" are a per-thread flag, since
/// nothing interrupts a host thread inside the allocator.
struct HostCpu;

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static NESTING: [IrqNesting; CPUS] = [const { IrqNesting::new() }; CPUS];

thread_local! {
    // `const` initialisers and no destructors: reading these never
    // allocates, which a global allocator's own state must not.
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    static IRQ_ENABLED: Cell<bool> = const { Cell::new(true) };
}

fn slot() -> usize {
    SLOT.with(|slot| {
        if slot.get() == usize::MAX {
            let next = NEXT_SLOT.fetch_add(1, Relaxed);
            if next >= CPUS {
                // Panicking would allocate; there is no CPU to run on.
                std::process::abort();
            }
            slot.set(next);
        }
        slot.get()
    })
}

impl Arch for HostCpu {
    fn hart_id() -> usize {
        slot()
    }

    fn irq_save_disable() -> usize {
        IRQ_ENABLED.with(|enabled| usize::from(enabled.replace(false)))
    }

    fn irq_restore(saved: usize) {
        IRQ_ENABLED.with(|enabled| enabled.set(saved != 0));
    }

    fn irq_nesting() -> &'static IrqNesting {
        &NESTING[slot()]
    }

    /// More threads than cores: a waiter for the heap's lock yields, so
    /// the holder gets the core back.
    fn relax() {
        thread::yield_now();
    }
}

impl Cpu for HostCpu {
    fn cpu_index() -> usize {
        slot()
    }
}

type Heap = CachedHeap<HostCpu, SlabAllocator<BuddyPageAllocator>, NoHooks, CPUS>;
static HEAP: Heap = CachedHeap::new("heap");
static INIT: Once = Once::new();

/// The arena to a page allocator, the page allocator to a slab allocator,
/// the slab allocator to the heap.
fn init() {
    let start = (&raw mut ARENA).cast::<u8>();
    let mut pages = BuddyPageAllocator::new();
    // SAFETY: the arena is used by nothing but this page allocator, and
    // `INIT` runs this once.
    if unsafe { pages.add_memory(start.expose_provenance(), ARENA_BYTES) }.is_err() {
        std::process::abort();
    }
    HEAP.init(SlabAllocator::new(pages));
}

/// `HEAP`, initialised on first use.
struct Global;

// SAFETY: every operation goes to `HEAP`, a `GlobalAlloc`, once it is
// initialised.
unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        INIT.call_once(init);
        // SAFETY: forwarded from the caller.
        unsafe { GlobalAlloc::alloc(&HEAP, layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller; `ptr` came from `alloc`, so
        // the heap is initialised.
        unsafe { GlobalAlloc::dealloc(&HEAP, ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Global = Global;

fn main() {
    let (to_main, from_workers) = mpsc::channel::<String>();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let to_main = to_main.clone();
            thread::spawn(move || {
                let mut kept = Vec::new();
                for i in 0..20_000 {
                    let boxed = Box::new([i as u64; 4]);
                    let text = format!("worker {worker} item {i}");
                    assert_eq!(boxed[3], i as u64);
                    if i % 100 == 0 {
                        // Freed by the main thread: another CPU.
                        to_main.send(text).unwrap();
                    } else if i % 7 == 0 {
                        kept.push(text);
                    }
                }
                kept.len()
            })
        })
        .collect();
    drop(to_main);

    let received: Vec<String> = from_workers.iter().collect();
    let kept: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(received.len(), WORKERS * 200);
    assert!(received.iter().all(|text| text.starts_with("worker ")));
    drop(received);

    let stats = HEAP.stats();
    println!(
        "{} allocations, {} frees ({} strings held until their workers ended)",
        stats.allocs, stats.frees, kept
    );
    println!(
        "{} trips to the heap's lock ({:.4} per allocation), {} objects parked in magazines",
        stats.lock_acquisitions,
        stats.lock_acquisitions as f64 / stats.allocs as f64,
        stats.cached_total()
    );
    assert!(stats.allocs > (WORKERS * 40_000) as u64);
    assert_eq!(stats.failures, 0);
}
