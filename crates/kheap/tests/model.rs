//! Model-based property test of the per-CPU caches: random allocations,
//! frees (on any CPU), double frees, drains and reclaims on simulated CPUs
//! (one thread switching CPUs), compared after every step with a model of
//! the live blocks and with the heap's own counters.

mod common;

use std::alloc::Layout;
use std::collections::BTreeMap;
use std::ptr::NonNull;

use common::{Heap, PAGE, check, depot_used, fill, heap, set_cpu};
use kalloc::AllocError;
use kalloc::byte::{KMALLOC_SIZES, kmalloc_class};
use kheap::{DrainReport, HeapStats, magazine_capacity};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;

/// CPUs the operations run on.
const MODEL_CPUS: usize = 4;
/// Generous: the longest sequence keeps at most one block per step alive,
/// two pages at most each, plus every CPU's full magazines.
const ARENA_PAGES: usize = if cfg!(miri) { 256 } else { 1024 };
/// Requests above the largest class (served in pages) go up to this.
const LARGEST: usize = 2 * PAGE;
/// The longest burst: enough to fill both magazines of any class and
/// flush one (under Miri only the classes above 256 bytes, whose
/// magazines are half as long, and only up to 512 bytes: every byte of a
/// pattern is interpreted).
const BURST_MAX: usize = if cfg!(miri) {
    kheap::MAGAZINE_SLOTS + 2
} else {
    2 * kheap::MAGAZINE_SLOTS + 2
};
const BURST_SIZE_MAX: usize = if cfg!(miri) { 512 } else { 2048 };
/// Freed blocks remembered as double-free candidates.
const FREED_KEPT: usize = 64;

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        cpu: usize,
        size: usize,
        align_log: u32,
    },
    Free {
        cpu: usize,
        pick: Index,
    },
    /// A block freed and not handed out again, among the last few freed
    /// (`recent`, more often still parked) or among all remembered.
    DoubleFree {
        cpu: usize,
        recent: bool,
        pick: Index,
    },
    /// `count` blocks of one size allocated on one CPU, then all freed on
    /// another (enough to fill both magazines and flush one).
    Burst {
        alloc_cpu: usize,
        free_cpu: usize,
        size: usize,
        count: usize,
    },
    Drain {
        cpu: usize,
    },
    Reclaim {
        cpu: usize,
    },
    CheckAllPatterns,
}

