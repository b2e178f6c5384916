//! Shared helpers of the page-allocator tests: host "physical memory", the
//! three allocators behind one test interface, and invariant checks.

#![allow(dead_code)] // each test crate uses a different subset

pub mod model;

use std::alloc::{Layout, alloc, dealloc};
use std::ops::Range;

use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator, LinearPageAllocator};
use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{AllocResult, BaseAllocator, PageAllocator};

pub const PAGE: usize = 4096;

/// An aligned host buffer standing in for physical memory, freed on drop.
/// Its address is exposed so allocators may turn addresses back into
/// pointers.
pub struct Arena {
    ptr: *mut u8,
    layout: Layout,
}

impl Arena {
    pub fn new(pages: usize, align: usize) -> Self {
        let layout = Layout::from_size_align(pages * PAGE, align).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc(layout) };
        assert!(!ptr.is_null(), "host allocation failed");
        Self { ptr, layout }
    }

    /// The address `offset` bytes in, with the arena's provenance exposed.
    pub fn addr(&self, offset: usize) -> usize {
        assert!(offset <= self.layout.size());
        self.ptr.wrapping_add(offset).expose_provenance()
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// One of the page allocators under test.
pub trait Subject: PageAllocator + PageStatsSource + Sized {
    const NAME: &'static str;
    /// The largest block in pages, if the algorithm has one.
    const MAX_BLOCK: Option<usize>;
    /// Whether a refused free gives exactly the model's error. A layer
    /// that keeps its own records may say `NotAllocated` for what the model
    /// calls `DoubleFree` (pages never handed out) and the reverse (pages
    /// it still remembers freeing); `OutOfRange` stays exact.
    const EXACT_REFUSALS: bool = true;
    fn fresh() -> Self;
    fn managed(&self) -> Vec<Range<usize>>;
}

macro_rules! subject {
    ($ty:ty, $name:literal, $max:expr) => {
        impl Subject for $ty {
            const NAME: &'static str = $name;
            const MAX_BLOCK: Option<usize> = $max;
            fn fresh() -> Self {
                <$ty>::default()
            }
            fn managed(&self) -> Vec<Range<usize>> {
                self.regions().collect()
            }
        }
    };
}

/// A buddy allocator with a small largest order, so tests reach the top.
pub type SmallBuddy = BuddyPageAllocator<4096, 4>;

subject!(BuddyPageAllocator, "buddy", Some(1 << 18));
subject!(BitmapPageAllocator, "bitmap", None);
subject!(LinearPageAllocator, "linear", None);

impl Subject for SmallBuddy {
    const NAME: &'static str = "buddy(max_order=4)";
    const MAX_BLOCK: Option<usize> = Some(16);
    fn fresh() -> Self {
        SmallBuddy::with_config()
    }
    fn managed(&self) -> Vec<Range<usize>> {
        self.regions().collect()
    }
}

/// Adds `[start, start + size)` to `a`.
pub fn add<A: BaseAllocator>(a: &mut A, start: usize, size: usize) -> AllocResult {
    // SAFETY: every caller passes a range inside a live `Arena` that no
    // other allocator uses, with exposed provenance.
    unsafe { a.add_memory(start, size) }
}

/// Checks the statistics agree with the counters and with themselves.
pub fn check_stats<A: Subject>(a: &A) -> PageStats {
    let s = a.page_stats();
    assert_eq!(s.total_pages, a.total_pages(), "{}", A::NAME);
    assert_eq!(s.free_pages, a.available_pages(), "{}", A::NAME);
    let from_blocks: usize = s.free_blocks.iter().enumerate().map(|(k, n)| n << k).sum();
    assert_eq!(
        from_blocks,
        s.free_pages,
        "{}: blocks vs free pages",
        A::NAME
    );
    if let Some(k) = s.highest_free_order() {
        assert!(s.largest_free_run >= 1 << k, "{}", A::NAME);
    }
    assert!(s.largest_free_run <= s.free_pages);
    s
}
