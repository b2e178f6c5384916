//! [`CachedHeap`]: a depot behind one interrupt-masking lock, per-CPU
//! magazines in front of it for the `kmalloc` classes, and `GlobalAlloc`.
//!
//! ```text
//!   alloc(layout) ── kmalloc class? ──no──► lock ─► depot.alloc
//!                         │yes
//!                         ▼  (interrupts masked on this CPU, no lock)
//!                   this CPU's magazines ──empty──► lock ─► depot.alloc_objects (a magazine's worth)
//!
//!   free(ptr, layout) ── kmalloc class? ──no──► lock ─► depot.dealloc
//!                         │yes
//!                         ▼
//!                   probe.certainly_live? ──no──► lock ─► depot.check_dealloc, then look in
//!                         │yes                            every CPU's magazines (exact verdict)
//!                         ▼  (interrupts masked, no lock)
//!                   this CPU's magazines ──full──► lock ─► depot.free_objects (a magazine's worth)
//! ```
//!
//! A block freed on another CPU than the one that allocated it goes into
//! the freeing CPU's magazines (Linux's sheaves; not snmalloc's return to
//! the owner): the slab allocator underneath has no per-CPU ownership, so
//! a remote free is an ordinary free and costs the same.

mod reclaim;
mod slow;

use core::alloc::{GlobalAlloc, Layout};
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::Relaxed;

use kalloc::byte::{
    KMALLOC_CLASSES, KMALLOC_SIZES, ObjectProbe, kmalloc_class, kmalloc_small_class, mark_live,
    mark_parked,
};
use kalloc::{AllocError, AllocResult};
use ksync::{IrqTicketLock, Once};

use crate::caches::{CpuCache, capacity_unchecked};
use crate::cpu::{Cpu, Hooks, NoHooks};
use crate::depot::Depot;
use crate::shelf::{Shelf, ShelfCounts};
use crate::stats::{HeapStats, SharedStats};

/// What the heap's lock guards: the depot, and its shelf of full
/// magazines.
struct Locked<D> {
    depot: Option<D>,
    shelf: Shelf,
}

/// A value in cache lines of its own: what one CPU writes does not share a
/// line with what every CPU's fast path reads.
#[repr(align(64))]
struct OwnLines<T>(T);

impl<T> core::ops::Deref for OwnLines<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A heap for every CPU: per-CPU magazines over a locked [`Depot`].
/// `CPUS` bounds [`Cpu::cpu_index`]. `H` decorates `GlobalAlloc`.
///
/// The lock, the shelf's counts and the shared statistics (written on
/// slow paths) each sit in lines of their own, apart from the probe and
/// the hull, which every free reads.
pub struct CachedHeap<A: Cpu, D: Depot, H: Hooks = NoHooks, const CPUS: usize = 8> {
    depot: OwnLines<IrqTicketLock<Locked<D>, A>>,
    /// Objects on the shelf per class (statistics, without the lock).
    shelf_counts: OwnLines<ShelfCounts>,
    /// Set once by `init` when the depot's slab allocator serves the
    /// `kmalloc` classes: the caches are on.
    probe: Once<ObjectProbe>,
    /// The slab allocator's hull as of the last trip to the lock (it only
    /// grows; a stale one only sends a free the slow way).
    hull_lo: AtomicUsize,
    hull_hi: AtomicUsize,
    cpus: [CpuCache; CPUS],
    shared: OwnLines<SharedStats>,
    _hooks: PhantomData<fn() -> H>,
}

impl<A: Cpu, D: Depot, H: Hooks, const CPUS: usize> CachedHeap<A, D, H, CPUS> {
    /// An empty heap: every allocation fails until [`init`](Self::init).
    pub const fn new(name: &'static str) -> Self {
        Self {
            depot: OwnLines(IrqTicketLock::new(
                name,
                Locked {
                    depot: None,
                    shelf: Shelf::new(),
                },
            )),
            shelf_counts: OwnLines(ShelfCounts::new()),
            probe: Once::new(),
            hull_lo: AtomicUsize::new(0),
            hull_hi: AtomicUsize::new(0),
            cpus: [const { CpuCache::new() }; CPUS],
            shared: OwnLines(SharedStats::new()),
            _hooks: PhantomData,
        }
    }

