//! The debug layer for page allocators: wraps any [`PageAllocator`] and
//! adds a per-block FREE/ALLOCATED state (so double and invalid frees are
//! refused with a report), page poisoning with a quarantine, call-site
//! tracking, counters and leak summaries.
//!
//! Pages are addressed by the integers the inner allocator deals in; the
//! layer touches their contents only to poison and check them, through the
//! addresses the caller handed to `add_memory` (which must therefore be
//! addresses the layer can dereference, e.g. the kernel's linear map).

use core::mem::MaybeUninit;

use kalloc::{AllocError, AllocResult, BaseAllocator, PageAllocator};

use crate::leak::{Checkpoint, SiteSummary, tally};
use crate::ledger::{Counters, Entry, Ledger, RecordSlot, State};
use crate::pattern::{self, ALLOC_POISON, PAGE_FREE_POISON};
use crate::{
    Action, BlockInfo, CallSite, DebugConfig, DebugFlags, Report, ReportKind, ReportSink, Unit,
};

/// A page allocator wrapped with debug checks. With no flags set it only
/// forwards and counts.
pub struct DebugPageAllocator<'t, P: PageAllocator, S: ReportSink> {
    name: &'static str,
    inner: P,
    config: DebugConfig,
    sink: S,
    ledger: Ledger<'t>,
    /// Pages held back in quarantine.
    held_pages: usize,
}

impl<'t, P: PageAllocator, S: ReportSink> DebugPageAllocator<'t, P, S> {
    /// Wraps `inner`; `table` and `history` as for
    /// [`DebugByteAllocator::new`](crate::DebugByteAllocator::new).
    pub fn new(
        name: &'static str,
        inner: P,
        config: DebugConfig,
        sink: S,
        table: &'t mut [MaybeUninit<RecordSlot>],
        history: &'t mut [MaybeUninit<usize>],
        clock: fn() -> u64,
    ) -> Self {
        DebugPageAllocator {
            name,
            inner,
            config,
            sink,
            ledger: Ledger::new(table, history, clock, P::PAGE_SIZE, 0),
            held_pages: 0,
        }
    }

    /// The wrapped page allocator.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The checks this layer runs.
    pub fn flags(&self) -> DebugFlags {
        self.config.flags
    }

    /// The layer's counters (kept whatever the flags).
    pub fn counters(&self) -> Counters {
        self.ledger.counters
    }

    /// Where the layer's reports go.
    pub fn sink(&mut self) -> &mut S {
        &mut self.sink
    }

    fn debugging(&self) -> bool {
        !self.config.flags.is_empty()
    }

    fn report(
        &mut self,
        kind: ReportKind,
        addr: usize,
        site: CallSite,
        block: Option<BlockInfo>,
        action: Action,
    ) {
        let report = Report {
            layer: self.name,
            unit: Unit::Pages,
            kind,
            addr,
            site,
            block,
            action,
        };
        self.sink.report(&report);
    }

    fn bytes(count: usize) -> usize {
        count * P::PAGE_SIZE
    }

    /// Allocates `count` pages aligned to `align`, recording `site`.
    pub fn alloc_pages_from(
        &mut self,
        count: usize,
        align: usize,
        site: CallSite,
    ) -> AllocResult<usize> {
        self.alloc_with(count, align, site, |inner| inner.alloc_pages(count, align))
    }

    /// Allocates the `count` pages at `addr`, recording `site`.
    pub fn alloc_pages_at_from(
        &mut self,
        addr: usize,
        count: usize,
        align: usize,
        site: CallSite,
    ) -> AllocResult<usize> {
        self.alloc_with(count, align, site, |inner| {
            inner.alloc_pages_at(addr, count, align)
        })
    }

