//! What the heap noticed under the global allocator's lock, reported once
//! the lock is released (nothing prints under an allocator lock): slabs
//! and pools taken from and given back to the page allocator (debug), a
//! magazine refill or flush (trace), a pool the page allocator refused
//! back (error).
//!
//! ```text
//!   under the heap lock: GlobalPages / grow / trim count page moves ─► HeapState::notice
//!   kheap, after unlocking: Depot::take_notice ─► Depot::report ─► report() ─► log
//!   memdebug's byte layer holds its own lock around the heap:
//!     report() stashes the notice on this hart ─► the layer unlocks ─► report_deferred()
//! ```

use crate::platform::MAX_HARTS;
use crate::sync::IrqSpinLock;
use core::sync::atomic::{AtomicBool, Ordering};
use kalloc::AllocError;

/// The heap's log target: its module's, so `log=memory:debug` covers it.
pub const TARGET: &str = "rvos::memory::heap";

/// Pages moved between the page allocator and one byte allocator: blocks
/// (slabs, pools) taken and given back, and their pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageMoves {
    pub taken: u32,
    pub taken_pages: usize,
    pub given: u32,
    pub given_pages: usize,
}

impl PageMoves {
    pub fn take(&mut self, pages: usize) {
        self.taken += 1;
        self.taken_pages += pages;
    }

    pub fn give(&mut self, pages: usize) {
        self.given += 1;
        self.given_pages += pages;
    }

    pub fn is_empty(&self) -> bool {
        self.taken == 0 && self.given == 0
    }

    fn merge(&mut self, other: PageMoves) {
        self.taken += other.taken;
        self.taken_pages += other.taken_pages;
        self.given += other.given;
        self.given_pages += other.given_pages;
    }
}

/// A pool the page allocator refused to take back: the heap keeps it
/// (nothing is lost), and the refusal is logged once the lock is released.
#[derive(Clone, Copy, Debug)]
pub struct RefusedPool {
    pub addr: usize,
    pub pages: usize,
    pub error: AllocError,
}

/// A per-hart cache refill (objects to the hart) or flush (back to the
/// slabs) of one kmalloc class.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    pub refill: bool,
    pub class: usize,
    pub objects: usize,
}

/// Everything one locked heap operation noticed.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapNotice {
    pub refused: Option<RefusedPool>,
    /// Slabs of the slab allocator; `slab_class` is the kmalloc class the
    /// operation served (`None`: a shrink of every cache).
    pub slabs: PageMoves,
    pub slab_class: Option<usize>,
    /// Pools of the pool-based allocator (`pool_allocator`: tlsf, buddy).
    pub pools: PageMoves,
    pub pool_allocator: &'static str,
    /// Traced refill or flush (only recorded while `heap` traces).
    pub batch: Option<Batch>,
    /// Pages the byte allocators hold after the operation.
    pub heap_pages: usize,
}

impl HeapNotice {
    pub fn is_empty(&self) -> bool {
        self.refused.is_none()
            && self.slabs.is_empty()
            && self.pools.is_empty()
            && self.batch.is_none()
    }

    fn merge(&mut self, other: HeapNotice) {
        self.refused = other.refused.or(self.refused);
        self.slabs.merge(other.slabs);
        if !other.slabs.is_empty() {
            self.slab_class = other.slab_class;
        }
        self.pools.merge(other.pools);
        if !other.pools.is_empty() {
            self.pool_allocator = other.pool_allocator;
        }
        self.batch = other.batch.or(self.batch);
        self.heap_pages = other.heap_pages;
    }
}

fn class_name(class: Option<usize>) -> &'static str {
    const NAMES: [&str; kalloc::byte::KMALLOC_CLASSES] = [
        "kmalloc-8",
        "kmalloc-16",
        "kmalloc-32",
        "kmalloc-64",
        "kmalloc-96",
        "kmalloc-128",
        "kmalloc-192",
        "kmalloc-256",
        "kmalloc-512",
        "kmalloc-1k",
        "kmalloc-2k",
    ];
    class
        .and_then(|class| NAMES.get(class).copied())
        .unwrap_or("?")
}

