//! The heap's slow paths: what the fast paths (`heap.rs`) leave, each one
//! trip to the lock: a refill (from the shelf, else the slab allocator), a
//! flush (to the shelf, else the slab allocator), a free the probe does not
//! vouch for (the exact verdict), and requests the caches do not hold; and
//! `GlobalAlloc`'s calls past its fast path (the hooks' overrides).

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::Ordering::Relaxed;

use kalloc::byte::{kmalloc_class, mark_live, mark_parked};
use kalloc::{AllocError, AllocResult};

use super::CachedHeap;
use crate::caches::{CpuCache, magazine_capacity};
use crate::cpu::{Cpu, Hooks};
use crate::depot::Depot;
use crate::magazine::MAGAZINE_SLOTS;

impl<A: Cpu, D: Depot, H: Hooks, const CPUS: usize> CachedHeap<A, D, H, CPUS> {
    /// `GlobalAlloc::alloc` past the fast path: the overrides (unless
    /// `fast_path_tried`: the hooks said they take nothing over), then the
    /// heap. Out of line, so the fast path saves no registers for it.
    #[inline(never)]
    pub(super) fn global_alloc_slow(
        &self,
        layout: Layout,
        caller: usize,
        fast_path_tried: bool,
    ) -> *mut u8 {
        let result = if fast_path_tried {
            self.alloc_reclaiming(layout)
        } else {
            match H::alloc_override(layout, caller) {
                Some(result) => {
                    self.on_this_cpu(|cpu| self.count_alloc(cpu, layout, &result, true));
                    result
                }
                None => self.alloc_or_reclaim(layout),
            }
        };
        match result {
            Ok(block) => block.as_ptr(),
            Err(error) => {
                H::alloc_failed(layout, error, caller);
                core::ptr::null_mut()
            }
        }
    }

    /// `GlobalAlloc::dealloc` past the fast path, as
    /// [`global_alloc_slow`](Self::global_alloc_slow): with
    /// `fast_path_tried`, straight to the free's slow path.
    ///
    /// # Safety
    /// As `GlobalAlloc::dealloc`.
    #[inline(never)]
    pub(super) unsafe fn global_dealloc_slow(
        &self,
        ptr: *mut u8,
        layout: Layout,
        caller: usize,
        fast_path_tried: bool,
    ) {
        let block = NonNull::new(ptr).expect("GlobalAlloc::dealloc of null");
        let result = if fast_path_tried {
            // SAFETY: the caller frees a block `alloc` returned for `layout`.
            unsafe { self.dealloc_slow(block, layout) }
        } else {
            // SAFETY: as above.
            match unsafe { H::dealloc_override(block, layout, caller) } {
                Some(result) => {
                    if result.is_ok() {
                        self.on_this_cpu(|cpu| cpu.stats.note_free(layout.size(), &self.shared));
                    }
                    result
                }
                // SAFETY: as above.
                None => unsafe { CachedHeap::dealloc(self, block, layout) },
            }
        };
        if let Err(error) = result {
            H::free_refused(block, layout, error, caller);
        }
    }

    /// Every allocation the fast path does not serve, counting a failure
    /// only if `count_failure`.
    #[cold]
    #[inline(never)]
    pub(super) fn alloc_counting(
        &self,
        layout: Layout,
        count_failure: bool,
    ) -> AllocResult<NonNull<u8>> {
        let (true, Some(class)) = (self.caches_enabled(), kmalloc_class(layout)) else {
            return self.on_this_cpu(|cpu| {
                let result = self
                    .locked(cpu, |depot| depot.alloc(layout))
                    .unwrap_or(Err(AllocError::NoMemory));
                self.count_alloc(cpu, layout, &result, count_failure);
                result
            });
        };
        self.on_this_cpu(|cpu| {
            let result = match cpu.classes[class].pop() {
                Some(object) => {
                    // SAFETY: a parked object is a free slab object the
                    // caches own; it is handed out now.
                    unsafe { mark_live(object) };
                    Ok(object)
                }
                None => self.refill(cpu, class),
            };
            self.count_alloc(cpu, layout, &result, count_failure);
            result
        })
    }

    #[inline(always)]
    pub(super) fn count_alloc(
        &self,
        cpu: &CpuCache,
        layout: Layout,
        result: &AllocResult<NonNull<u8>>,
        count_failure: bool,
    ) {
        match result {
            Ok(_) => cpu.stats.note_alloc(layout.size(), &self.shared, A::now),
            Err(_) if count_failure => cpu.stats.note_failure(),
            Err(_) => {}
        }
    }