    fn alloc_with(
        &mut self,
        count: usize,
        align: usize,
        site: CallSite,
        mut allocate: impl FnMut(&mut P) -> AllocResult<usize>,
    ) -> AllocResult<usize> {
        if !self.debugging() {
            let result = allocate(&mut self.inner);
            self.count_plain_alloc(count, result.is_ok());
            return result;
        }
        while !self.ledger.has_room() {
            match self.ledger.pop_oldest() {
                Some(key) => self.release(key),
                None => {
                    let capacity = self.ledger.capacity();
                    self.report(
                        ReportKind::TableFull { capacity },
                        0,
                        site,
                        None,
                        Action::Failed,
                    );
                    self.ledger.counters.failures += 1;
                    return Err(AllocError::NoMemory);
                }
            }
        }
        let addr = match allocate(&mut self.inner) {
            Ok(addr) => addr,
            Err(AllocError::NoMemory) if self.held_pages > 0 => {
                self.flush_quarantine();
                allocate(&mut self.inner)
                    .inspect_err(|&e| self.alloc_failed(count, align, site, e))?
            }
            Err(e) => {
                self.alloc_failed(count, align, site, e);
                return Err(e);
            }
        };
        if self.config.flags.contains(DebugFlags::ALLOC_POISON) {
            // SAFETY: the inner allocator just handed these pages out; they
            // lie in memory the caller of `add_memory` made dereferenceable.
            unsafe {
                pattern::fill(
                    core::ptr::with_exposed_provenance_mut(addr),
                    Self::bytes(count),
                    ALLOC_POISON,
                )
            };
        }
        let tracked =
            self.config.flags.contains(DebugFlags::TRACK) && count >= self.config.track_threshold;
        let site = if tracked { site } else { CallSite::Unknown };
        let now = self.ledger.now();
        let ptr = core::ptr::with_exposed_provenance_mut(addr);
        self.ledger.record_alloc(ptr, count, align, site, now);
        Ok(addr)
    }

    fn count_plain_alloc(&mut self, count: usize, ok: bool) {
        let counters = &mut self.ledger.counters;
        if !ok {
            counters.failures += 1;
            return;
        }
        counters.allocs += 1;
        counters.live_blocks += 1;
        counters.live_size += count;
        if counters.live_size > counters.peak_size {
            counters.peak_size = counters.live_size;
            counters.peak_time = (self.ledger.clock)();
        }
    }

    fn alloc_failed(&mut self, count: usize, align: usize, site: CallSite, error: AllocError) {
        self.ledger.counters.failures += 1;
        if error == AllocError::NoMemory {
            let kind = ReportKind::OutOfMemory {
                size: count,
                align,
                used: self.inner.used_pages(),
                available: self.inner.available_pages(),
            };
            self.report(kind, 0, site, None, Action::Failed);
        }
    }

    /// Frees `count` pages at `addr`, recording `site` as who freed them.
    pub fn dealloc_pages_from(&mut self, addr: usize, count: usize, site: CallSite) -> AllocResult {
        if !self.debugging() {
            let result = self.inner.dealloc_pages(addr, count);
            let counters = &mut self.ledger.counters;
            match result {
                Ok(()) => {
                    counters.frees += 1;
                    counters.live_blocks -= 1;
                    counters.live_size -= count;
                }
                Err(_) => counters.refused_frees += 1,
            }
            return result;
        }
        let (slot, entry) = match self.ledger.check_free(addr, count, None) {
            Ok(found) => found,
            Err(refusal) => {
                self.ledger.counters.refused_frees += 1;
                self.report(refusal.kind, addr, site, refusal.block, Action::Refused);
                return Err(refusal.error);
            }
        };
        let poison = self.config.flags.contains(DebugFlags::POISON);
        if poison {
            // SAFETY: the block is live and being freed by its owner; its
            // pages are dereferenceable (see the module doc).
            unsafe { pattern::fill(entry.ptr, Self::bytes(count), PAGE_FREE_POISON) };
            self.held_pages += count;
        } else {
            self.inner.dealloc_pages(addr, count)?;
        }
        let now = self.ledger.now();
        let site = if entry.record.alloc_site().is_known() {
            site
        } else {
            CallSite::Unknown
        };
        if let Some(old) = self.ledger.record_free(slot, site, now, poison) {
            self.release(old);
        }
        while self.held_pages > self.config.quarantine_limit {
            match self.ledger.pop_oldest() {
                Some(old) => self.release(old),
                None => break,
            }
        }
        Ok(())
    }

