//! The memory every allocator of the bench is built over, one at a time:
//! one arena, every page written once, and the page caches' state tables.

use std::alloc::Layout;
use std::ptr;

use kalloc::BaseAllocator;
use kalloc::page::BuddyPageAllocator;
use kheap::PageState;

use crate::common::PAGE;

/// Bytes of the arena (the byte allocators manage all of it).
pub const ARENA: usize = 256 << 20;
/// Bytes at the start of the arena the page allocators manage.
pub const PAGE_REGION: usize = 64 << 20;
/// The arena's alignment: the largest block the page lists hold, so every
/// order of the lists finds naturally aligned blocks from the start.
const ARENA_ALIGN: usize = 8 * PAGE;

pub struct Arena {
    pub start: *mut u8,
}

impl Arena {
    fn layout() -> Layout {
        Layout::from_size_align(ARENA, ARENA_ALIGN).unwrap()
    }

    /// A fresh arena, every page written once.
    pub fn new() -> Self {
        // SAFETY: a non-zero layout.
        let start = unsafe { std::alloc::alloc(Self::layout()) };
        assert!(!start.is_null(), "no memory for the arena");
        // SAFETY: the arena is `ARENA` bytes, ours.
        unsafe { ptr::write_bytes(start, 0, ARENA) };
        Self { start }
    }

    /// A buddy page allocator over the first `bytes` of the arena.
    pub fn pages(&self, bytes: usize) -> BuddyPageAllocator {
        assert!(bytes <= ARENA);
        let mut pages = BuddyPageAllocator::new();
        // SAFETY: the arena is ours and only the allocator being built
        // uses it (the previous one is gone).
        unsafe { pages.add_memory(self.start.expose_provenance(), bytes) }.unwrap();
        pages
    }

    /// A zeroed state table for the page region, what
    /// `PageCaches::enable_lists` takes (leaked: the caches keep a
    /// `'static` table; 128 KiB per page-caches instance of a run).
    pub fn page_states(&self) -> &'static [PageState] {
        Box::leak((0..PAGE_REGION / PAGE).map(|_| PageState::new()).collect())
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.start, Self::layout()) };
    }
}
