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

use core::fmt;
use core::mem::MaybeUninit;
use core::panic::Location;

use kalloc::AllocError;

use crate::table::{Slot, Table};
use crate::{BlockInfo, CallSite, ReportKind};

/// Whether a block is live or freed (and then whether its memory is still
/// held back from the inner allocator in quarantine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Live,
    Freed { held: bool },
}

/// Which kind of [`CallSite`] a [`SiteWord`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SiteKind {
    Unknown,
    Source,
    Code,
}

/// A [`CallSite`]'s payload in one word (its kind is kept apart, in a
/// byte of the record, so two sites cost 18 bytes instead of 32).
#[derive(Clone, Copy)]
union SiteWord {
    location: &'static Location<'static>,
    pc: usize,
}

fn pack(site: CallSite) -> (SiteKind, SiteWord) {
    match site {
        CallSite::Unknown => (SiteKind::Unknown, SiteWord { pc: 0 }),
        CallSite::Source(location) => (SiteKind::Source, SiteWord { location }),
        CallSite::Code(pc) => (SiteKind::Code, SiteWord { pc }),
    }
}

fn unpack(kind: SiteKind, word: SiteWord) -> CallSite {
    // SAFETY: `pack` wrote the field that `kind` names, and the two are
    // only ever written together.
    unsafe {
        match kind {
            SiteKind::Unknown => CallSite::Unknown,
            SiteKind::Source => CallSite::Source(word.location),
            SiteKind::Code => CallSite::Code(word.pc),
        }
    }
}

/// What a layer records per block, packed so that a table slot (the
/// block's address and this record) fills exactly one 64-byte cache line:
/// every lookup on the alloc and free paths then costs one cache miss.
/// The block's address is the slot's key; what the inner allocator sees
/// (red zones, pages) is derived from the size, the alignment and the
/// layer's configuration.
#[derive(Clone, Copy)]
pub struct Record {
    size: usize,
    seq: u64,
    alloc_time: u64,
    free_time: u64,
    alloc_site: SiteWord,
    free_site: SiteWord,
    alloc_kind: SiteKind,
    free_kind: SiteKind,
    align_log2: u8,
    pub(crate) state: State,
}

impl Record {
    /// The block's history as reports show it; `start` is its address.
    pub(crate) fn info(&self, start: usize) -> BlockInfo {
        BlockInfo {
            start,
            size: self.size,
            align: 1 << self.align_log2,
            seq: self.seq,
            alloc_site: unpack(self.alloc_kind, self.alloc_site),
            alloc_time: self.alloc_time,
            free_site: unpack(self.free_kind, self.free_site),
            free_time: self.free_time,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn align(&self) -> usize {
        1 << self.align_log2
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn alloc_time(&self) -> u64 {
        self.alloc_time
    }

    pub(crate) fn alloc_site(&self) -> CallSite {
        unpack(self.alloc_kind, self.alloc_site)
    }

    pub(crate) fn free_site(&self) -> CallSite {
        unpack(self.free_kind, self.free_site)
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("state", &self.state)
            .field("size", &self.size)
            .field("align", &self.align())
            .field("seq", &self.seq)
            .field("alloc_site", &self.alloc_site())
            .field("alloc_time", &self.alloc_time)
            .field("free_site", &self.free_site())
            .field("free_time", &self.free_time)
            .finish()
    }
}

/// A block found in the table: its address (with the provenance the layer
/// touches its memory through) and its record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) ptr: *mut u8,
    pub(crate) record: Record,
}

impl Entry {
    pub(crate) fn key(&self) -> usize {
        self.ptr.addr()
    }

    pub(crate) fn info(&self) -> BlockInfo {
        self.record.info(self.key())
    }
}

/// Memory for a layer's block table: one slot per tracked block (64
/// bytes, 64-byte aligned, on 64-bit targets). The layer tracks at most
/// 7/8 of the largest power-of-two prefix.
pub type RecordSlot = Slot<Record>;

#[cfg(target_pointer_width = "64")]
const _: () = assert!(core::mem::size_of::<RecordSlot>() == 64);

/// Counters every layer keeps, whatever its flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub allocs: u64,
    pub frees: u64,
    /// Allocations the inner allocator could not satisfy.
    pub failures: u64,
    /// Frees refused as invalid.
    pub refused_frees: u64,
    /// Live blocks and their requested size (bytes or pages).
    pub live_blocks: usize,
    pub live_size: usize,
    /// The most ever live at once, and the clock when it was reached.
    pub peak_size: usize,
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
        record.size * self.unit + self.rear_zone
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
        let (alloc_kind, alloc_site) = pack(site);
        let (free_kind, free_site) = pack(CallSite::Unknown);
        let record = Record {
            size,
            seq: self.seq,
            alloc_time: now,
            free_time: 0,
            alloc_site,
            free_site,
            alloc_kind,
            free_kind,
            align_log2: align.trailing_zeros().min(usize::BITS - 1) as u8,
            state: State::Live,
        };
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
        if record.size != size || align.is_some_and(|a| a != record.align()) {
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
        record.state = State::Freed { held };
        (record.free_kind, record.free_site) = pack(site);
        record.free_time = now;
        let size = record.size;
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
