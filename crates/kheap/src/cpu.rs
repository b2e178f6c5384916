//! What the caches need from the machine and from the kernel around them:
//! [`Cpu`] (which CPU am I, masking its interrupts, waking another) and
//! [`Hooks`] (debug layers, failure reports), both with defaults.

use core::alloc::Layout;
use core::ptr::NonNull;

use kalloc::{AllocError, AllocResult};

/// The CPU the caller runs on. Extends [`ksync::Arch`] (hart id and
/// interrupt masking, which the heap's lock also uses).
pub trait Cpu: ksync::Arch {
    /// This CPU's slot: below the heap's `CPUS`, unique among running
    /// CPUs, and stable while interrupts are masked (nothing migrates a
    /// context between CPUs then). Contexts that use one slot one after
    /// the other are ordered (the later happens after the earlier), as a
    /// hart's program order orders them: the caches of a slot are read and
    /// written with plain loads and stores.
    fn cpu_index() -> usize;

    /// A monotonic clock for the watermark's time and the drain's
    /// patience, in any unit. The default, 0, means no time.
    fn now() -> u64 {
        0
    }

    /// How long, in [`now`](Self::now) units, a drain waits for other CPUs
    /// to answer before giving up on them. The default, 0, does not wait.
    const DRAIN_PATIENCE: u64 = 0;

    /// Whether the caller may wait for other CPUs (an allocation that
    /// found no memory then waits for their drain answers). The default,
    /// `true`, suits threads; a kernel answers `false` in an interrupt
    /// handler or with interrupts masked (inside a lock another CPU may be
    /// spinning on, unable to answer).
    fn may_wait() -> bool {
        true
    }

    /// Interrupts CPU `cpu` so it answers a drain request soon (the kernel
    /// sends an IPI whose handler calls
    /// [`CachedHeap::serve_drain_requests`](crate::CachedHeap::serve_drain_requests)).
    /// The default does nothing: CPUs then answer on their own slow path,
    /// or while they wait for a drain of their own.
    fn kick(cpu: usize) {
        let _ = cpu;
    }
}

/// How a kernel decorates its global allocator. Every method has a
/// default, so `NoHooks` is a plain heap.
pub trait Hooks {
    /// The caller of `GlobalAlloc::alloc`/`dealloc`, for reports: called
    /// first thing in both (the kernel reads `ra` there). 0 by default.
    #[inline(always)]
    fn caller() -> usize {
        0
    }

    /// Whether [`alloc_override`](Self::alloc_override) or
    /// [`dealloc_override`](Self::dealloc_override) may take the next call
    /// over, read first thing on every `GlobalAlloc` call (make it one
    /// relaxed load). `false` lets the call try this CPU's caches at once,
    /// with no function call on the way, and skips the overrides if the
    /// caches serve it. The default, `true`, always asks the overrides
    /// first.
    #[inline(always)]
    fn may_override() -> bool {
        true
    }

    /// Takes an allocation over (a debug layer around the uncached heap,
    /// an injected failure): `Some` is the result, `None` lets the heap
    /// serve it.
    #[inline(always)]
    fn alloc_override(layout: Layout, caller: usize) -> Option<AllocResult<NonNull<u8>>> {
        let _ = (layout, caller);
        None
    }

    /// Takes a free over, as [`alloc_override`](Self::alloc_override).
    ///
    /// # Safety
    /// As `GlobalAlloc::dealloc`.
    #[inline(always)]
    unsafe fn dealloc_override(
        ptr: NonNull<u8>,
        layout: Layout,
        caller: usize,
    ) -> Option<AllocResult> {
        let _ = (ptr, layout, caller);
        None
    }

    /// Runs after [`CachedHeap::reclaim`](crate::CachedHeap::reclaim)
    /// drained the caches and shrank the depot (no lock held): the
    /// kernel's own memory held back elsewhere (debug quarantines) goes
    /// back too.
    fn reclaimed() {}

    /// An allocation failed after the caches were drained and the depot
    /// shrunk (already counted; no lock is held).
    fn alloc_failed(layout: Layout, error: AllocError, caller: usize) {
        let _ = (layout, error, caller);
    }

    /// A free was refused and nothing changed; `GlobalAlloc::dealloc`
    /// cannot return the error. The default panics with it.
    fn free_refused(ptr: NonNull<u8>, layout: Layout, error: AllocError, caller: usize) {
        let _ = caller;
        panic!(
            "kheap: free of {ptr:p} ({} bytes, align {}) refused: {error}",
            layout.size(),
            layout.align()
        );
    }
}

/// No decoration.
pub struct NoHooks;

impl Hooks for NoHooks {
    #[inline(always)]
    fn may_override() -> bool {
        false
    }
}