    /// Both magazines of `class` are empty: fills the loaded one from the
    /// depot (one lock) and returns one more object.
    #[cold]
    #[inline(never)]
    pub(super) fn refill(&self, cpu: &CpuCache, class: usize) -> AllocResult<NonNull<u8>> {
        self.answer_drain_request(cpu);
        let mut batch = [NonNull::dangling(); MAGAZINE_SLOTS];
        let magazine = cpu.classes[class].loaded_magazine();
        cpu.stats.note_locked();
        let taken = self
            .locked_with_shelf(|depot, shelf| {
                // A full magazine from the shelf (parked objects, marked
                // already), else a batch from the slab allocator.
                let mut taken = shelf.take(class, &mut batch, &self.shelf_counts);
                if taken == 0 {
                    taken = depot.alloc_objects(class, &mut batch[..magazine_capacity(class)])?;
                    self.publish_hull(depot.hull());
                    for &object in &batch[1..taken] {
                        // SAFETY: fresh objects of the slab allocator,
                        // owned by the caches from now on.
                        unsafe { mark_parked(object) };
                    }
                }
                // Parked under the lock: an object is on the shelf, in the
                // depot or in a magazine whenever another CPU looks
                // (`free_settled`).
                for &object in &batch[1..taken] {
                    magazine.push(object);
                }
                Ok(taken)
            })
            .unwrap_or(Err(AllocError::NoMemory))?;
        debug_assert!(taken >= 1);
        // SAFETY: handed out now: a parked object from the shelf, or a
        // fresh one (whose first word is 0 already).
        unsafe { mark_live(batch[0]) };
        cpu.stats.note_refill();
        Ok(batch[0])
    }

    /// Every free the fast path does not take: a full pair of magazines
    /// (flush), a free the probe does not vouch for (settled under the
    /// lock), or a layout the caches do not hold.
    ///
    /// # Safety
    /// As [`dealloc`](Self::dealloc).
    #[cold]
    #[inline(never)]
    pub(super) unsafe fn dealloc_slow(&self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let (Some(probe), Some(class)) = (self.probe.get(), kmalloc_class(layout)) else {
            return self.on_this_cpu(|cpu| {
                // SAFETY: forwarded from the caller.
                self.locked(cpu, |depot| unsafe { depot.dealloc(ptr, layout) })
                    .unwrap_or(Err(AllocError::OutOfRange))?;
                cpu.stats.note_free(layout.size(), &self.shared);
                Ok(())
            });
        };
        let hull = (self.hull_lo.load(Relaxed), self.hull_hi.load(Relaxed));
        // SAFETY: the hull came from the depot's slab allocator, whose
        // probe this is; `ptr` is as the caller promises.
        let vouched = unsafe { probe.certainly_live(ptr, class, hull) };
        self.on_this_cpu(|cpu| {
            if vouched {
                // SAFETY: a live object of the slab allocator (vouched),
                // which its owner gives up.
                unsafe { mark_parked(ptr) };
                if !cpu.classes[class].push(ptr, magazine_capacity(class)) {
                    self.flush(cpu, class, ptr);
                }
            } else {
                // SAFETY: forwarded from the caller.
                unsafe { self.free_settled(cpu, ptr, layout, class) }?;
            }
            cpu.stats.note_free(layout.size(), &self.shared);
            Ok(())
        })
    }

    /// Both magazines of `class` are full: gives the previous one back to
    /// the depot (one lock), then parks `object` in it.
    #[cold]
    #[inline(never)]
    pub(super) fn flush(&self, cpu: &CpuCache, class: usize, object: NonNull<u8>) {
        self.answer_drain_request(cpu);
        let cache = &cpu.classes[class];
        let previous = cache.previous_magazine();
        let mut batch = [NonNull::dangling(); MAGAZINE_SLOTS];
        let count = previous.copy_out(&mut batch);
        cpu.stats.note_locked();
        self.locked_with_shelf(|depot, shelf| {
            // The magazine goes on the shelf, parked still; with the shelf
            // full, its objects go back to the slab allocator.
            if !shelf.put(class, &batch[..count], &self.shelf_counts) {
                // SAFETY: parked objects are given-up objects of the slab
                // allocator, each parked once.
                let result = unsafe { depot.free_objects(class, &batch[..count]) };
                debug_assert!(
                    result.is_ok(),
                    "kheap: the depot refused parked objects: {result:?}"
                );
            }
            // Under the lock, as in `refill`.
            previous.clear();
        });
        cache.swap_after_flush();
        let pushed = cache.push(object, magazine_capacity(class));
        debug_assert!(pushed, "an emptied magazine takes the object");
        cpu.stats.note_flush();
    }

    /// The exact verdict on a free the probe did not vouch for, and the
    /// free itself if the block is live. Under the lock no object moves
    /// between the depot and a magazine, so "on the depot's lists or in
    /// some CPU's magazine" is exact.
    ///
    /// # Safety
    /// As [`dealloc`](Self::dealloc).
    #[cold]
    #[inline(never)]
    pub(super) unsafe fn free_settled(
        &self,
        cpu: &CpuCache,
        ptr: NonNull<u8>,
        layout: Layout,
        class: usize,
    ) -> AllocResult {
        cpu.stats.note_locked();
        self.locked_with_shelf(|depot, shelf| {
            // SAFETY: forwarded from the caller.
            unsafe { depot.check_dealloc(ptr, layout) }?;
            if self.is_parked(class, ptr) || shelf.contains(class, ptr) {
                return Err(AllocError::DoubleFree);
            }
            // A live block whose first word only looked like a link, or
            // one the published hull did not cover yet: the depot frees it.
            self.publish_hull(depot.hull());
            // SAFETY: forwarded from the caller; checked live just above.
            unsafe { depot.dealloc(ptr, layout) }
        })
        .unwrap_or(Err(AllocError::OutOfRange))
    }

    /// Whether `object` is parked in any CPU's magazines of `class`.
    pub(super) fn is_parked(&self, class: usize, object: NonNull<u8>) -> bool {
        self.cpus
            .iter()
            .any(|cpu| cpu.classes[class].contains(object))
    }
}