/// Whether records of the heap's trace (refills, flushes) are wanted.
/// One load while nothing traces.
pub fn tracing() -> bool {
    log::log_enabled!(target: TARGET, log::Level::Trace)
}

/// Set on a hart while memdebug's byte layer holds its lock around a heap
/// operation: the notice waits in `STASH` until the layer unlocks.
static DEFER: [AtomicBool; MAX_HARTS] = [const { AtomicBool::new(false) }; MAX_HARTS];
static STASH: [IrqSpinLock<Option<HeapNotice>>; MAX_HARTS] =
    [const { IrqSpinLock::new("heap notice stash", None) }; MAX_HARTS];

fn this_slot() -> Option<usize> {
    crate::arch::hart::try_current().map(crate::arch::hart::HartLocal::slot)
}

/// Runs `f`, a heap operation made under another allocator's lock, with
/// this hart's notices held back for [`report_deferred`].
pub fn deferring<R>(f: impl FnOnce() -> R) -> R {
    let Some(slot) = this_slot() else {
        return f();
    };
    let outer = DEFER[slot].swap(true, Ordering::Relaxed);
    let result = f();
    DEFER[slot].store(outer, Ordering::Relaxed);
    result
}

/// Logs what was held back on this hart (call once no allocator lock is
/// held).
pub fn report_deferred() {
    let Some(slot) = this_slot() else { return };
    if let Some(notice) = STASH[slot].lock().take() {
        log_notice(notice);
    }
}

/// kheap's `Depot::report`: logs the notice, or stashes it while an outer
/// allocator lock is held on this hart.
pub fn report(notice: HeapNotice) {
    if let Some(slot) = this_slot().filter(|&slot| DEFER[slot].load(Ordering::Relaxed)) {
        let mut stash = STASH[slot].lock();
        match stash.as_mut() {
            Some(held) => held.merge(notice),
            None => *stash = Some(notice),
        }
        return;
    }
    log_notice(notice);
}

fn log_notice(notice: HeapNotice) {
    if let Some(pool) = notice.refused {
        log::error!(
            target: TARGET,
            "the page allocator refused the idle pool {:#x} ({} pages): {}; the heap keeps it",
            pool.addr,
            pool.pages,
            pool.error
        );
    }
    let held = notice.heap_pages;
    let slabs = notice.slabs;
    if slabs.taken > 0 {
        log::debug!(
            target: TARGET,
            "slab grow: {} slab(s), {} page(s) for {}; heap holds {held} pages",
            slabs.taken,
            slabs.taken_pages,
            class_name(notice.slab_class)
        );
    }
    if slabs.given > 0 {
        let when = match notice.slab_class {
            Some(class) => class_name(Some(class)),
            None => "a shrink",
        };
        log::debug!(
            target: TARGET,
            "slab shrink: {} empty slab(s), {} page(s) back to the page allocator (serving {when}); \
             heap holds {held} pages",
            slabs.given,
            slabs.given_pages
        );
    }
    let (pools, name) = (notice.pools, notice.pool_allocator);
    if pools.taken > 0 {
        log::debug!(
            target: TARGET,
            "pool growth: {name} took a pool of {} page(s); heap holds {held} pages",
            pools.taken_pages
        );
    }
    if pools.given > 0 {
        log::debug!(
            target: TARGET,
            "pool return: {name} gave back {} idle pool(s), {} page(s); heap holds {held} pages",
            pools.given,
            pools.given_pages
        );
    }
    if let Some(batch) = notice.batch.filter(|batch| batch.objects > 0) {
        let (what, way) = match batch.refill {
            true => ("refill", "from the slabs to this hart's cache"),
            false => ("flush", "from this hart's cache to the slabs"),
        };
        log::trace!(
            target: TARGET,
            "{what} {}: {} objects {way}",
            class_name(Some(batch.class)),
            batch.objects
        );
    }
}
