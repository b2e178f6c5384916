//! The generator on real std threads against the lock-wrapped allocators,
//! as the kernel uses them: kalloc's buddy page allocator, TLSF, and the
//! slab allocator taking its slabs from the shared page allocator (lock
//! order slab, then pages), each behind a ksync `TicketLock`. Every thread
//! hands blocks to the next (cross-thread frees); every block's pattern is
//! checked before it is freed; afterwards every counter is back at zero.
//! `SEED=` replays a run.

#[path = "../../ksync/tests/common/mod.rs"]
mod common;

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::thread;

use common::HostArch;
use kalloc::byte::{PageSource, SlabAllocator, Tlsf};
use kalloc::page::BuddyPageAllocator;
use kalloc::{AllocError, AllocResult, BaseAllocator, ByteAllocator, PageAllocator};
use ksync::TicketLock;
use workload::{Block, Failure, Generator, Sizes, Spec, Target};

type Locked<T> = TicketLock<T, HostArch>;

const PAGE: usize = 4096;
const THREADS: usize = 4;
const STEPS: u64 = if cfg!(miri) { 32 } else { 1200 };
/// Page blocks are filled and checked byte by byte: fewer under Miri.
const PAGE_STEPS: u64 = if cfg!(miri) { 16 } else { 1200 };
const ROUND: u64 = 16;
const MAX_LIVE: usize = 32;
/// Arena pages (Miri spends most of its time creating big arenas).
const ARENA_PAGES: usize = if cfg!(miri) { 64 } else { 2048 };

/// Page-aligned host memory for an allocator to manage.
struct Arena {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Arena {
    fn new(bytes: usize) -> Self {
        let layout = Layout::from_size_align(bytes, PAGE).unwrap();
        // SAFETY: non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("host memory");
        Arena { ptr, layout }
    }

    /// The start, its provenance exposed for the integer-address API.
    fn start(&self) -> usize {
        self.ptr.as_ptr().expose_provenance()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

fn page_allocator(arena: &Arena) -> Locked<BuddyPageAllocator> {
    let mut buddy = BuddyPageAllocator::new();
    // SAFETY: the arena outlives every test that uses the allocator and
    // nothing else touches it.
    unsafe { BaseAllocator::add_memory(&mut buddy, arena.start(), arena.layout.size()) }.unwrap();
    Locked::new("pages", buddy)
}

/// The locked page allocator as a workload target (whole pages).
struct Pages<'a>(&'a Locked<BuddyPageAllocator>);

impl Target for Pages<'_> {
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let addr =
            PageAllocator::alloc_pages(&mut *self.0.lock(), size.div_ceil(PAGE), align.max(PAGE))?;
        NonNull::new(std::ptr::with_exposed_provenance_mut(addr)).ok_or(AllocError::InvalidParam)
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, _: usize) -> Result<(), AllocError> {
        PageAllocator::dealloc_pages(&mut *self.0.lock(), ptr.addr().get(), size.div_ceil(PAGE))
    }
}

/// The slab allocator's page source: the shared, locked page allocator.
struct SharedPages<'a>(&'a Locked<BuddyPageAllocator>);

impl PageSource for SharedPages<'_> {
    const PAGE_SIZE: usize = PAGE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<NonNull<u8>> {
        let addr = PageAllocator::alloc_pages(&mut *self.0.lock(), count, align)?;
        NonNull::new(std::ptr::with_exposed_provenance_mut(addr)).ok_or(AllocError::NoMemory)
    }

    unsafe fn dealloc_pages(&mut self, pages: NonNull<u8>, count: usize) -> AllocResult {
        PageAllocator::dealloc_pages(&mut *self.0.lock(), pages.addr().get(), count)
    }

    fn available_pages(&self) -> usize {
        let pages = self.0.lock();
        pages.total_pages() - pages.used_pages()
    }
}

/// A locked byte allocator as a workload target.
struct Bytes<'a, A>(&'a Locked<A>);

impl<A: ByteAllocator> Target for Bytes<'_, A> {
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let layout = Layout::from_size_align(size, align).map_err(|_| AllocError::InvalidParam)?;
        self.0.lock().alloc(layout)
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, align: usize) -> AllocResult {
        let layout = Layout::from_size_align(size, align).map_err(|_| AllocError::InvalidParam)?;
        // SAFETY: forwarded from the caller.
        unsafe { self.0.lock().dealloc(ptr, layout) }
    }
}

/// A block on its way to another thread.
struct InFlight(Block);
// SAFETY: a live block belongs to whoever holds it; the mailbox's mutex
// hands it over.
unsafe impl Send for InFlight {}

fn seed() -> u64 {
    let seed = workload::seed_from(std::env::var("SEED").ok().as_deref(), 0x7417_ead5);
    println!("threads: seed {seed:#x} (SEED= replays)");
    seed
}