    /// Installs the depot; the caches are on if it has a slab allocator
    /// for the `kmalloc` classes. Panics if called twice.
    pub fn init(&self, depot: D) {
        let probe = depot.object_probe();
        let hull = depot.hull();
        let mut slot = self.depot.lock();
        assert!(slot.depot.is_none(), "kheap: CachedHeap initialised twice");
        slot.depot = Some(depot);
        self.publish_hull(hull);
        drop(slot);
        if let Some(probe) = probe {
            self.probe.call_once(|| probe);
        }
    }

    /// Whether the per-CPU caches serve the `kmalloc` classes.
    pub fn caches_enabled(&self) -> bool {
        self.probe.get().is_some()
    }

    /// Runs `f` on the depot under the heap's lock (statistics, shrinking,
    /// a kernel's own operations on its composition), not counted as a
    /// trip to the lock. `None` before `init`. `f` must not allocate
    /// through this heap. Under the lock no object moves between the
    /// depot and a magazine, so the magazines' contents (`stats`) read
    /// inside `f` are a subset of what the depot counts as handed out.
    pub fn with_depot<R>(&self, f: impl FnOnce(&mut D) -> R) -> Option<R> {
        self.locked_uncounted(f)
    }

    /// Stores the hull only when it grew: every free reads it, so a store
    /// of an unchanged value would still take its line from every CPU.
    fn publish_hull(&self, (lo, hi): (usize, usize)) {
        if self.hull_lo.load(Relaxed) != lo {
            self.hull_lo.store(lo, Relaxed);
        }
        if self.hull_hi.load(Relaxed) != hi {
            self.hull_hi.store(hi, Relaxed);
        }
    }

    /// Runs `f` on this CPU's caches with its interrupts masked.
    #[inline(always)]
    fn on_this_cpu<R>(&self, f: impl FnOnce(&CpuCache) -> R) -> R {
        let saved = A::irq_save_disable();
        let result = f(self.this_cpu());
        A::irq_restore(saved);
        result
    }

    /// Runs `f` on the depot under the heap's lock on behalf of `cpu`
    /// (counted), then reports what the depot noticed, after unlocking.
    /// `None` before `init`.
    fn locked<R>(&self, cpu: &CpuCache, f: impl FnOnce(&mut D) -> R) -> Option<R> {
        cpu.stats.note_locked();
        self.locked_uncounted(f)
    }

    /// [`locked`](Self::locked) for the diagnostics: not counted.
    fn locked_uncounted<R>(&self, f: impl FnOnce(&mut D) -> R) -> Option<R> {
        self.locked_with_shelf(|depot, _| f(depot))
    }

    /// [`locked`](Self::locked) with the shelf of full magazines too (not
    /// counted: the callers count).
    fn locked_with_shelf<R>(&self, f: impl FnOnce(&mut D, &mut Shelf) -> R) -> Option<R> {
        let mut guard = self.depot.lock();
        let Locked { depot, shelf } = &mut *guard;
        let depot = depot.as_mut()?;
        let result = f(depot, shelf);
        let notice = depot.take_notice();
        drop(guard);
        if let Some(notice) = notice {
            D::report(notice);
        }
        Some(result)
    }

    /// Allocates a block for `layout` (non-zero size) through this CPU's
    /// caches when its class has one. Counted (a failure too); no retry
    /// after draining (see [`alloc_or_reclaim`](Self::alloc_or_reclaim)).
    #[inline]
    pub fn alloc(&self, layout: Layout) -> AllocResult<NonNull<u8>> {
        match self.alloc_parked(layout) {
            Some(object) => Ok(object),
            None => self.alloc_counting(layout, true),
        }
    }

    /// [`alloc`](Self::alloc), and on `NoMemory` a reclaim and one
    /// retry: no allocation fails while objects sit in a cache. The
    /// reclaim drains this CPU, asks every other CPU with parked objects
    /// to drain, waits for their answers if [`Cpu::may_wait`] (else they
    /// answer soon, for the next request), shrinks the depot and calls
    /// [`Hooks::reclaimed`]. Counted in [`HeapStats::reclaim_retries`].
    #[inline]
    pub fn alloc_or_reclaim(&self, layout: Layout) -> AllocResult<NonNull<u8>> {
        match self.alloc_parked(layout) {
            Some(object) => Ok(object),
            None => self.alloc_reclaiming(layout),
        }
    }

