//! The memory every allocator of the bench is built over, one at a time:
//! one arena, every page written once, and the page caches' state table.

use std::alloc::Layout;
use std::ptr;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::Relaxed;

use kalloc::BaseAllocator;
use kalloc::page::BuddyPageAllocator;

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
    /// One byte per page of the page region (leaked once: the page caches
    /// keep a `'static` table).
    states: &'static [AtomicU8],
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
        let states = Box::leak((0..PAGE_REGION / PAGE).map(|_| AtomicU8::new(0)).collect());
        Self { start, states }
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

    /// The state table of the page region, every byte zeroed (what
    /// `PageCaches::enable_lists` takes; the previous caches are gone).
    pub fn page_states(&self) -> &'static [AtomicU8] {
        for state in self.states {
            state.store(0, Relaxed);
        }
        self.states
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.start, Self::layout()) };
    }
}
