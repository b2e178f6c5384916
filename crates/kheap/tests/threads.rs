//! The per-CPU caches under real concurrency: each std thread is one CPU.
//! Blocks freed on another thread than the one that allocated them, drain
//! requests answered by a running CPU, allocations that reclaim objects
//! parked on another CPU, and double frees across CPUs.

mod common;

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::{Mutex, MutexGuard, PoisonError, mpsc};
use std::thread;
use std::time::Duration;

use common::{Heap, PAGE, check, depot_used, fill, heap, set_cpu};
use kalloc::AllocError;
use kalloc::byte::kmalloc_class;
use kheap::magazine_capacity;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn alloc(heap: &Heap, size: usize) -> NonNull<u8> {
    heap.alloc(layout(size))
        .unwrap_or_else(|error| panic!("{size} bytes: {error:?}"))
}

fn free(heap: &Heap, ptr: NonNull<u8>, size: usize) -> Result<(), AllocError> {
    // SAFETY: blocks of this heap (or, for the error cases, freed ones).
    unsafe { heap.dealloc(ptr, layout(size)) }
}

/// A block handed from one thread to another.
struct Handed {
    ptr: NonNull<u8>,
    size: usize,
    tag: u8,
}

// SAFETY: the sending thread gives the block up; only the receiving thread
// uses it afterwards (the channel orders the two).
unsafe impl Send for Handed {}

/// The tests of this file one at a time: the host CPUs of `common` are
/// per thread but their interrupt-masking depths are per CPU index, so two
/// tests must not play the same CPU at once.
fn one_test_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How often a serving thread looks for drain requests: far below the
/// two seconds an asker waits, and sleeping in between lets the asker run
/// (under Miri, whose threads share one interpreter).
const SERVE_EVERY: Duration = Duration::from_millis(1);

/// Tells a serving thread to stop when dropped, also when the main thread
/// panics (else the scope would wait for the server forever).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Release);
    }
}

/// Every counter back at zero and the depot empty.
fn assert_empty(heap: &Heap) {
    let stats = heap.stats();
    assert_eq!(stats.live_blocks(), 0, "live blocks");
    assert_eq!(stats.live_bytes(), 0, "live bytes");
    assert_eq!(stats.cached_total(), 0, "parked objects");
    assert_eq!(depot_used(heap), 0, "bytes the depot handed out");
}

#[test]
fn blocks_freed_on_other_cpus_leave_nothing_behind_once_every_cpu_and_the_shelf_drain() {
    let _serial = one_test_at_a_time();
    const THREADS: usize = 4;
    // Under Miri fewer and smaller objects: every byte of a pattern is
    // interpreted.
    let (steps, largest) = if cfg!(miri) { (40, 64) } else { (20_000, 2048) };
    let heap = heap(1024);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::channel::<Handed>()).unzip();
    let mut receivers: Vec<_> = receivers.into_iter().map(Some).collect();
    let handed_total: usize = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|cpu| {
                // CPU `cpu` sends to the next CPU and receives from the one
                // before it.
                let to_next = senders[(cpu + 1) % THREADS].clone();
                let from_previous = receivers[cpu].take().unwrap();
                scope.spawn(move || {
                    set_cpu(cpu);
                    let mut rng = SmallRng::seed_from_u64(cpu as u64);
                    let mut live: Vec<Handed> = Vec::new();
                    let mut handed = 0;
                    let free_handed = |block: Handed| {
                        check(block.ptr.as_ptr(), block.size, block.tag);
                        free(heap, block.ptr, block.size).unwrap();
                    };
                    for step in 0..steps {
                        if live.is_empty() || (live.len() < 64 && rng.gen_bool(0.55)) {
                            let size = rng.gen_range(1..=largest);
                            let ptr = alloc(heap, size);
                            let tag = (step as u8) ^ (cpu as u8 * 64);
                            fill(ptr.as_ptr(), size, tag);
                            live.push(Handed { ptr, size, tag });
                        } else {
                            let block = live.swap_remove(rng.gen_range(0..live.len()));
                            if rng.gen_ratio(1, 4) {
                                to_next.send(block).unwrap();
                                handed += 1;
                            } else {
                                free_handed(block);
                            }
                        }
                        while let Ok(block) = from_previous.try_recv() {
                            free_handed(block);
                        }
                    }
                    live.into_iter().for_each(&free_handed);
                    drop(to_next);
                    // Until the previous CPU is done sending.
                    from_previous.into_iter().for_each(&free_handed);
                    heap.drain_this_cpu();
                    handed
                })
            })
            .collect();
        drop(senders);
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert!(handed_total > 0, "some blocks were freed on another CPU");
    // Every CPU drained itself: a drain of all asks nobody and empties
    // the shelf of full magazines.
    let shelved = heap.shelved();
    let report = heap.drain_all();
    assert_eq!((report.objects_here, report.cpus_asked), (shelved, 0));
    let stats = heap.stats();
    assert_eq!(stats.allocs, stats.frees);
    assert_eq!(stats.failures, 0);
    assert_empty(heap);
}