    /// The fast path: an object parked in this CPU's magazines for a
    /// request a class serves (1 B to 2 KiB, aligned to at most 2 KiB),
    /// or `None`.
    /// With the caches off the magazines stay empty, so this needs no
    /// other test.
    #[inline(always)]
    fn alloc_parked(&self, layout: Layout) -> Option<NonNull<u8>> {
        let class = kmalloc_small_class(layout)?;
        let saved = A::irq_save_disable();
        let cpu = self.this_cpu();
        let object = cpu.class(class).pop();
        if let Some(object) = object {
            // SAFETY: a parked object is a free slab object the caches
            // own; it is handed out now.
            unsafe { mark_live(object) };
            cpu.stats.note_alloc(layout.size(), &self.shared, A::now);
        }
        A::irq_restore(saved);
        object
    }

    /// This CPU's caches; the caller masked its interrupts.
    #[inline(always)]
    fn this_cpu(&self) -> &CpuCache {
        let index = A::cpu_index();
        debug_assert!(index < CPUS, "Cpu::cpu_index {index} out of {CPUS} slots");
        // SAFETY: `Cpu::cpu_index` is below `CPUS` by contract (checked in
        // debug builds).
        unsafe { self.cpus.get_unchecked(index) }
    }

    /// Frees a block [`alloc`](Self::alloc) (or `GlobalAlloc`) returned
    /// for `layout`: into this CPU's caches when the probe vouches for it,
    /// else settled under the lock. A bad free (an address never handed
    /// out, a wrong layout, a block already free, including one parked in
    /// any CPU's magazine) is refused with an error and changes nothing.
    ///
    /// # Safety
    /// As [`Depot::dealloc`]: if `ptr` lies in memory the heap manages, it
    /// is a block it returned (possibly freed since), and, if the free
    /// succeeds, no reference into it is used again.
    #[inline]
    pub unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        // SAFETY: forwarded from the caller.
        if unsafe { self.free_parking(ptr, layout) } {
            return Ok(());
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.dealloc_slow(ptr, layout) }
    }

    /// The fast path: parks `ptr` in this CPU's magazines if it is a
    /// common request's object the probe vouches for and a magazine has
    /// room; `false` leaves the free to [`dealloc_slow`](Self::dealloc_slow).
    ///
    /// # Safety
    /// As [`dealloc`](Self::dealloc).
    #[inline(always)]
    unsafe fn free_parking(&self, ptr: NonNull<u8>, layout: Layout) -> bool {
        let Some(class) = kmalloc_small_class(layout) else {
            return false;
        };
        let saved = A::irq_save_disable();
        let cpu = self.this_cpu();
        let hull = (self.hull_lo.load(Relaxed), self.hull_hi.load(Relaxed));
        // SAFETY: this CPU's flag for `self.probe`, interrupts masked.
        let parked = match unsafe { cpu.probe_seen.get(&self.probe) } {
            // SAFETY: the hull came from the depot's slab allocator, whose
            // probe this is; `ptr` is as the caller promises.
            Some(probe) => unsafe { probe.certainly_live(ptr, class, hull) },
            None => false,
        } && cpu.class(class).push(ptr, capacity_unchecked(class));
        if parked {
            // SAFETY: a live object of the slab allocator (vouched),
            // which its owner gives up.
            unsafe { mark_parked(ptr) };
            cpu.stats.note_free(layout.size(), &self.shared);
        }
        A::irq_restore(saved);
        parked
    }

    /// The verdict [`dealloc`](Self::dealloc) would give, without freeing:
    /// `Ok` for a live block of this layout.
    ///
    /// # Safety
    /// As [`dealloc`](Self::dealloc).
    pub unsafe fn check_dealloc(&self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        self.locked_with_shelf(|depot, shelf| {
            // SAFETY: forwarded from the caller.
            unsafe { depot.check_dealloc(ptr, layout) }?;
            match kmalloc_class(layout) {
                Some(class)
                    if self.caches_enabled()
                        && (self.is_parked(class, ptr) || shelf.contains(class, ptr)) =>
                {
                    Err(AllocError::DoubleFree)
                }
                _ => Ok(()),
            }
        })
        .unwrap_or(Err(AllocError::OutOfRange))
    }

    /// Allocates from the depot itself, under the lock, bypassing the
    /// caches and the counters: the backend of a debug layer that
    /// [`Hooks::alloc_override`] puts in front (`GlobalAlloc` counts the
    /// override's result).
    pub fn depot_alloc(&self, layout: Layout) -> AllocResult<NonNull<u8>> {
        self.on_this_cpu(|cpu| self.locked(cpu, |depot| depot.alloc(layout)))
            .unwrap_or(Err(AllocError::NoMemory))
    }

    /// Frees a block of [`depot_alloc`](Self::depot_alloc).
    ///
    /// # Safety
    /// As [`dealloc`](Self::dealloc).
    pub unsafe fn depot_dealloc(&self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        // SAFETY: forwarded from the caller.
        self.on_this_cpu(|cpu| self.locked(cpu, |depot| unsafe { depot.dealloc(ptr, layout) }))
            .unwrap_or(Err(AllocError::OutOfRange))
    }

    /// The counters summed over the CPUs, with what sits in the caches.
    pub fn stats(&self) -> HeapStats {
        let mut stats = HeapStats::default();
        for cpu in &self.cpus {
            cpu.stats.add_frees_to(&mut stats);
        }
        for cpu in &self.cpus {
            cpu.stats.add_to(&mut stats);
            for (class, cache) in cpu.classes.iter().enumerate() {
                stats.cached_objects[class] += cache.len();
            }
        }
        for (class, (parked, size)) in stats
            .cached_objects
            .iter_mut()
            .zip(KMALLOC_SIZES)
            .enumerate()
        {
            *parked += self.shelf_counts.get(class);
            stats.cached_bytes += *parked * size;
        }
        self.shared.add_to(&mut stats);
        let live = stats.live_bytes();
        self.shared.saw_live(live, A::now);
        stats.peak_bytes = stats.peak_bytes.max(live);
        stats
    }

    /// Objects on the shelf of full magazines (shared by the CPUs).
    pub fn shelved(&self) -> usize {
        (0..KMALLOC_CLASSES)
            .map(|class| self.shelf_counts.get(class))
            .sum()
    }

    /// Objects parked in each CPU's magazines (index: CPU slot).
    pub fn parked_per_cpu(&self) -> [usize; CPUS] {
        core::array::from_fn(|index| self.cpus[index].parked())
    }

    /// Objects parked in one CPU's magazines, per class.
    pub fn parked_on(&self, cpu: usize) -> [usize; kalloc::byte::KMALLOC_CLASSES] {
        core::array::from_fn(|class| self.cpus[cpu].classes[class].len())
    }
}

// SAFETY: blocks come from the depot (directly, or through the magazines,
// which hold only objects the depot handed out and nobody uses) or from
// the hooks' override, which promises the same; they are disjoint and fit
// their layout, and a free goes back the way the block came.
unsafe impl<A: Cpu, D: Depot, H: Hooks, const CPUS: usize> GlobalAlloc
    for CachedHeap<A, D, H, CPUS>
{
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let caller = H::caller();
        let fast_path_tried = !H::may_override();
        if fast_path_tried && let Some(object) = self.alloc_parked(layout) {
            return object.as_ptr();
        }
        self.global_alloc_slow(layout, caller, fast_path_tried)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let caller = H::caller();
        let fast_path_tried = !H::may_override();
        if fast_path_tried
            && let Some(block) = NonNull::new(ptr)
            // SAFETY: the caller frees a block `alloc` returned for
            // `layout`.
            && unsafe { self.free_parking(block, layout) }
        {
            return;
        }
        // SAFETY: as above.
        unsafe { self.global_dealloc_slow(ptr, layout, caller, fast_path_tried) }
    }
}
