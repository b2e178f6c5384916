//! The page contenders behind [`BenchPages`]: kheap's `PageCaches` with
//! its per-CPU lists on, and the same buddy page allocator behind one
//! `std::sync::Mutex`, each over the arena's page region.

use std::sync::Mutex;

use kalloc::PageAllocator;
use kalloc::page::BuddyPageAllocator;
use kheap::PageCaches;

use crate::allocators::Kind;
use crate::arena::{Arena, PAGE_REGION};
use crate::common::{CPUS, PAGE, TestCpu};
use crate::timing::Outcome;
use crate::workloads;

/// What the page workload needs of a page allocator.
pub trait BenchPages: Sync {
    /// The address of a fresh single page; panics when there is none.
    fn alloc_page(&self) -> usize;

    /// Frees a page `alloc_page` returned; panics if the allocator
    /// refuses it.
    fn free_page(&self, addr: usize);

    /// Trips to the allocator's lock so far, if it counts them.
    fn lock_acquisitions(&self) -> Option<u64> {
        None
    }
}

type Pages = PageCaches<TestCpu, BuddyPageAllocator, CPUS>;

impl BenchPages for Pages {
    #[inline]
    fn alloc_page(&self) -> usize {
        self.alloc(1, PAGE).expect("page caches out of pages")
    }

    #[inline]
    fn free_page(&self, addr: usize) {
        self.free(addr, 1).expect("page caches refused a free");
    }

    fn lock_acquisitions(&self) -> Option<u64> {
        Some(self.stats().lock_acquisitions)
    }
}

/// The buddy page allocator behind one mutex, without lists.
struct MutexPages(Mutex<BuddyPageAllocator>);

impl BenchPages for MutexPages {
    #[inline]
    fn alloc_page(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .alloc_pages(1, PAGE)
            .expect("buddy out of pages")
    }

    #[inline]
    fn free_page(&self, addr: usize) {
        self.0
            .lock()
            .unwrap()
            .dealloc_pages(addr, 1)
            .expect("buddy refused a free");
    }
}

/// One run of the page contender `kind`, built fresh over the arena's
/// page region.
pub fn run(kind: Kind, arena: &Arena, threads: usize, ops: u64) -> Outcome {
    match kind {
        Kind::PageCaches => {
            let caches: Box<Pages> = Box::new(PageCaches::new("bench pages"));
            caches.init(arena.pages(PAGE_REGION));
            caches.enable_lists(arena.page_states(), arena.start.addr());
            workloads::page_churn(&*caches, threads, ops)
        }
        Kind::MutexPages => {
            let pages = MutexPages(Mutex::new(arena.pages(PAGE_REGION)));
            workloads::page_churn(&pages, threads, ops)
        }
        _ => unreachable!("{} is not a page allocator", kind.name()),
    }
}
