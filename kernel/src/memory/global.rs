//! `#[global_allocator]`: Rust's `alloc` (Vec, Box, BTreeMap, String) on
//! every hart and in interrupt handlers. It is [`HEAP`], a
//! `kheap::CachedHeap`: per-hart magazines for the kmalloc classes (8 B to
//! 2 KiB, under `alloc=slab`) in front of the heap `alloc=` composes
//! (`memory::heap`), behind one interrupt-masking lock. An allocation or a
//! free that its hart's magazines can serve takes no lock and touches no
//! other hart's cache lines; the lock is taken once per magazine's worth.
//!
//! ```text
//!   GlobalAlloc ─► KernelHooks: injected failure? memdebug layer? ─yes─► layer ─► depot_alloc ─► heap
//!                               └─no─► this hart's magazines ─empty/full─► lock ─► heap (HeapState)
//! ```
//!
//! With `memdebug=` on, the debug layer takes every request over and
//! serves it from the heap under the lock, bypassing the magazines (as
//! Linux bypasses its per-CPU caches under `slub_debug`), so its reports
//! stay exact.
//!
//! A failed allocation returns null, so `try_reserve` and [`try_box`] see
//! an error they can handle; before failing, the heap drains every hart's
//! magazines and shrinks (a hart is asked by IPI and answers from its
//! software-interrupt handler). Each failure is recorded; if nobody
//! handles it, Rust's alloc error path panics and the panic handler calls
//! [`print_failure_diagnosis`].

mod block;
mod failure;

#[cfg(not(feature = "ktest"))]
pub use self::block::FreedBlock;
pub use self::block::{Block, try_box};
pub use self::failure::print_failure_diagnosis;
use super::heap::{self, HeapKind, HeapState};
use super::hooks;
use crate::platform::MAX_HARTS;
use crate::sync::KernelArch;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use kalloc::{AllocError, AllocResult};
use kheap::{CachedHeap, DrainReport, HeapStats};

/// The kernel's global allocator.
#[global_allocator]
pub static HEAP: CachedHeap<KernelArch, HeapState, KernelHooks, MAX_HARTS> =
    CachedHeap::new("heap");

/// Installs the heap `alloc=` picked; before this every allocation fails.
pub fn init(kind: HeapKind) {
    HEAP.init(HeapState::new(kind));
    log::info!(
        target: heap::notice::TARGET,
        "{} heap, growing from the page allocator{}",
        kind.name(),
        if HEAP.caches_enabled() {
            "; per-hart caches for the kmalloc classes"
        } else {
            ""
        }
    );
}

/// The kernel's decorations of the global allocator: the caller's
/// address for reports, fault injection and the `memdebug=` byte layer
/// ([`hooks`]), and the failure record.
pub struct KernelHooks;

impl kheap::Hooks for KernelHooks {
    #[inline(always)]
    fn caller() -> usize {
        crate::arch::cpu::return_address()
    }

    /// Fault injection armed, or the `memdebug=` byte layer installed.
    #[inline(always)]
    fn may_override() -> bool {
        hooks::FAIL_HEAP_ALLOC_ARMED.load(Ordering::Relaxed) || hooks::BYTE_LAYER.is_set()
    }

    #[inline(always)]
    fn alloc_override(layout: Layout, caller: usize) -> Option<AllocResult<NonNull<u8>>> {
        if fails_on_purpose(layout) {
            return Some(Err(AllocError::NoMemory));
        }
        hooks::BYTE_LAYER
            .get()
            .map(|layer| (layer.alloc)(layout, caller))
    }

    #[inline(always)]
    unsafe fn dealloc_override(
        ptr: NonNull<u8>,
        layout: Layout,
        caller: usize,
    ) -> Option<AllocResult> {
        let layer = hooks::BYTE_LAYER.get()?;
        // SAFETY: forwarded from `GlobalAlloc::dealloc`'s caller. The layer
        // reports and refuses a block it did not hand out.
        Some(unsafe { (layer.dealloc)(ptr, layout, caller) })
    }

    fn reclaimed() {
        if let Some(checks) = hooks::CHECKS.get() {
            (checks.reclaim)();
        }
    }

    #[cold]
    fn alloc_failed(layout: Layout, error: AllocError, caller: usize) {
        failure::remember_failure(layout, error);
        if let Some(checks) = hooks::CHECKS.get() {
            (checks.allocation_failed)(layout, error, caller);
        }
    }

    /// Without the debug layer a refused free is a kernel bug with nobody
    /// to report it: stop. With it, the layer has reported the free and
    /// the kernel goes on.
    fn free_refused(ptr: NonNull<u8>, layout: Layout, error: AllocError, _caller: usize) {
        if hooks::BYTE_LAYER.get().is_none() {
            panic!(
                "kernel heap: free of {ptr:p} ({} bytes, align {}) refused: {error}",
                layout.size(),
                layout.align()
            );
        }
    }
}