fn size() -> impl Strategy<Value = usize> {
    let edges: Vec<usize> = KMALLOC_SIZES
        .iter()
        .flat_map(|&size| [size - 1, size, size + 1])
        .collect();
    prop_oneof![
        6 => 1usize..=2048,
        2 => proptest::sample::select(edges),
        1 => 2049usize..=LARGEST,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let cpu = || 0..MODEL_CPUS;
    prop_oneof![
        6 => (cpu(), size(), 0u32..=6)
            .prop_map(|(cpu, size, align_log)| Op::Alloc { cpu, size, align_log }),
        4 => (cpu(), any::<Index>()).prop_map(|(cpu, pick)| Op::Free { cpu, pick }),
        2 => (cpu(), any::<bool>(), any::<Index>())
            .prop_map(|(cpu, recent, pick)| Op::DoubleFree { cpu, recent, pick }),
        1 => (cpu(), cpu(), 1usize..=BURST_SIZE_MAX, 1usize..=BURST_MAX)
            .prop_map(|(alloc_cpu, free_cpu, size, count)| Op::Burst { alloc_cpu, free_cpu, size, count }),
        1 => cpu().prop_map(|cpu| Op::Drain { cpu }),
        1 => cpu().prop_map(|cpu| Op::Reclaim { cpu }),
        1 => Just(Op::CheckAllPatterns),
    ]
}

/// What a block occupies: its class's object, or whole pages.
fn footprint(layout: Layout) -> usize {
    match kmalloc_class(layout) {
        Some(class) => KMALLOC_SIZES[class],
        None => layout.size().div_ceil(PAGE) * PAGE,
    }
}

struct LiveBlock {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u8,
    /// When it was handed out (the model's clock).
    born: u64,
}

/// A block freed and not handed out again.
struct FreedBlock {
    ptr: NonNull<u8>,
    layout: Layout,
    born: u64,
    died: u64,
    /// The CPU whose magazine certainly holds it, while that is known.
    parked_on: Option<usize>,
}

struct Model {
    heap: &'static Heap,
    live: BTreeMap<usize, LiveBlock>,
    freed: Vec<FreedBlock>,
    next_tag: u8,
    /// Counts allocations and frees.
    clock: u64,
}

impl Model {
    fn new() -> Self {
        Self {
            heap: heap(ARENA_PAGES),
            live: BTreeMap::new(),
            freed: Vec::new(),
            next_tag: 1,
            clock: 0,
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Alloc {
                cpu,
                size,
                align_log,
            } => {
                self.alloc(cpu, Layout::from_size_align(size, 1 << align_log).unwrap());
            }
            Op::Free { cpu, pick } if !self.live.is_empty() => {
                let key = *self.live.keys().nth(pick.index(self.live.len())).unwrap();
                self.free(cpu, key);
            }
            Op::DoubleFree { cpu, recent, pick } if !self.freed.is_empty() => {
                let len = self.freed.len();
                let index = if recent {
                    len - 1 - pick.index(len.min(4))
                } else {
                    pick.index(len)
                };
                self.double_free(cpu, index);
            }
            Op::Burst {
                alloc_cpu,
                free_cpu,
                size,
                count,
            } => {
                let layout = Layout::from_size_align(size, 1).unwrap();
                let mut keys = Vec::with_capacity(count);
                for _ in 0..count {
                    keys.push(self.alloc(alloc_cpu, layout));
                }
                self.verify_counters();
                for key in keys {
                    self.free(free_cpu, key);
                }
            }
            Op::Drain { cpu } => self.drain(cpu),
            Op::Reclaim { cpu } => self.reclaim(cpu),
            Op::CheckAllPatterns => {
                for block in self.live.values() {
                    check(block.ptr.as_ptr(), block.layout.size(), block.tag);
                }
            }
            Op::Free { .. } | Op::DoubleFree { .. } => {}
        }
        self.verify_counters();
    }

    /// Allocates on `cpu`, checks the block against the model, fills it;
    /// returns its address.
    fn alloc(&mut self, cpu: usize, layout: Layout) -> usize {
        set_cpu(cpu);
        let ptr = self
            .heap
            .alloc(layout)
            .unwrap_or_else(|error| panic!("{layout:?} on CPU {cpu} failed: {error:?}"));
        let (start, end) = (ptr.addr().get(), ptr.addr().get() + footprint(layout));
        assert_eq!(
            start % layout.align(),
            0,
            "{ptr:p} misaligned for {layout:?}"
        );
        // Live blocks are disjoint, so the neighbours are enough.
        if let Some((&below, block)) = self.live.range(..=start).next_back() {
            assert!(
                below + footprint(block.layout) <= start,
                "{ptr:p} ({layout:?}) overlaps the live block at {below:#x}"
            );
        }
        if let Some((&above, _)) = self.live.range(start..).next() {
            assert!(
                end <= above,
                "{ptr:p} ({layout:?}) overlaps the live block at {above:#x}"
            );
        }
        self.freed.retain(|freed| {
            let freed_start = freed.ptr.addr().get();
            freed_start + footprint(freed.layout) <= start || end <= freed_start
        });
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        fill(ptr.as_ptr(), layout.size(), tag);
        self.clock += 1;
        let born = self.clock;
        self.live.insert(
            start,
            LiveBlock {
                ptr,
                layout,
                tag,
                born,
            },
        );
        start
    }

    fn free(&mut self, cpu: usize, key: usize) {
        let block = self.live.remove(&key).unwrap();
        check(block.ptr.as_ptr(), block.layout.size(), block.tag);
        let class = kmalloc_class(block.layout);
        let parked_before = class.map(|class| self.heap.parked_on(cpu)[class]);
        set_cpu(cpu);
        // SAFETY: a live block of this heap, not used again.
        let result = unsafe { self.heap.dealloc(block.ptr, block.layout) };
        assert_eq!(result, Ok(()), "free of a live {:?}", block.layout);
        let mut parked_on = None;
        if let (Some(class), Some(before)) = (class, parked_before) {
            let after = self.heap.parked_on(cpu)[class];
            if after == before + 1 {
                parked_on = Some(cpu);
            } else if after + magazine_capacity(class) == before + 1 {
                // Both magazines were full: the previous one went back to
                // the depot (with whatever we knew parked in it), then the
                // block was parked in the emptied one.
                self.forget_parked(|freed_cpu, freed_class| {
                    freed_cpu == cpu && freed_class == Some(class)
                });
                parked_on = Some(cpu);
            } else {
                assert_eq!(after, before, "a free moves at most one magazine");
            }
        }
        if self.freed.len() == FREED_KEPT {
            self.freed.remove(0);
        }
        self.clock += 1;
        self.freed.push(FreedBlock {
            ptr: block.ptr,
            layout: block.layout,
            born: block.born,
            died: self.clock,
            parked_on,
        });
    }

    fn forget_parked(&mut self, moved: impl Fn(usize, Option<usize>) -> bool) {
        for freed in &mut self.freed {
            if let Some(cpu) = freed.parked_on
                && moved(cpu, kmalloc_class(freed.layout))
            {
                freed.parked_on = None;
            }
        }
    }

    /// Whether the slab that handed `freed` out is certainly still in
    /// service: another object of the class on its page has been held
    /// without a break (live, then maybe parked) since before `freed` was
    /// freed. A page belongs to one slab, which the depot keeps while any
    /// of its objects is handed out. (A slab given back and made again on
    /// the same pages is another one: objects it has not handed out yet
    /// are no objects to free.)
    fn slab_in_service(&self, freed: &FreedBlock) -> bool {
        let page = freed.ptr.addr().get() / PAGE;
        let class = kmalloc_class(freed.layout);
        let held_since_before = |ptr: NonNull<u8>, layout, born| {
            ptr.addr().get() / PAGE == page && kmalloc_class(layout) == class && born < freed.died
        };
        self.live
            .values()
            .any(|block| held_since_before(block.ptr, block.layout, block.born))
            || self.freed.iter().any(|other| {
                other.parked_on.is_some() && held_since_before(other.ptr, other.layout, other.born)
            })
    }

    fn double_free(&mut self, cpu: usize, index: usize) {
        let freed = &self.freed[index];
        let (ptr, layout) = (freed.ptr, freed.layout);
        // A parked object, or a free one in a slab in service, is a double
        // free; a large block's pages are in the table or not at all. An
        // object whose slab went back to the page source (an empty slab
        // beyond those the depot keeps) is no object of the class any more.
        let exact = match kmalloc_class(layout) {
            None => Some(AllocError::NotAllocated),
            Some(_) if freed.parked_on.is_some() || self.slab_in_service(freed) => {
                Some(AllocError::DoubleFree)
            }
            Some(_) => None,
        };
        let before = self.snapshot();
        set_cpu(cpu);
        // SAFETY: a block of this heap, freed since: the case under test.
        let verdict = unsafe { self.heap.check_dealloc(ptr, layout) };
        // SAFETY: as above; the heap refuses it.
        let result = unsafe { self.heap.dealloc(ptr, layout) };
        assert_eq!(verdict, result, "check_dealloc agrees with dealloc");
        match exact {
            Some(error) => assert_eq!(result, Err(error), "second free of {ptr:p} ({layout:?})"),
            None => assert!(
                matches!(
                    result,
                    Err(AllocError::DoubleFree | AllocError::NotAllocated)
                ),
                "second free of {ptr:p} ({layout:?}): {result:?}"
            ),
        }
        assert_eq!(self.snapshot(), before, "a refused free changes nothing");
    }

    /// Everything a refused free must leave alone (it does take the lock,
    /// which is counted).
    fn snapshot(&self) -> (HeapStats, [usize; common::CPUS], usize) {
        let mut stats = self.heap.stats();
        stats.lock_acquisitions = 0;
        (stats, self.heap.parked_per_cpu(), depot_used(self.heap))
    }

    fn drain(&mut self, cpu: usize) {
        set_cpu(cpu);
        let parked = self.parked_on(cpu);
        assert_eq!(self.heap.drain_this_cpu(), parked);
        assert_eq!(self.parked_on(cpu), 0);
        self.forget_parked(|freed_cpu, _| freed_cpu == cpu);
    }

    /// One thread cannot answer a drain request as another CPU while it
    /// waits as this one, so the other CPUs drain first (as their answers
    /// would) and the reclaim asks nobody; it gives back this CPU's
    /// objects and the shelf's.
    fn reclaim(&mut self, cpu: usize) {
        for other in (0..MODEL_CPUS).filter(|&other| other != cpu) {
            self.drain(other);
        }
        set_cpu(cpu);
        let parked = self.parked_on(cpu) + self.heap.shelved();
        let report = self.heap.reclaim();
        assert_eq!(
            report,
            DrainReport {
                objects_here: parked,
                cpus_asked: 0,
                cpus_answered: 0
            }
        );
        assert_eq!(self.heap.stats().cached_total(), 0);
        self.forget_parked(|_, _| true);
    }

    /// Objects parked on `cpu`, all classes.
    fn parked_on(&self, cpu: usize) -> usize {
        self.heap.parked_on(cpu).iter().sum()
    }

    fn verify_counters(&self) {
        let stats = self.heap.stats();
        assert_eq!(stats.live_blocks(), self.live.len() as u64, "live blocks");
        let bytes: usize = self.live.values().map(|block| block.layout.size()).sum();
        assert_eq!(stats.live_bytes(), bytes, "live bytes");
        assert_eq!(stats.failures, 0, "no allocation failed");
        let class_bytes: usize = (0..KMALLOC_SIZES.len())
            .map(|class| stats.cached_objects[class] * KMALLOC_SIZES[class])
            .sum();
        assert_eq!(stats.cached_bytes, class_bytes);
        // Under Miri, where every atomic load of a look over all CPUs
        // costs, this one only at the end.
        if !cfg!(miri) {
            self.verify_parked_per_cpu(&stats);
        }
        // The depot counts parked objects as handed out.
        let footprints: usize = self.live.values().map(|b| footprint(b.layout)).sum();
        assert_eq!(
            depot_used(self.heap),
            footprints + stats.cached_bytes,
            "the depot's bytes in use"
        );
    }

    /// The cached objects are those in the CPUs' magazines and those on
    /// the shelf of full magazines.
    fn verify_parked_per_cpu(&self, stats: &HeapStats) {
        assert_eq!(
            self.heap.parked_per_cpu().iter().sum::<usize>() + self.heap.shelved(),
            stats.cached_total()
        );
    }

    /// Frees every live block (each on some CPU), drains every CPU, then
    /// the shelf (a drain of all CPUs that has no CPU left to ask): the
    /// heap is empty again.
    fn finish(mut self) {
        self.verify_parked_per_cpu(&self.heap.stats());
        let keys: Vec<usize> = self.live.keys().copied().collect();
        for (index, key) in keys.into_iter().enumerate() {
            self.free(index % MODEL_CPUS, key);
            if !cfg!(miri) {
                self.verify_counters();
            }
        }
        self.verify_counters();
        for cpu in 0..MODEL_CPUS {
            self.drain(cpu);
        }
        set_cpu(0);
        let shelved = self.heap.shelved();
        assert_eq!(
            self.heap.drain_all(),
            DrainReport {
                objects_here: shelved,
                cpus_asked: 0,
                cpus_answered: 0
            }
        );
        let stats = self.heap.stats();
        assert_eq!((stats.live_blocks(), stats.live_bytes()), (0, 0));
        assert_eq!(stats.cached_total(), 0);
        assert_eq!(depot_used(self.heap), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 256 },
        // Under Miri the same cases every run: its time is the budget.
        rng_seed: if cfg!(miri) { RngSeed::Fixed(0x6b68_6561) } else { RngSeed::Random },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_caches_agree_with_a_model_of_live_blocks_on_every_cpu(
        ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 16 } else { 160 })
    ) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op);
        }
        model.finish();
    }
}
