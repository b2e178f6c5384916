//! Giving parked blocks back: this CPU's lists on demand, every CPU's
//! before a request may fail (`alloc_or_reclaim`), and the answers to
//! other CPUs' drain requests.

use kalloc::{AllocError, AllocResult, PageAllocator};

use super::lists::CpuPages;
use super::{PAGE_CACHE_ORDERS, PageCaches};
use crate::cpu::Cpu;
use crate::remote::{self, DrainReport};

impl<A: Cpu, P: PageAllocator + Send, const CPUS: usize> PageCaches<A, P, CPUS> {
    /// [`alloc`](Self::alloc), and on `NoMemory` every CPU's lists back
    /// to the allocator (waiting for the others' answers if
    /// [`Cpu::may_wait`]) and one retry: no request fails while blocks sit
    /// in a list.
    pub fn alloc_or_reclaim(&self, count: usize, align: usize) -> AllocResult<usize> {
        match self.alloc_counting(count, align, true) {
            (Err(AllocError::NoMemory), true) => {
                self.drain_everywhere(A::may_wait());
                self.alloc(count, align)
            }
            (result, _) => result,
        }
    }

    /// Empties this CPU's lists into the allocator; returns the blocks.
    pub fn drain_this_cpu(&self) -> usize {
        self.on_this_cpu(|cpu| self.drain(cpu))
    }

    fn drain(&self, cpu: &CpuPages) -> usize {
        let request = cpu.drain.pending();
        let drained = (0..PAGE_CACHE_ORDERS)
            .map(|order| self.give_back(cpu, order, usize::MAX))
            .sum();
        if let Some(ticket) = request {
            cpu.drain.answer(ticket);
        }
        drained
    }

    pub(super) fn answer_drain_request(&self, cpu: &CpuPages) {
        if cpu.drain.pending().is_some() {
            self.drain(cpu);
        }
    }

    /// Answers this CPU's pending drain request, if any (the kernel's IPI
    /// handler calls it).
    pub fn serve_drain_requests(&self) {
        self.on_this_cpu(|cpu| self.answer_drain_request(cpu));
    }

    /// Drains this CPU and asks every other CPU with parked blocks to
    /// drain, waiting up to [`Cpu::DRAIN_PATIENCE`] for their answers.
    /// Call it holding no lock another CPU could be waiting for.
    pub fn drain_all(&self) -> DrainReport {
        self.drain_everywhere(true)
    }

    fn drain_everywhere(&self, wait: bool) -> DrainReport {
        let parked = |index: usize| Some(&self.cpus[index]).filter(|cpu| cpu.parked_pages() != 0);
        remote::drain_everywhere::<A, CPUS>(
            || self.drain_this_cpu(),
            |index| parked(index).map(|cpu| &cpu.drain),
            wait,
            || self.serve_drain_requests(),
        )
    }
}
