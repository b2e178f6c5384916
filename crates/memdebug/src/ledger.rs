//! The bookkeeping shared by the byte and page debug layers: the table of
//! live and recently freed blocks, the FIFO of freed blocks (quarantine and
//! free history), the regions under management, and the counters.
//!
//! ```text
//!  alloc ──► table[addr] = Live{info}
//!  free  ──► table[addr] = Freed{info + free site}, addr pushed on history
//!            (memory held back from the inner allocator when poisoning)
//!  history full ──► oldest Freed entry leaves the table (its memory, if
//!                   held, is checked for poison and given back)
//! ```
//! A free is classified against the table before anything changes, so a
//! refused free leaves the layer and the inner allocator untouched.

mod record;

use core::mem::MaybeUninit;

use kalloc::AllocError;

pub(crate) use record::{Entry, State};
pub use record::{Record, RecordSlot};

use crate::table::Table;
use crate::{BlockInfo, CallSite, ReportKind};

/// Counters every layer keeps, whatever its flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Allocations served.
    pub allocs: u64,
    /// Frees accepted.
    pub frees: u64,
    /// Allocations the inner allocator could not satisfy.
    pub failures: u64,
    /// Frees refused as invalid.
    pub refused_frees: u64,
    /// Live blocks.
    pub live_blocks: usize,
    /// The live blocks' requested size (bytes or pages).
    pub live_size: usize,
    /// The most ever live at once (bytes or pages).
    pub peak_size: usize,
    /// The clock when `peak_size` was reached.
    pub peak_time: u64,
}

/// The most disjoint regions a layer remembers for range checks.
pub const MAX_REGIONS: usize = 64;

pub(crate) struct Ledger<'t> {
    pub(crate) table: Table<'t, Record>,
    history: &'t mut [MaybeUninit<usize>],
    history_head: usize,
    history_len: usize,
    regions: [(usize, usize); MAX_REGIONS],
    region_count: usize,
    /// Bytes per unit of a record's size (1, or the page size).
    unit: usize,
    /// Bytes owned past a block's end (its rear red zone, if any).
    rear_zone: usize,
    pub(crate) counters: Counters,
    seq: u64,
    pub(crate) clock: fn() -> u64,
}

/// A free the ledger refused, with what to report.
pub(crate) struct Refusal {
    pub(crate) kind: ReportKind,
    pub(crate) block: Option<BlockInfo>,
    pub(crate) error: AllocError,
}

impl<'t> Ledger<'t> {
    /// A ledger whose records count sizes in `unit` bytes and whose blocks
    /// own `rear_zone` bytes past their end (both for interior-free
    /// classification).
    pub(crate) fn new(
        table: &'t mut [MaybeUninit<RecordSlot>],
        history: &'t mut [MaybeUninit<usize>],
        clock: fn() -> u64,
        unit: usize,
        rear_zone: usize,
    ) -> Self {
        Ledger {
            table: Table::new(table),
            history,
            history_head: 0,
            history_len: 0,
            regions: [(0, 0); MAX_REGIONS],
            region_count: 0,
            unit,
            rear_zone,
            counters: Counters::default(),
            seq: 0,
            clock,
        }
    }

    /// Remembers a region the inner allocator accepted. Regions beyond
    /// [`MAX_REGIONS`] are merged into the last one's bounds (range checks
    /// become coarser, never wrong about memory that is managed).
    pub(crate) fn add_region(&mut self, start: usize, size: usize) {
        let end = start.saturating_add(size);
        if self.region_count < MAX_REGIONS {
            self.regions[self.region_count] = (start, end);
            self.region_count += 1;
        } else {
            let last = &mut self.regions[MAX_REGIONS - 1];
            *last = (last.0.min(start), last.1.max(end));
        }
    }

    pub(crate) fn in_regions(&self, addr: usize) -> bool {
        self.regions[..self.region_count]
            .iter()
            .any(|&(start, end)| (start..end).contains(&addr))
    }