#[test]
fn a_running_cpu_answers_drain_requests_and_its_cache_empties() {
    let _serial = one_test_at_a_time();
    // Under Miri a drain takes a good part of the two seconds the asker
    // waits: one refill's worth of the class with the smallest magazines.
    let (size, count) = if cfg!(miri) { (2048, 1) } else { (64, 40) };
    let heap = heap(256);
    let stop = AtomicBool::new(false);
    let (parked_tx, parked_rx) = mpsc::channel();
    thread::scope(|scope| {
        let server = scope.spawn(|| {
            set_cpu(1);
            let objects: Vec<_> = (0..count).map(|_| alloc(heap, size)).collect();
            for object in objects {
                free(heap, object, size).unwrap();
            }
            parked_tx.send(()).unwrap();
            while !stop.load(Acquire) {
                heap.serve_drain_requests();
                thread::sleep(SERVE_EVERY);
            }
        });
        let stop = StopOnDrop(&stop);
        set_cpu(0);
        let here = alloc(heap, 200);
        free(heap, here, 200).unwrap();
        parked_rx.recv().unwrap();
        let parked = heap.parked_per_cpu();
        assert!(parked[0] > 0 && parked[1] > 0, "{parked:?}");
        let report = heap.drain_all();
        assert_eq!(report.objects_here, parked[0]);
        assert!(report.cpus_asked >= 1, "{report:?}");
        assert_eq!(report.cpus_answered, report.cpus_asked, "{report:?}");
        assert_eq!(heap.parked_per_cpu()[1], 0);
        assert_eq!(heap.stats().cached_total(), 0);
        drop(stop);
        server.join().unwrap();
    });
    assert_empty(heap);
}

/// How many one-page blocks CPU 0 gets with `alloc` until `NoMemory`; frees
/// them again.
fn pages_until_exhausted(
    heap: &Heap,
    alloc: impl Fn(Layout) -> Result<NonNull<u8>, AllocError>,
) -> usize {
    let mut blocks = Vec::new();
    let error = loop {
        match alloc(layout(PAGE)) {
            Ok(block) => blocks.push(block),
            Err(error) => break error,
        }
    };
    assert_eq!(error, AllocError::NoMemory);
    let count = blocks.len();
    for block in blocks {
        free(heap, block, PAGE).unwrap();
    }
    count
}

#[test]
fn an_allocation_reclaims_objects_parked_on_another_cpu_before_it_fails() {
    let _serial = one_test_at_a_time();
    // Natively both magazines end up holding objects; under Miri one
    // refill's worth stays parked (a drain must fit in the two seconds the
    // asker waits).
    let count = if cfg!(miri) { 1 } else { 48 };
    let class = kmalloc_class(layout(2048)).unwrap();
    let heap = heap(if cfg!(miri) { 16 } else { 96 });
    let stop = AtomicBool::new(false);
    let (parked_tx, parked_rx) = mpsc::channel();
    thread::scope(|scope| {
        let holder = scope.spawn(|| {
            set_cpu(1);
            let objects: Vec<_> = (0..count).map(|_| alloc(heap, 2048)).collect();
            for object in objects {
                free(heap, object, 2048).unwrap();
            }
            parked_tx.send(heap.parked_on(1)).unwrap();
            while !stop.load(Acquire) {
                heap.serve_drain_requests();
                thread::sleep(SERVE_EVERY);
            }
        });
        let stop = StopOnDrop(&stop);
        set_cpu(0);
        let parked = parked_rx.recv().unwrap();
        assert!(parked[class] > 0, "CPU 1 parks objects: {parked:?}");
        if !cfg!(miri) {
            assert!(
                parked[class] > magazine_capacity(class),
                "both magazines hold objects: {parked:?}"
            );
        }
        let plain = pages_until_exhausted(heap, |layout| heap.alloc(layout));
        assert_eq!(
            heap.parked_on(1),
            parked,
            "a plain allocation takes nothing back"
        );
        let reclaiming = pages_until_exhausted(heap, |layout| heap.alloc_or_reclaim(layout));
        // The slabs of the parked objects come back whole: at least their
        // bytes in pages.
        let parked_pages = parked[class] * 2048 / PAGE;
        assert!(
            reclaiming >= plain + parked_pages,
            "{reclaiming} pages with reclaim, {plain} without, {parked_pages} parked"
        );
        assert_eq!(heap.parked_on(1)[class], 0, "CPU 1 answered the drain");
        drop(stop);
        holder.join().unwrap();
    });
    assert_empty(heap);
}

