//! [`PageCaches`]: a page allocator behind one interrupt-masking lock,
//! with per-CPU lists of free blocks of orders 0 to 3 in front (Linux's
//! per-CPU page lists).
//!
//! ```text
//!   alloc(count, align) ── count 2^k, k <= 3, naturally aligned? ──no──► lock ─► allocator
//!                               │yes (interrupts masked, no lock)
//!                               ▼
//!                         this CPU's list k ──empty──► lock ─► a batch of 2^k blocks
//!
//!   free(addr, count) ── state[addr] == LIVE(k)? ──no──► lock ─► allocator (its verdict)
//!                               │yes
//!                               ▼  PARKED(k), no lock
//!                         this CPU's list k ──full──► lock ─► half the list back
//! ```
//!
//! One byte per page (a table of [`PageState`]s the caller provides, each
//! byte alone in 8 so that a cache line covers 8 pages) records what the
//! caches know of the block starting there: nothing (0: free in the
//! allocator, or handed out without the caches), handed out by a cache
//! (`LIVE | k`), or parked in a CPU's list (`PARKED | k`). Only the CPU
//! that holds the block writes it, with a plain store, so the fast path
//! has no read-modify-write; it makes the double-free check exact without
//! writing into the pages (a free of a parked block is `DoubleFree`) and
//! lets a free of a block the caches did not hand out fall through to the
//! allocator, which judges it. A block freed on another CPU joins that
//! CPU's list.
//!
//! No allocation fails while blocks sit in a list: on `NoMemory` the
//! caller ([`PageCaches::alloc_or_reclaim`]) drains every CPU's lists and
//! retries once (`pages/reclaim.rs`). A CPU's lists, counters and the
//! state table are in `pages/lists.rs`.

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicU8, AtomicUsize};

use kalloc::{AllocError, AllocResult, PageAllocator};
use ksync::{IrqTicketLock, Once};

pub use self::lists::PageState;
use self::lists::{CpuPages, LIVE, PARKED, StateTable};
use crate::cpu::Cpu;
use crate::stats::bump;

mod lists;
mod reclaim;

/// Orders the per-CPU lists hold: blocks of 1, 2, 4 and 8 pages.
pub const PAGE_CACHE_ORDERS: usize = 4;

/// The most blocks a CPU's list of `order` holds (its high watermark): 64
/// pages' worth of single pages, 16 pages' worth of each larger order, so
/// a CPU parks at most 112 pages. A refill takes half, a full list gives
/// half back.
pub const fn page_list_capacity(order: usize) -> usize {
    match order {
        0 => 64,
        _ => 16 >> order,
    }
}

/// Page-operation counters summed over the CPUs, with what sits in the
/// lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Requests served, from the lists or not.
    pub allocs: u64,
    /// Frees taken, into the lists or not.
    pub frees: u64,
    /// Requests that failed (after the drain).
    pub failures: u64,
    /// The most pages the allocator had handed out (parked blocks
    /// included) at any trip to the lock.
    pub peak_pages: usize,
    /// The [`Cpu::now`] of `peak_pages`.
    pub peak_at: u64,
    /// Times a CPU took the page allocator's lock for the lists (refill,
    /// give back, a request or free the lists do not serve).
    pub lock_acquisitions: u64,
    /// Blocks parked per order.
    pub parked_blocks: [usize; PAGE_CACHE_ORDERS],
    /// The pages the parked blocks hold.
    pub parked_pages: usize,
}

/// A page allocator for every CPU: per-CPU lists over a locked `P`.
pub struct PageCaches<A: Cpu, P: PageAllocator, const CPUS: usize> {
    allocator: IrqTicketLock<Option<P>, A>,
    table: Once<StateTable>,
    cpus: [CpuPages; CPUS],
    /// Written under the lock only, when the allocator's use rises.
    peak_pages: AtomicUsize,
    peak_at: core::sync::atomic::AtomicU64,
}