    /// Whether the table can take one more block (each live block and each
    /// freed block still in the history needs a slot).
    pub(crate) fn has_room(&self) -> bool {
        self.table.len() < self.table.capacity()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Bytes from a block's start to the end of what it owns.
    pub(crate) fn extent(&self, record: &Record) -> usize {
        record.size() * self.unit + self.rear_zone
    }

    /// Records a new live block at `ptr` of `size` units aligned to
    /// `align` (a power of two: the inner allocator refused any other; one
    /// that got through would be recorded as its largest power-of-two
    /// factor). The caller checked [`has_room`].
    ///
    /// [`has_room`]: Self::has_room
    pub(crate) fn record_alloc(
        &mut self,
        ptr: *mut u8,
        size: usize,
        align: usize,
        site: CallSite,
        now: u64,
    ) {
        self.seq += 1;
        let record = Record::live(size, align, self.seq, site, now);
        if self.table.insert(ptr, record).is_err() {
            unreachable!("record_alloc without room");
        }
        let counters = &mut self.counters;
        counters.allocs += 1;
        counters.live_blocks += 1;
        counters.live_size += size;
        if counters.live_size > counters.peak_size {
            counters.peak_size = counters.live_size;
            counters.peak_time = now;
        }
    }

    /// The sequence number the next allocation will get.
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Decides whether freeing `key` as `size`/`align` is valid; returns the
    /// live block and its slot (valid until the table next changes) if
    /// so. Changes nothing either way.
    #[allow(
        clippy::result_large_err,
        reason = "no_std without a heap: the refusal is returned by value on a cold path"
    )]
    pub(crate) fn check_free(
        &self,
        key: usize,
        size: usize,
        align: Option<usize>,
    ) -> Result<(usize, Entry), Refusal> {
        let Some(slot) = self.table.position(key) else {
            return Err(if self.in_regions(key) {
                self.classify_unknown(key)
            } else {
                Refusal {
                    kind: ReportKind::OutOfRange,
                    block: None,
                    error: AllocError::OutOfRange,
                }
            });
        };
        let entry = Entry {
            ptr: self.table.key_at(slot),
            record: *self.table.at(slot),
        };
        let record = &entry.record;
        if record.state != State::Live {
            return Err(Refusal {
                kind: ReportKind::DoubleFree,
                block: Some(entry.info()),
                error: AllocError::DoubleFree,
            });
        }
        if record.size() != size || align.is_some_and(|a| a != record.align()) {
            return Err(Refusal {
                kind: ReportKind::WrongLayout {
                    size,
                    align: align.unwrap_or(record.align()),
                },
                block: Some(entry.info()),
                error: AllocError::NotAllocated,
            });
        }
        Ok((slot, entry))
    }

    /// An address in range that starts no known block: inside a live block,
    /// or nothing this layer handed out (possibly a block freed so long ago
    /// that it has left the history).
    fn classify_unknown(&self, key: usize) -> Refusal {
        let containing = self
            .live()
            .find(|entry| key > entry.key() && key - entry.key() < self.extent(&entry.record));
        match containing {
            Some(entry) => Refusal {
                kind: ReportKind::InteriorFree {
                    offset: key - entry.key(),
                },
                block: Some(entry.info()),
                error: AllocError::NotAllocated,
            },
            None => Refusal {
                kind: ReportKind::UnknownFree,
                block: None,
                error: AllocError::NotAllocated,
            },
        }
    }

    /// Marks the checked block in `slot` (from [`check_free`]) freed and
    /// appends it to the history. Returns the key of a block pushed out of
    /// the history, if any: the caller must [`take_freed`] it (and release
    /// its memory if it was held).
    ///
    /// [`check_free`]: Self::check_free
    /// [`take_freed`]: Self::take_freed
    pub(crate) fn record_free(
        &mut self,
        slot: usize,
        site: CallSite,
        now: u64,
        held: bool,
    ) -> Option<usize> {
        let key = self.table.key_at(slot).addr();
        let record = self.table.at_mut(slot);
        record.mark_freed(site, now, held);
        let size = record.size();
        self.counters.frees += 1;
        self.counters.live_blocks -= 1;
        self.counters.live_size -= size;
        if self.history.is_empty() {
            // No history at all: the block leaves immediately.
            return Some(key);
        }
        let evicted = if self.history_len == self.history.len() {
            self.pop_oldest()
        } else {
            None
        };
        let tail = (self.history_head + self.history_len) % self.history.len();
        self.history[tail].write(key);
        self.history_len += 1;
        evicted
    }

    /// Takes the oldest freed block off the history; `None` when empty.
    pub(crate) fn pop_oldest(&mut self) -> Option<usize> {
        if self.history_len == 0 {
            return None;
        }
        // SAFETY: slots `head .. head + len` (mod capacity) were written by
        // `record_free` before `history_len` counted them.
        let key = unsafe { self.history[self.history_head].assume_init() };
        self.history_head = (self.history_head + 1) % self.history.len();
        self.history_len -= 1;
        Some(key)
    }

    /// Removes and returns the freed block `key`, if the key still names a
    /// freed block (the address may have been handed out again since it
    /// was queued, and then it is left alone).
    pub(crate) fn take_freed(&mut self, key: usize) -> Option<Entry> {
        let slot = self.table.position(key)?;
        if self.table.at(slot).state == State::Live {
            return None;
        }
        let (ptr, record) = self.table.remove_at(slot);
        Some(Entry { ptr, record })
    }

    /// Every live block.
    pub(crate) fn live(&self) -> impl Iterator<Item = Entry> + '_ {
        self.table
            .iter()
            .filter(|(_, r)| r.state == State::Live)
            .map(|(ptr, &record)| Entry { ptr, record })
    }

    pub(crate) fn now(&self) -> u64 {
        (self.clock)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn ledger(slots: &mut [MaybeUninit<RecordSlot>]) -> Ledger<'_> {
        Ledger::new(slots, &mut [], || 7, 1, 0)
    }

    #[test]
    fn packed_records_give_back_what_was_recorded() {
        let mut slots: Vec<_> = (0..16).map(|_| MaybeUninit::uninit()).collect();
        let mut ledger = ledger(&mut slots);
        let source = CallSite::caller();
        let code = CallSite::Code(usize::MAX - 1);
        let a = core::ptr::without_provenance_mut(0x1000);
        let b = core::ptr::without_provenance_mut(0x8000);
        ledger.record_alloc(a, 24, 8, source, 5);
        ledger.record_alloc(b, 3, 1 << 40, code, 6);
        let (slot, entry) = ledger.check_free(0x1000, 24, Some(8)).ok().unwrap();
        assert_eq!(entry.ptr, a);
        let info = entry.info();
        assert_eq!(
            (info.start, info.size, info.align, info.seq),
            (0x1000, 24, 8, 1)
        );
        assert_eq!((info.alloc_site, info.alloc_time), (source, 5));
        assert_eq!(info.free_site, CallSite::Unknown);
        // Freeing with no history: the block leaves at once.
        assert_eq!(ledger.record_free(slot, code, 9, false), Some(0x1000));
        let freed = ledger.take_freed(0x1000).unwrap().info();
        assert_eq!((freed.free_site, freed.free_time), (code, 9));
        let (_, entry) = ledger.check_free(0x8000, 3, None).ok().unwrap();
        let info = entry.info();
        assert_eq!((info.align, info.alloc_site, info.seq), (1 << 40, code, 2));
    }
}