/// Runs `spec(thread)` on every thread against `target(thread)`, each
/// thread passing a block to the next every round, then drains the
/// mailboxes. Returns (allocations, frees, cross-thread frees).
fn run_threads<T: Target>(
    steps: u64,
    spec: impl Fn(usize) -> Spec + Sync,
    target: impl Fn() -> T + Sync,
) -> Result<(u64, u64, u64), Failure> {
    let mailboxes: Vec<Mutex<Vec<InFlight>>> = (0..THREADS).map(|_| Mutex::default()).collect();
    let results: Vec<Result<(u64, u64, u64), Failure>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|me| {
                let (spec, target, mailboxes) = (&spec, &target, &mailboxes);
                scope.spawn(move || {
                    let mut slots = vec![None; MAX_LIVE];
                    let mut generator = Generator::new(spec(me), &mut slots);
                    let mut target = target();
                    let mut crossed = 0;
                    for _ in 0..steps / ROUND {
                        generator.run(&mut target, ROUND)?;
                        if let Some(block) = generator.take_victim() {
                            mailboxes[(me + 1) % THREADS]
                                .lock()
                                .unwrap()
                                .push(InFlight(block));
                        }
                        let received = std::mem::take(&mut *mailboxes[me].lock().unwrap());
                        for InFlight(block) in received {
                            generator.check_and_free(&mut target, block)?;
                            crossed += 1;
                        }
                    }
                    let summary = generator.drain(&mut target)?;
                    Ok((summary.allocs, summary.frees, crossed))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut totals = (0, 0, 0);
    for result in results {
        let (allocs, frees, crossed) = result?;
        totals = (totals.0 + allocs, totals.1 + frees, totals.2 + crossed);
    }
    let mut slots = vec![None; MAX_LIVE];
    let mut adopt = Generator::new(spec(0), &mut slots);
    let mut target = target();
    for mailbox in &mailboxes {
        for InFlight(block) in std::mem::take(&mut *mailbox.lock().unwrap()) {
            adopt.check_and_free(&mut target, block)?;
            totals.2 += 1;
        }
    }
    totals.1 += adopt.summary().frees;
    Ok(totals)
}

fn byte_spec(seed: u64, thread: usize, max: usize) -> Spec {
    Spec {
        owner: thread as u32,
        ..Spec::random(seed ^ thread as u64, 1, max, MAX_LIVE)
    }
}

fn check(totals: Result<(u64, u64, u64), Failure>) -> (u64, u64, u64) {
    let (allocs, frees, crossed) = totals.unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(allocs, frees, "every block allocated was freed");
    assert!(crossed > 0, "no block crossed threads");
    (allocs, frees, crossed)
}

#[test]
fn threads_share_the_locked_buddy_page_allocator() {
    let seed = seed();
    let arena = Arena::new(ARENA_PAGES * PAGE);
    let pages = page_allocator(&arena);
    let spec = |thread: usize| Spec {
        sizes: Sizes::Pages {
            page_size: PAGE,
            max_pages: if cfg!(miri) { 1 } else { 3 },
        },
        owner: 100 + thread as u32,
        ..Spec::random(seed.rotate_left(9) ^ thread as u64, 1, 1, 16)
    };
    check(run_threads(PAGE_STEPS, spec, || Pages(&pages)));
    assert_eq!(pages.lock().used_pages(), 0);
}

#[test]
fn threads_share_a_locked_tlsf() {
    let seed = seed();
    let arena = Arena::new(ARENA_PAGES * PAGE);
    let mut tlsf = Tlsf::new();
    // SAFETY: the arena outlives the allocator and nothing else uses it.
    unsafe { tlsf.add_memory(arena.start(), arena.layout.size()) }.unwrap();
    let tlsf = Locked::new("tlsf", tlsf);
    check(run_threads(
        STEPS,
        |thread| byte_spec(seed, thread, 6000),
        || Bytes(&tlsf),
    ));
    assert_eq!(tlsf.lock().used_bytes(), 0);
}

#[test]
fn threads_share_a_locked_slab_over_the_locked_page_allocator() {
    let seed = seed();
    let arena = Arena::new(ARENA_PAGES * PAGE);
    let pages = page_allocator(&arena);
    let slab = Locked::new("slab", SlabAllocator::new(SharedPages(&pages)));
    check(run_threads(
        STEPS,
        |thread| byte_spec(seed.rotate_left(3), thread, 3000),
        || Bytes(&slab),
    ));
    let mut slab = slab.lock();
    assert_eq!(slab.used_bytes(), 0);
    slab.shrink();
    drop(slab);
    assert_eq!(
        pages.lock().used_pages(),
        0,
        "slab pages back in the page allocator"
    );
}