/// Whether the checks fail this heap request on purpose (fault injection).
fn fails_on_purpose(layout: Layout) -> bool {
    hooks::FAIL_HEAP_ALLOC_ARMED.load(Ordering::Relaxed)
        && !heap::goes_to_pages(layout)
        && hooks::CHECKS
            .get()
            .is_some_and(|checks| (checks.fail_heap_alloc)(layout))
}

/// Allocates from the heap itself, under the lock, bypassing the per-hart
/// caches and the counters: the backend of the `memdebug=` byte layer.
/// The layer holds its own lock around this, so the heap's notice waits
/// for `heap::notice::report_deferred`.
pub fn depot_alloc(layout: Layout) -> AllocResult<NonNull<u8>> {
    heap::notice::deferring(|| HEAP.depot_alloc(layout))
}

/// Frees a block of [`depot_alloc`]; a block the heap does not hold as
/// live with that layout is refused and nothing changes.
///
/// # Safety
/// If `ptr` is a live block of the heap, the caller owns it and no longer
/// uses it.
pub unsafe fn depot_dealloc(ptr: NonNull<u8>, layout: Layout) -> AllocResult {
    // SAFETY: forwarded from the caller.
    heap::notice::deferring(|| unsafe { HEAP.depot_dealloc(ptr, layout) })
}

/// The verdict a free of `ptr` with `layout` would get from the global
/// allocator, without freeing: `Ok` if it is a live block of this layout
/// (a second free of a block since handed out again), else the error the
/// free would be refused with (a block parked in any hart's cache is a
/// double free). With `memdebug=` on, the refusal is reported like a
/// refused free.
///
/// # Safety
/// `ptr` was returned by the global allocator (it may have been freed
/// since).
#[track_caller]
unsafe fn check_free(ptr: NonNull<u8>, layout: Layout) -> Result<(), AllocError> {
    if let Some(layer) = hooks::BYTE_LAYER.get() {
        return (layer.check_free)(ptr, layout, memdebug::CallSite::caller());
    }
    // SAFETY: forwarded from the caller.
    unsafe { HEAP.check_dealloc(ptr, layout) }
}

/// The global allocator's counters, summed over the harts, with what
/// sits in their caches.
pub fn stats() -> HeapStats {
    HEAP.stats()
}

/// Bytes the byte allocators hand out to their users right now (objects
/// parked in the per-hart caches are free, not handed out).
pub fn used_bytes() -> usize {
    HEAP.with_depot(|heap| heap.used_bytes().saturating_sub(HEAP.stats().cached_bytes))
        .unwrap_or(0)
}

/// The largest block the byte allocator could hand out without growing.
pub fn largest_free_block() -> usize {
    HEAP.with_depot(|heap| heap.largest_free_block())
        .unwrap_or(0)
}

/// Calls `f` with each slab cache's figures (`alloc=slab` only), objects
/// parked in the per-hart caches counted as free, under the heap lock:
/// `f` must not allocate.
pub fn for_each_slab_cache(mut f: impl FnMut(&kalloc::byte::SlabInfo)) {
    HEAP.with_depot(|heap| {
        let parked = HEAP.stats().cached_objects;
        for (index, mut info) in heap.slab_caches().enumerate() {
            // The kmalloc classes are the slab allocator's first caches.
            if let Some(parked) = parked.get(index) {
                info.active_objects = info.active_objects.saturating_sub(*parked);
            }
            f(&info);
        }
    });
}

/// Memory failure: retires the slab holding linear-map address `addr`, if
/// one does (`memdiag::badmem`), after every hart gave its parked objects
/// back (none of the slab's objects may be handed out from a cache).
pub fn retire_slab_at(addr: usize) -> bool {
    let drained = HEAP.drain_all();
    if drained.cpus_answered != drained.cpus_asked {
        log::warn!(
            "kernel heap: {} of {} harts did not drain their caches before a slab retirement",
            drained.cpus_asked - drained.cpus_answered,
            drained.cpus_asked
        );
    }
    HEAP.with_depot(|heap| heap.retire_slab_at(addr))
        .unwrap_or(false)
}

/// Memory pressure: every hart's caches back to the heap, then every
/// empty slab, idle TLSF pool and the empty large-block table back to the
/// page allocator.
pub fn shrink() -> DrainReport {
    HEAP.reclaim()
}

/// Gives the heap's idle memory back to the page allocator (empty slabs,
/// idle pools), without touching the caches.
pub fn shrink_heap() {
    HEAP.with_depot(kheap::Depot::shrink);
}

/// Empties every hart's caches into the heap (asking the others by IPI).
pub fn drain_caches() -> DrainReport {
    HEAP.drain_all()
}

/// The software-interrupt service: answers a drain request to this hart.
pub fn serve_drain_requests() {
    HEAP.serve_drain_requests();
}

#[cfg(feature = "ktest")]
mod tests;
