//! Where the diagnostics plug into the allocation paths. Each hook is set
//! once at boot (by `memdiag`) and read with one load on every call; unset,
//! the paths run undecorated. The core calls these, and never names the
//! code behind them, so the diagnostics can be read, changed or left out
//! without touching the core.
//!
//! ```text
//!   GlobalAlloc ──► BYTE_LAYER set? ──yes──► memdebug byte layer ──► heap
//!                                   └─no───────────────────────────► heap
//!   pages::alloc_for ─► CHECKS.fail_page_alloc? ─► PAGE_LAYER set? ─► page layer ─► allocator
//!   pages::free_plain ─► this hart's list, or (PAGES_FILTERED) ─► CHECKS.free_pages ─► allocator
//!   a failed global allocation ─► CHECKS.allocation_failed (the OOM report)
//! ```

use super::page_allocator::BootPageAllocator;
use crate::sync::BootCell;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use kalloc::{AllocError, AllocResult};
use memdebug::CallSite;

/// A debug layer around the heap: `GlobalAlloc` goes through it when set.
/// Each function gets `caller`, the return address `GlobalAlloc` saw (the
/// code that allocates, for reports); the global allocator keeps the
/// counters and reports a failed allocation itself.
pub struct ByteLayer {
    pub alloc: fn(layout: Layout, caller: usize) -> AllocResult<NonNull<u8>>,
    /// Frees a block; a bad free is reported and refused with an error,
    /// the block (if any) unchanged.
    ///
    /// The function's contract is `GlobalAlloc::dealloc`'s.
    pub dealloc: unsafe fn(block: NonNull<u8>, layout: Layout, caller: usize) -> AllocResult,
    /// The verdict `dealloc` would give, without freeing (a refusal is
    /// reported as a refused free is).
    pub check_free: fn(NonNull<u8>, Layout, CallSite) -> AllocResult,
}

/// A debug layer around the page allocator: `pages::alloc`/`free` go
/// through it when set.
pub struct PageLayer {
    pub alloc: fn(count: usize, align: usize, site: CallSite) -> AllocResult<usize>,
    pub free: fn(addr: usize, count: usize, site: CallSite) -> AllocResult,
}

/// Checks on every allocation path, whatever the layers.
pub struct Checks {
    /// Whether to fail this page request on purpose (fault injection);
    /// `name` says on whose behalf (`heap`, `pagetable`, ...).
    pub fail_page_alloc: fn(name: &str, count: usize) -> bool,
    /// Whether to fail this heap request on purpose.
    pub fail_heap_alloc: fn(Layout) -> bool,
    /// Frees pages in the page allocator, its lock held: may refuse, or
    /// keep back, pages taken out of service.
    pub free_pages: fn(&mut BootPageAllocator, addr: usize, count: usize) -> AllocResult,
    /// A global allocation failed (already counted): report it (no
    /// allocator lock is held); `caller` as for [`ByteLayer`].
    pub allocation_failed: fn(layout: Layout, error: AllocError, caller: usize),
    /// The global allocator drained its caches and shrank the heap
    /// (memory pressure, or before failing): give back what the
    /// diagnostics hold (quarantines). No lock is held.
    pub reclaim: fn(),
}

/// Raised while fault injection may fail a page (heap) request, so the
/// paths call [`Checks::fail_page_alloc`] ([`Checks::fail_heap_alloc`])
/// only then: unarmed, injection costs them one relaxed load.
pub static FAIL_PAGE_ALLOC_ARMED: AtomicBool = AtomicBool::new(false);
/// Raised once a page is out of service (`memdiag::badmem`): page frees
/// then skip the harts' lists and meet [`Checks::free_pages`] at once.
pub static PAGES_FILTERED: AtomicBool = AtomicBool::new(false);
pub static FAIL_HEAP_ALLOC_ARMED: AtomicBool = AtomicBool::new(false);

pub static BYTE_LAYER: Hook<ByteLayer> = Hook::new();
pub static PAGE_LAYER: Hook<PageLayer> = Hook::new();
pub static CHECKS: Hook<Checks> = Hook::new();

/// A hook set once: a `BootCell` behind a relaxed flag, so a path whose
/// hook is unset pays one plain load (an acquire load is a fence on
/// RISC-V, and QEMU turns every fence into a full host barrier).
pub struct Hook<T> {
    set: AtomicBool,
    cell: BootCell<T>,
}

impl<T: Send + Sync> Hook<T> {
    pub const fn new() -> Self {
        Self {
            set: AtomicBool::new(false),
            cell: BootCell::new(),
        }
    }

    /// Installs the hook; panics if it was installed before.
    pub fn set(&self, hook: T) {
        self.cell.set(hook);
        self.set.store(true, Ordering::Release);
    }

    /// Whether the hook is installed (one relaxed load: a hint for a fast
    /// path, which still reads the hook through `get`).
    #[inline(always)]
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// The hook, once installed.
    #[inline(always)]
    pub fn get(&self) -> Option<&T> {
        if !self.set.load(Ordering::Relaxed) {
            return None;
        }
        self.cell.get()
    }
}