    /// Checks a quarantined block's poison; reports writes after free.
    fn check_poison(&mut self, entry: &Entry) -> bool {
        let bytes = Self::bytes(entry.record.size());
        // SAFETY: the block is held in quarantine by this layer.
        let Some(offset) = (unsafe { pattern::first_mismatch(entry.ptr, bytes, PAGE_FREE_POISON) })
        else {
            return true;
        };
        // SAFETY: as above.
        let found = unsafe { pattern::found_bytes(entry.ptr, bytes, offset) };
        let kind = ReportKind::WriteAfterFree {
            offset,
            expected: PAGE_FREE_POISON,
            found,
        };
        self.report(
            kind,
            entry.key(),
            CallSite::Unknown,
            Some(entry.info()),
            Action::Repaired,
        );
        // SAFETY: as above. Restoring the poison reports each write after
        // free once, not again at every later check.
        unsafe { pattern::fill(entry.ptr, bytes, PAGE_FREE_POISON) };
        false
    }

    fn release(&mut self, addr: usize) {
        let Some(entry) = self.ledger.take_freed(addr) else {
            return;
        };
        if entry.record.state == (State::Freed { held: true }) {
            self.check_poison(&entry);
            let count = entry.record.size();
            let result = self.inner.dealloc_pages(addr, count);
            debug_assert!(
                result.is_ok(),
                "inner allocator refused a quarantined block: {result:?}"
            );
            self.held_pages -= count;
        }
    }

    /// Gives every quarantined block back (checking each).
    pub fn flush_quarantine(&mut self) {
        while let Some(addr) = self.ledger.pop_oldest() {
            self.release(addr);
        }
    }

    /// Checks the poison of every quarantined block; returns how many were
    /// written after being freed (each is reported).
    pub fn validate(&mut self) -> usize {
        let mut damaged = 0;
        let mut slot = 0;
        while let Some((next, ptr, record)) = self.ledger.table.next_from(slot) {
            let entry = Entry { ptr, record };
            if record.state == (State::Freed { held: true }) && !self.check_poison(&entry) {
                damaged += 1;
            }
            slot = next + 1;
        }
        damaged
    }

    /// Whether the page at `addr` is inside a live block (the per-page
    /// ALLOCATED state), and that block's history.
    pub fn block_containing(&self, addr: usize) -> Option<BlockInfo> {
        self.ledger
            .live()
            .find(|entry| {
                addr >= entry.key() && addr - entry.key() < self.ledger.extent(&entry.record)
            })
            .map(|entry| entry.info())
    }

    /// See [`DebugByteAllocator::checkpoint`](crate::DebugByteAllocator::checkpoint).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.ledger.next_seq())
    }

    /// Live blocks allocated since `checkpoint`, grouped by call site
    /// (sizes in pages).
    pub fn outstanding_since(
        &self,
        checkpoint: Checkpoint,
        out: &mut [SiteSummary],
    ) -> (usize, usize) {
        tally(self.ledger.live().map(|e| e.record), checkpoint.0, out)
    }
}

impl<P: PageAllocator, S: ReportSink> BaseAllocator for DebugPageAllocator<'_, P, S> {
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.init(start, size)? };
        self.ledger.add_region(start, size);
        Ok(())
    }

    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.add_memory(start, size)? };
        self.ledger.add_region(start, size);
        Ok(())
    }
}

impl<P: PageAllocator, S: ReportSink> PageAllocator for DebugPageAllocator<'_, P, S> {
    const PAGE_SIZE: usize = P::PAGE_SIZE;

    #[track_caller]
    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        self.alloc_pages_from(count, align, CallSite::caller())
    }

    #[track_caller]
    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        self.alloc_pages_at_from(addr, count, align, CallSite::caller())
    }

    #[track_caller]
    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        self.dealloc_pages_from(addr, count, CallSite::caller())
    }

    fn total_pages(&self) -> usize {
        self.inner.total_pages()
    }

    fn used_pages(&self) -> usize {
        self.inner.used_pages() - self.held_pages
    }
}
