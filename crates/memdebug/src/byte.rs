//! The debug layer for byte allocators: wraps any [`ByteAllocator`] and
//! adds per-object state, red zones, poisoning with a quarantine, call-site
//! tracking, counters and leak summaries.
//!
//! An object with red zones, as the inner allocator sees it:
//!
//! ```text
//!   inner ptr           user ptr (aligned as requested)
//!   │                   │
//!   ▼                   ▼
//!   [ front red zone    | object (size bytes)  | rear red zone ]
//!     >= redzone bytes,                          redzone bytes
//!     a multiple of the
//!     object's alignment
//!   live: 0xcc          | data (0x5a if         | 0xcc
//!                       |  alloc-poisoned)      |
//!   freed: 0xbb         | 0x6b                  | 0xbb   (held in quarantine)
//! ```

use core::alloc::Layout;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use kalloc::{AllocError, AllocResult, ByteAllocator};

use crate::leak::{Checkpoint, SiteSummary, tally};
use crate::ledger::{Counters, Entry, Ledger, RecordSlot, State};
use crate::pattern::{self, ALLOC_POISON, REDZONE_ACTIVE};
use crate::{
    Action, BlockInfo, CallSite, DebugConfig, DebugFlags, Report, ReportKind, ReportSink, Unit,
};

mod traits;
mod zones;

/// Where an object lies in the block the inner allocator handed out.
struct Geometry {
    /// The inner block's start.
    inner: *mut u8,
    /// Bytes of front red zone (the object's offset in the inner block).
    front: usize,
    /// The object's size.
    size: usize,
    /// The inner block's size (front zone, object, rear zone).
    inner_size: usize,
}

/// A byte allocator wrapped with debug checks. With no flags set it only
/// forwards and counts.
pub struct DebugByteAllocator<'t, A: ByteAllocator, S: ReportSink> {
    name: &'static str,
    inner: A,
    config: DebugConfig,
    sink: S,
    ledger: Ledger<'t>,
    /// Inner bytes held back in quarantine.
    held_bytes: usize,
}

// SAFETY: the only non-`Send` fields are the inner pointers in the ledger's
// records, which point into memory owned by `inner`; moving the layer to
// another thread moves that ownership with it.
unsafe impl<A: ByteAllocator + Send, S: ReportSink + Send> Send for DebugByteAllocator<'_, A, S> {}

impl<'t, A: ByteAllocator, S: ReportSink> DebugByteAllocator<'t, A, S> {
    /// Wraps `inner`. `table` holds one record per live or recently freed
    /// object (its capacity bounds how many objects can be live), `history`
    /// the freed objects remembered for double-free reports and quarantine;
    /// `clock` timestamps allocations.
    pub fn new(
        name: &'static str,
        inner: A,
        config: DebugConfig,
        sink: S,
        table: &'t mut [MaybeUninit<RecordSlot>],
        history: &'t mut [MaybeUninit<usize>],
        clock: fn() -> u64,
    ) -> Self {
        let mut config = config;
        config.redzone = config.redzone.next_multiple_of(8);
        let rear_zone = if config.flags.contains(DebugFlags::REDZONE) {
            config.redzone
        } else {
            0
        };
        DebugByteAllocator {
            name,
            inner,
            config,
            sink,
            ledger: Ledger::new(table, history, clock, 1, rear_zone),
            held_bytes: 0,
        }
    }

    /// The wrapped byte allocator.
    pub fn inner(&self) -> &A {
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

    /// How many objects can be live at once.
    pub fn capacity(&self) -> usize {
        self.ledger.capacity()
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
            unit: Unit::Bytes,
            kind,
            addr,
            site,
            block,
            action,
        };
        self.sink.report(&report);
    }

    fn redzones(&self) -> bool {
        self.config.flags.contains(DebugFlags::REDZONE)
    }

    /// The front red zone of an object aligned to `align`: at least the
    /// configured zone, a multiple of the alignment so the object stays
    /// aligned (0 without red zones).
    fn front_zone(&self, align: usize) -> usize {
        if self.redzones() {
            self.config.redzone.next_multiple_of(align)
        } else {
            0
        }
    }

