//! Getting parked objects back: a CPU drains its own magazines, asks the
//! others to drain theirs (`remote.rs`), empties the shelf, and an
//! allocation that found no memory reclaims all of it and retries once.

use core::alloc::Layout;
use core::ptr::NonNull;

use kalloc::byte::KMALLOC_CLASSES;
use kalloc::{AllocError, AllocResult};

use super::CachedHeap;
use crate::caches::CpuCache;
use crate::cpu::{Cpu, Hooks};
use crate::depot::Depot;
use crate::magazine::MAGAZINE_SLOTS;
use crate::remote::{self, DrainReport};

impl<A: Cpu, D: Depot, H: Hooks, const CPUS: usize> CachedHeap<A, D, H, CPUS> {
    /// [`alloc_or_reclaim`](Self::alloc_or_reclaim) once the fast path
    /// found nothing parked.
    #[cold]
    #[inline(never)]
    pub(super) fn alloc_reclaiming(&self, layout: Layout) -> AllocResult<NonNull<u8>> {
        match self.alloc_counting(layout, false) {
            Err(AllocError::NoMemory) => {}
            Err(error) => {
                self.on_this_cpu(|cpu| cpu.stats.note_failure());
                return Err(error);
            }
            ok => return ok,
        }
        self.drain_everywhere(A::may_wait());
        self.on_this_cpu(|cpu| {
            cpu.stats.note_retry();
            self.locked(cpu, D::shrink)
        });
        H::reclaimed();
        self.alloc(layout)
    }

    /// Memory pressure: every CPU's magazines back to the depot
    /// ([`drain_all`](Self::drain_all)), then the depot's idle memory back
    /// to its page source, then [`Hooks::reclaimed`].
    pub fn reclaim(&self) -> DrainReport {
        let report = self.drain_all();
        self.on_this_cpu(|cpu| self.locked(cpu, D::shrink));
        H::reclaimed();
        report
    }

    /// Empties this CPU's magazines into the depot (one lock); answers the
    /// drain requests made before it started. Returns the objects given.
    pub fn drain_this_cpu(&self) -> usize {
        self.on_this_cpu(|cpu| self.drain(cpu))
    }

    /// Answers this CPU's pending drain request, if any (the kernel calls
    /// it from the IPI handler that [`Cpu::kick`] triggers).
    pub fn serve_drain_requests(&self) {
        self.on_this_cpu(|cpu| self.answer_drain_request(cpu));
    }

    #[inline]
    pub(super) fn answer_drain_request(&self, cpu: &CpuCache) {
        if cpu.drain.pending().is_some() {
            self.drain(cpu);
        }
    }

    /// Drains `cpu`, this CPU's caches, with its interrupts masked.
    pub(super) fn drain(&self, cpu: &CpuCache) -> usize {
        let request = cpu.drain.pending();
        let mut drained = 0;
        if cpu.parked() != 0 {
            self.locked(cpu, |depot| {
                let mut batch = [NonNull::dangling(); MAGAZINE_SLOTS];
                for (class, cache) in cpu.classes.iter().enumerate() {
                    for magazine in cache.magazines() {
                        let count = magazine.copy_out(&mut batch);
                        // SAFETY: parked objects are given-up objects of
                        // the slab allocator, each parked once.
                        let result = unsafe { depot.free_objects(class, &batch[..count]) };
                        debug_assert!(result.is_ok(), "kheap: the depot refused parked objects");
                        magazine.clear();
                        drained += count;
                    }
                }
            });
        }
        if let Some(ticket) = request {
            cpu.drain.answer(ticket);
        }
        drained
    }

    /// Drains this CPU and asks every other CPU with parked objects to
    /// drain too ([`Cpu::kick`]), waiting up to [`Cpu::DRAIN_PATIENCE`]
    /// for their answers (answering requests to this CPU meanwhile). Call
    /// it holding no lock another CPU could be waiting for.
    pub fn drain_all(&self) -> DrainReport {
        self.drain_everywhere(true)
    }

    /// Drains this CPU and asks the others; waits for their answers only
    /// if `wait`.
    pub(super) fn drain_everywhere(&self, wait: bool) -> DrainReport {
        let parked = |index: usize| Some(&self.cpus[index]).filter(|cpu| cpu.parked() != 0);
        let mut report = remote::drain_everywhere::<A, CPUS>(
            || self.drain_this_cpu(),
            |index| parked(index).map(|cpu| &cpu.drain),
            wait,
            || self.serve_drain_requests(),
        );
        report.objects_here += self.empty_shelf();
        report
    }

    /// Gives every magazine on the shelf back to the slab allocator;
    /// returns the objects.
    pub(super) fn empty_shelf(&self) -> usize {
        self.locked_with_shelf(|depot, shelf| {
            let mut batch = [NonNull::dangling(); MAGAZINE_SLOTS];
            let mut emptied = 0;
            for class in 0..KMALLOC_CLASSES {
                loop {
                    let count = shelf.take(class, &mut batch, &self.shelf_counts);
                    if count == 0 {
                        break;
                    }
                    // SAFETY: objects on the shelf are given-up objects of
                    // the slab allocator, each parked once.
                    let result = unsafe { depot.free_objects(class, &batch[..count]) };
                    debug_assert!(result.is_ok(), "kheap: the depot refused shelved objects");
                    emptied += count;
                }
            }
            emptied
        })
        .unwrap_or(0)
    }
}
