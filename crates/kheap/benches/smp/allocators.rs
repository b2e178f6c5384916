//! The contenders: the byte allocators behind [`BenchAlloc`] (kheap's
//! cached heap, the slab behind one mutex, talc, buddy_system_allocator),
//! and [`run`], which builds any contender fresh and runs a workload on it.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr::{self, NonNull};
use std::sync::Mutex;

use buddy_system_allocator::LockedHeap;
use kalloc::ByteAllocator;
use kalloc::byte::SlabAllocator;
use kheap::CachedHeap;
use talc::TalcLock;
use talc::source::Manual;

use crate::arena::{ARENA, Arena};
use crate::common::{Depot, Heap};
use crate::pages;
use crate::timing::Outcome;
use crate::workloads::{self, Workload};

/// What the byte workloads need of an allocator.
pub trait BenchAlloc: Sync {
    /// A block for `layout`, null on failure.
    fn alloc(&self, layout: Layout) -> *mut u8;

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` is a block `alloc` returned for `layout`, not freed since.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout);

    /// Trips to the allocator's lock so far, if it counts them.
    fn lock_acquisitions(&self) -> Option<u64> {
        None
    }
}

impl BenchAlloc for Heap {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a non-zero layout.
        unsafe { GlobalAlloc::alloc(self, layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { GlobalAlloc::dealloc(self, ptr, layout) }
    }

    fn lock_acquisitions(&self) -> Option<u64> {
        Some(self.stats().lock_acquisitions)
    }
}

/// The depot of the cached heap behind one mutex, without caches.
struct MutexSlab(Mutex<Depot>);

impl BenchAlloc for MutexSlab {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .unwrap()
            .alloc(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let block = NonNull::new(ptr).expect("free of null");
        // SAFETY: forwarded from the caller.
        unsafe { self.0.lock().unwrap().dealloc(block, layout) }.expect("slab refused a free");
    }
}

type Talc = TalcLock<spinning_top::RawSpinlock, Manual>;

impl BenchAlloc for Talc {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a non-zero layout.
        unsafe { GlobalAlloc::alloc(self, layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { GlobalAlloc::dealloc(self, ptr, layout) }
    }
}

type Buddy = LockedHeap<32>;

impl BenchAlloc for Buddy {
    #[inline]
    fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a non-zero layout.
        unsafe { GlobalAlloc::alloc(self, layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { GlobalAlloc::dealloc(self, ptr, layout) }
    }
}

/// Every contender: four byte allocators, two page allocators.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Kheap,
    MutexSlab,
    Talc,
    Buddy,
    PageCaches,
    MutexPages,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kheap => "kheap CachedHeap",
            Kind::MutexSlab => "slab + std Mutex",
            Kind::Talc => "talc TalcLock",
            Kind::Buddy => "buddy_system LockedHeap",
            Kind::PageCaches => "kheap PageCaches",
            Kind::MutexPages => "buddy pages + std Mutex",
        }
    }
}

/// One run of `kind` over `arena`, the allocator built fresh.
pub fn run(kind: Kind, arena: &Arena, workload: Workload, threads: usize, ops: u64) -> Outcome {
    assert!(
        workload.contenders().contains(&kind),
        "{} takes no part in {}",
        kind.name(),
        workload.name()
    );
    match kind {
        Kind::Kheap => {
            let heap: Box<Heap> = Box::new(CachedHeap::new("bench heap"));
            heap.init(SlabAllocator::new(arena.pages(ARENA)));
            workloads::run(&*heap, workload, threads, ops)
        }
        Kind::MutexSlab => {
            let slab = MutexSlab(Mutex::new(SlabAllocator::new(arena.pages(ARENA))));
            workloads::run(&slab, workload, threads, ops)
        }
        Kind::Talc => {
            let talc: Talc = TalcLock::new(Manual);
            // SAFETY: the arena is ours, used by this allocator alone
            // while it lives.
            let end = unsafe { talc.lock().claim(arena.start, ARENA) };
            assert!(end.is_some(), "talc could not claim the arena");
            workloads::run(&talc, workload, threads, ops)
        }
        Kind::Buddy => {
            let buddy = Buddy::empty();
            // SAFETY: as for talc.
            unsafe { buddy.lock().init(arena.start.expose_provenance(), ARENA) };
            workloads::run(&buddy, workload, threads, ops)
        }
        Kind::PageCaches | Kind::MutexPages => pages::run(kind, arena, threads, ops),
    }
}