impl<A: Cpu, P: PageAllocator + Send, const CPUS: usize> PageCaches<A, P, CPUS> {
    /// No allocator yet: every request fails until [`init`](Self::init).
    pub const fn new(name: &'static str) -> Self {
        Self {
            allocator: IrqTicketLock::new(name, None),
            table: Once::new(),
            cpus: [const { CpuPages::new() }; CPUS],
            peak_pages: AtomicUsize::new(0),
            peak_at: core::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Installs the allocator (the lists stay off). Panics if called twice.
    pub fn init(&self, allocator: P) {
        let mut slot = self.allocator.lock();
        assert!(slot.is_none(), "kheap: PageCaches initialised twice");
        *slot = Some(allocator);
    }

    /// Turns the lists on for the pages `[base, base + states.len() *
    /// P::PAGE_SIZE)`: `states` holds one zeroed entry per page (the
    /// table of the module doc). Blocks outside never enter a list. Panics
    /// if called twice.
    pub fn enable_lists(&self, states: &'static [PageState], base: usize) {
        assert!(
            !self.table.is_completed(),
            "kheap: page lists enabled twice"
        );
        self.table.call_once(|| StateTable { states, base });
    }

    /// Whether the per-CPU lists are on.
    pub fn lists_enabled(&self) -> bool {
        self.table.is_completed()
    }

    /// Runs `f` on the allocator under its lock (not counted); `None`
    /// before `init`. `f` must not allocate pages through `self`.
    pub fn with<R>(&self, f: impl FnOnce(&mut P) -> R) -> Option<R> {
        self.allocator.lock().as_mut().map(f)
    }

    /// Runs `f` on the allocator under its lock for `cpu` (counted), and
    /// raises the watermark if the allocator's use rose above it.
    fn locked<R>(&self, cpu: &CpuPages, f: impl FnOnce(&mut P) -> R) -> Option<R> {
        bump(&cpu.locked);
        self.with(|allocator| {
            let result = f(allocator);
            let used = allocator.used_pages();
            if used > self.peak_pages.load(Relaxed) {
                self.peak_pages.store(used, Relaxed);
                self.peak_at.store(A::now(), Relaxed);
            }
            result
        })
    }

    #[inline(always)]
    fn on_this_cpu<R>(&self, f: impl FnOnce(&CpuPages) -> R) -> R {
        let saved = A::irq_save_disable();
        let result = f(&self.cpus[A::cpu_index()]);
        A::irq_restore(saved);
        result
    }

    /// The order a request for `count` pages aligned to `align` takes
    /// from a list, if one serves it: a power of two up to 8 pages,
    /// aligned to its size or less.
    #[inline(always)]
    fn cached_order(count: usize, align: usize) -> Option<usize> {
        let order = count.trailing_zeros() as usize;
        let fits =
            count.is_power_of_two() && order < PAGE_CACHE_ORDERS && align <= P::PAGE_SIZE << order;
        fits.then_some(order)
    }

    /// The state byte of the block at `addr`, if `table` covers it.
    #[inline(always)]
    fn state_in(table: &StateTable, addr: usize) -> Option<&AtomicU8> {
        let offset = addr.checked_sub(table.base)?;
        if offset % P::PAGE_SIZE != 0 {
            return None;
        }
        table.states.get(offset / P::PAGE_SIZE).map(PageState::get)
    }

    /// Allocates `count` contiguous pages aligned to `align` bytes: from
    /// this CPU's list when the request is one it serves, else from the
    /// allocator under its lock. No retry (see
    /// [`alloc_or_reclaim`](Self::alloc_or_reclaim)).
    pub fn alloc(&self, count: usize, align: usize) -> AllocResult<usize> {
        self.alloc_counting(count, align, false).0
    }

    /// [`alloc`](Self::alloc), and whether the lists are on. With
    /// `reclaiming`, a `NoMemory` while they are on is not counted: the
    /// caller drains every list and tries again.
    fn alloc_counting(
        &self,
        count: usize,
        align: usize,
        reclaiming: bool,
    ) -> (AllocResult<usize>, bool) {
        let order = Self::cached_order(count, align);
        self.on_this_cpu(|cpu| {
            // SAFETY: this CPU's flag for `self.table`, interrupts masked.
            let table = unsafe { cpu.table_seen.get(&self.table) };
            let result = match order.zip(table) {
                None => self
                    .locked(cpu, |allocator| allocator.alloc_pages(count, align))
                    .unwrap_or(Err(AllocError::NoMemory)),
                Some((order, table)) => match cpu.lists[order].pop() {
                    Some(addr) => Ok(addr),
                    None => self.refill(cpu, order, table),
                }
                .inspect(|&addr| {
                    if let Some(state) = Self::state_in(table, addr) {
                        state.store(LIVE | order as u8, Relaxed);
                    }
                }),
            };
            let retry_to_come = reclaiming && table.is_some();
            match result {
                Ok(_) => bump(&cpu.allocs),
                Err(_) if !retry_to_come => bump(&cpu.failures),
                Err(_) => {}
            }
            (result, table.is_some())
        })
    }

    /// This CPU's list of `order` is empty: takes half a list's worth from
    /// the allocator (one lock) and returns one block.
    #[cold]
    #[inline(never)]
    fn refill(&self, cpu: &CpuPages, order: usize, table: &StateTable) -> AllocResult<usize> {
        self.answer_drain_request(cpu);
        let want = page_list_capacity(order) / 2;
        let (count, align) = (1 << order, P::PAGE_SIZE << order);
        let list = &cpu.lists[order];
        self.locked(cpu, |allocator| {
            let first = allocator.alloc_pages(count, align)?;
            for _ in 1..want {
                let Ok(addr) = allocator.alloc_pages(count, align) else {
                    break;
                };
                match Self::state_in(table, addr) {
                    Some(state) => {
                        state.store(PARKED | order as u8, Relaxed);
                        list.push(addr);
                    }
                    // Outside the table: it cannot be parked.
                    None => {
                        let given_back = allocator.dealloc_pages(addr, count);
                        debug_assert!(given_back.is_ok());
                        break;
                    }
                }
            }
            Ok(first)
        })
        .unwrap_or(Err(AllocError::NoMemory))
    }

    /// Frees `count` pages at `addr`: into this CPU's list if the caches
    /// handed the block out with that size, else the allocator judges it
    /// under its lock. A second free of a parked block is `DoubleFree`; on
    /// any error nothing changes.
    pub fn free(&self, addr: usize, count: usize) -> AllocResult {
        let order = Self::cached_order(count, P::PAGE_SIZE);
        self.on_this_cpu(|cpu| {
            // SAFETY: this CPU's flag for `self.table`, interrupts masked.
            let table = order.and_then(|_| unsafe { cpu.table_seen.get(&self.table) });
            let state = table.and_then(|table| Self::state_in(table, addr));
            if let (Some(order), Some(state)) = (order, state) {
                let now = state.load(Relaxed);
                if now == PARKED | order as u8 {
                    return Err(AllocError::DoubleFree);
                }
                if now == LIVE | order as u8 {
                    state.store(PARKED | order as u8, Relaxed);
                    let list = &cpu.lists[order];
                    if list.len() == page_list_capacity(order) {
                        self.give_back(cpu, order, page_list_capacity(order) / 2);
                    }
                    list.push(addr);
                    bump(&cpu.frees);
                    return Ok(());
                }
            }
            self.free_locked_on(cpu, addr, count)
                .inspect(|()| bump(&cpu.frees))
        })
    }

    /// Frees `count` pages at `addr` through the allocator under its
    /// lock, never into a list (the kernel's path while pages are being
    /// taken out of service, whose frees must meet its filter).
    pub fn free_locked(&self, addr: usize, count: usize) -> AllocResult {
        self.on_this_cpu(|cpu| {
            self.free_locked_on(cpu, addr, count)
                .inspect(|()| bump(&cpu.frees))
        })
    }

    fn free_locked_on(&self, cpu: &CpuPages, addr: usize, count: usize) -> AllocResult {
        // SAFETY: this CPU's flag for `self.table`, interrupts masked (the
        // callers run on this CPU).
        let table = unsafe { cpu.table_seen.get(&self.table) };
        self.locked(cpu, |allocator| {
            allocator.dealloc_pages(addr, count)?;
            // A block the lists handed out is now free in the allocator:
            // its state must not vouch for it any more.
            if let Some(state) = table.and_then(|table| Self::state_in(table, addr)) {
                state.store(0, Relaxed);
            }
            Ok(())
        })
        .unwrap_or(Err(AllocError::OutOfRange))
    }

    /// Gives `blocks` blocks of this CPU's list of `order` back to the
    /// allocator (one lock).
    #[cold]
    #[inline(never)]
    fn give_back(&self, cpu: &CpuPages, order: usize, blocks: usize) -> usize {
        let list = &cpu.lists[order];
        let blocks = blocks.min(list.len());
        if blocks == 0 {
            return 0;
        }
        // SAFETY: this CPU's flag for `self.table`, interrupts masked (the
        // callers run on this CPU).
        let table = unsafe { cpu.table_seen.get(&self.table) };
        self.locked(cpu, |allocator| {
            for _ in 0..blocks {
                let Some(addr) = list.pop() else { break };
                if let Some(state) = table.and_then(|table| Self::state_in(table, addr)) {
                    state.store(0, Relaxed);
                }
                let freed = allocator.dealloc_pages(addr, 1 << order);
                debug_assert!(freed.is_ok(), "kheap: the allocator refused a parked block");
            }
        });
        blocks
    }

    /// The counters summed over the CPUs, with what sits in the lists.
    pub fn stats(&self) -> PageStats {
        let mut stats = PageStats {
            peak_pages: self.peak_pages.load(Relaxed),
            peak_at: self.peak_at.load(Relaxed),
            ..PageStats::default()
        };
        // Every CPU's frees before any CPU's requests, as `CachedHeap::stats`
        // does: where stores are seen in order, a block taken on one CPU and
        // freed on another while this reads is never counted as freed but
        // not taken.
        for cpu in &self.cpus {
            stats.frees += cpu.frees.load(Relaxed) as u64;
        }
        for cpu in &self.cpus {
            stats.allocs += cpu.allocs.load(Relaxed) as u64;
            stats.failures += cpu.failures.load(Relaxed) as u64;
            stats.lock_acquisitions += cpu.locked.load(Relaxed) as u64;
            for (order, list) in cpu.lists.iter().enumerate() {
                stats.parked_blocks[order] += list.len();
            }
            stats.parked_pages += cpu.parked_pages();
        }
        stats
    }

    /// Pages parked in every CPU's lists.
    pub fn parked_pages(&self) -> usize {
        self.cpus.iter().map(CpuPages::parked_pages).sum()
    }

    /// Pages parked in each CPU's lists (index: CPU slot).
    pub fn parked_per_cpu(&self) -> [usize; CPUS] {
        core::array::from_fn(|index| self.cpus[index].parked_pages())
    }
}