    /// The inner layout for `layout` and the offset of the object in it.
    fn inner_layout(&self, layout: Layout) -> AllocResult<(Layout, usize)> {
        if !self.redzones() {
            return Ok((layout, 0));
        }
        let zone = self.config.redzone;
        let front = self.front_zone(layout.align());
        let size = front
            .checked_add(layout.size())
            .and_then(|s| s.checked_add(zone))
            .ok_or(AllocError::InvalidParam)?;
        let inner = Layout::from_size_align(size, layout.align().max(8))
            .map_err(|_| AllocError::InvalidParam)?;
        Ok((inner, front))
    }

    /// Allocates with `site` as the call site to record.
    #[inline]
    pub fn alloc_at(&mut self, layout: Layout, site: CallSite) -> AllocResult<NonNull<u8>> {
        if !self.debugging() {
            return self.alloc_plain(layout);
        }
        self.alloc_checked(layout, site)
    }

    /// The allocation path with checks on. Kept out of line so the `off`
    /// path, inlined into callers, is one branch and a few counters.
    #[inline(never)]
    fn alloc_checked(&mut self, layout: Layout, site: CallSite) -> AllocResult<NonNull<u8>> {
        let (inner_layout, front) = self.inner_layout(layout)?;
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
        let inner_ptr = match self.inner.alloc(inner_layout) {
            Ok(ptr) => ptr,
            Err(AllocError::NoMemory) if self.held_bytes > 0 => {
                self.flush_quarantine();
                self.inner
                    .alloc(inner_layout)
                    .inspect_err(|&e| self.alloc_failed(layout, site, e))?
            }
            Err(e) => {
                self.alloc_failed(layout, site, e);
                return Err(e);
            }
        };
        // SAFETY: `front < inner_layout.size()`, so the object start lies in
        // the block the inner allocator just returned.
        let user = unsafe { inner_ptr.add(front) };
        if front > 0 {
            let rear = inner_layout.size() - front - layout.size();
            // SAFETY: both zones lie inside the fresh inner block.
            unsafe {
                pattern::fill(inner_ptr.as_ptr(), front, REDZONE_ACTIVE);
                pattern::fill(user.as_ptr().add(layout.size()), rear, REDZONE_ACTIVE);
            }
        }
        if self.config.flags.contains(DebugFlags::ALLOC_POISON) {
            // SAFETY: the object lies inside the fresh inner block.
            unsafe { pattern::fill(user.as_ptr(), layout.size(), ALLOC_POISON) };
        }
        let tracked = self.config.flags.contains(DebugFlags::TRACK)
            && layout.size() >= self.config.track_threshold;
        let site = if tracked { site } else { CallSite::Unknown };
        let now = self.ledger.now();
        self.ledger
            .record_alloc(user.as_ptr(), layout.size(), layout.align(), site, now);
        Ok(user)
    }

    #[inline]
    fn alloc_plain(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        let result = self.inner.alloc(layout);
        let counters = &mut self.ledger.counters;
        match result {
            Ok(_) => {
                counters.allocs += 1;
                counters.live_blocks += 1;
                counters.live_size += layout.size();
                if counters.live_size > counters.peak_size {
                    counters.peak_size = counters.live_size;
                    counters.peak_time = (self.ledger.clock)();
                }
            }
            Err(_) => counters.failures += 1,
        }
        result
    }

    fn alloc_failed(&mut self, layout: Layout, site: CallSite, error: AllocError) {
        self.ledger.counters.failures += 1;
        if error == AllocError::NoMemory {
            let kind = ReportKind::OutOfMemory {
                size: layout.size(),
                align: layout.align(),
                used: self.inner.used_bytes(),
                available: self.inner.available_bytes(),
            };
            self.report(kind, 0, site, None, Action::Failed);
        }
    }

    /// Frees with `site` as the call site of the free.
    ///
    /// # Safety
    /// As [`ByteAllocator::dealloc`], except that with any debug flag set
    /// `ptr` may be any pointer at all: it is dereferenced only when it is
    /// the start of a live object of this layer.
    #[inline]
    pub unsafe fn dealloc_at(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
        site: CallSite,
    ) -> AllocResult {
        if !self.debugging() {
            // SAFETY: forwarded from the caller.
            let result = unsafe { self.inner.dealloc(ptr, layout) };
            let counters = &mut self.ledger.counters;
            match result {
                Ok(()) => {
                    counters.frees += 1;
                    counters.live_blocks -= 1;
                    counters.live_size -= layout.size();
                }
                Err(_) => counters.refused_frees += 1,
            }
            return result;
        }
        self.dealloc_checked(ptr, layout, site)
    }