#[test]
fn freeing_on_one_cpu_an_object_parked_on_another_is_a_double_free() {
    let _serial = one_test_at_a_time();
    let heap = heap(256);
    let (object_tx, object_rx) = mpsc::channel::<Handed>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::scope(|scope| {
        scope.spawn(move || {
            set_cpu(0);
            let object = alloc(heap, 96);
            free(heap, object, 96).unwrap();
            let class = kmalloc_class(layout(96)).unwrap();
            let parked = heap.parked_on(0)[class];
            object_tx
                .send(Handed {
                    ptr: object,
                    size: 96,
                    tag: 0,
                })
                .unwrap();
            done_rx.recv().unwrap();
            assert_eq!(heap.parked_on(0)[class], parked, "still parked here");
            // Parked last, handed out first: it was parked once, not twice.
            let again = alloc(heap, 96);
            assert_eq!(again, object);
            let next = alloc(heap, 96);
            assert_ne!(next, object);
            free(heap, again, 96).unwrap();
            free(heap, next, 96).unwrap();
            heap.drain_this_cpu();
        });
        scope.spawn(move || {
            set_cpu(1);
            let Handed { ptr, size, .. } = object_rx.recv().unwrap();
            let frees = heap.stats().frees;
            // SAFETY: a block of this heap, freed on CPU 0: the case under
            // test.
            let verdict = unsafe { heap.check_dealloc(ptr, layout(size)) };
            assert_eq!(verdict, Err(AllocError::DoubleFree));
            assert_eq!(free(heap, ptr, size), Err(AllocError::DoubleFree));
            assert_eq!(heap.stats().frees, frees, "a refused free is not counted");
            assert_eq!(heap.parked_per_cpu()[1], 0, "nothing parked on CPU 1");
            done_tx.send(()).unwrap();
        });
    });
    assert_empty(heap);
}

#[test]
fn a_snapshot_taken_during_cross_cpu_frees_gives_counts_that_do_not_wrap() {
    let _serial = one_test_at_a_time();
    let (blocks, snapshots) = if cfg!(miri) {
        (30, 30)
    } else {
        (200_000, 20_000)
    };
    let heap = heap(256);
    // Bounded: CPU 0 stays at most a few blocks ahead of CPU 1.
    let (object_tx, object_rx) = mpsc::sync_channel::<Handed>(16);
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        // CPU 0 allocates, CPU 1 frees what CPU 0 sent: while they run,
        // every allocation counted on CPU 0 is soon a free counted on CPU 1.
        scope.spawn(move || {
            set_cpu(0);
            for tag in 0..blocks {
                let ptr = alloc(heap, 64);
                let tag = tag as u8;
                object_tx.send(Handed { ptr, size: 64, tag }).unwrap();
            }
            heap.drain_this_cpu();
        });
        scope.spawn(|| {
            set_cpu(1);
            for block in object_rx {
                free(heap, block.ptr, block.size).unwrap();
            }
            heap.drain_this_cpu();
            done.store(true, Release);
        });
        set_cpu(2);
        let mut taken = 0;
        while taken < snapshots || !done.load(Acquire) {
            // The per-CPU counters are relaxed: a snapshot may count a
            // free on CPU 1 and miss its allocation on CPU 0. It must still
            // give counts, not panic or wrap around.
            let stats = heap.stats();
            let live = stats.live_blocks();
            assert!(
                live <= stats.allocs,
                "{live} live of {} allocated",
                stats.allocs
            );
            // Where stores are seen in the order they were made (x86, run
            // natively), reading every CPU's frees first never counts a
            // free without its allocation.
            if cfg!(all(target_arch = "x86_64", not(miri))) {
                assert!(
                    stats.frees <= stats.allocs,
                    "{} frees but {} allocations",
                    stats.frees,
                    stats.allocs
                );
            }
            taken += 1;
        }
    });
    assert_empty(heap);
}