    /// The verdict [`dealloc_at`](Self::dealloc_at) would give, without
    /// freeing: `Ok` for a live block of this layout; otherwise the free
    /// is refused exactly as `dealloc_at` refuses it (counted, reported,
    /// the same error). A caller that remembers a block it freed can so
    /// see a second free refused without risking one that is accepted
    /// (the address handed out again). `None` with checks off: the layer
    /// keeps no records then.
    pub fn check_dealloc_at(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
        site: CallSite,
    ) -> Option<AllocResult> {
        self.debugging()
            .then(|| self.live_entry(ptr, layout, site).map(drop))
    }

    /// The record of the live block `ptr` with `layout`; a bad free is
    /// counted, reported and refused.
    fn live_entry(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
        site: CallSite,
    ) -> AllocResult<(usize, Entry)> {
        let key = ptr.addr().get();
        self.ledger
            .check_free(key, layout.size(), Some(layout.align()))
            .map_err(|refusal| {
                self.ledger.counters.refused_frees += 1;
                self.report(refusal.kind, key, site, refusal.block, Action::Refused);
                refusal.error
            })
    }

    /// The free path with checks on (out of line, as `alloc_checked`).
    /// Safe: `ptr` is dereferenced only once the table shows it is the
    /// start of a live object of this layer.
    #[inline(never)]
    fn dealloc_checked(&mut self, ptr: NonNull<u8>, layout: Layout, site: CallSite) -> AllocResult {
        let (slot, entry) = self.live_entry(ptr, layout, site)?;
        self.check_live_redzones(&entry, site);
        let poison = self.config.flags.contains(DebugFlags::POISON);
        if poison {
            self.poison_freed(&entry);
            self.held_bytes += self.geometry(&entry).inner_size;
        }
        if !poison {
            // Not held: the memory goes back at once; the record stays in
            // the history for double-free reports.
            let (inner, inner_layout) = self.inner_block(&entry);
            // SAFETY: `inner` was returned by `self.inner` for this layout
            // and has not been freed (the record was live).
            unsafe { self.inner.dealloc(inner, inner_layout)? };
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
        while self.held_bytes > self.config.quarantine_limit {
            match self.ledger.pop_oldest() {
                Some(old) => self.release(old),
                None => break,
            }
        }
        Ok(())
    }

    /// Lets a freed object go: checks its poison if held, gives the memory
    /// back to the inner allocator (its record is already gone).
    fn release(&mut self, key: usize) {
        let Some(entry) = self.ledger.take_freed(key) else {
            return;
        };
        if entry.record.state == (State::Freed { held: true }) {
            self.check_poison(&entry);
            let (inner, layout) = self.inner_block(&entry);
            // SAFETY: the block was returned by `self.inner` with this
            // layout and held since; nobody else may use it.
            let result = unsafe { self.inner.dealloc(inner, layout) };
            debug_assert!(
                result.is_ok(),
                "inner allocator refused a quarantined block: {result:?}"
            );
            self.held_bytes -= layout.size();
        }
    }

    /// Gives every quarantined object back (checking each).
    pub fn flush_quarantine(&mut self) {
        while let Some(key) = self.ledger.pop_oldest() {
            self.release(key);
        }
    }

    /// Checks the red zones of every live object and the poison of every
    /// quarantined one; returns how many objects were damaged (each is
    /// reported and repaired).
    pub fn validate(&mut self) -> usize {
        let mut damaged = 0;
        let mut slot = 0;
        // Copy each record out of the table: reports need `&mut self`.
        while let Some((next, ptr, record)) = self.ledger.table.next_from(slot) {
            let entry = Entry { ptr, record };
            let clean = match record.state {
                State::Live => self.check_live_redzones(&entry, CallSite::Unknown),
                State::Freed { held: true } => self.check_poison(&entry),
                State::Freed { held: false } => true,
            };
            damaged += usize::from(!clean);
            slot = next + 1;
        }
        damaged
    }

    /// A checkpoint: objects allocated after it are what
    /// [`outstanding_since`](Self::outstanding_since) lists.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.ledger.next_seq())
    }

    /// Live objects allocated since `checkpoint`, grouped by call site into
    /// `out` (largest first). Returns the sites filled and the objects
    /// whose site did not fit.
    pub fn outstanding_since(
        &self,
        checkpoint: Checkpoint,
        out: &mut [SiteSummary],
    ) -> (usize, usize) {
        tally(self.ledger.live().map(|e| e.record), checkpoint.0, out)
    }
}
