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

use core::mem::MaybeUninit;
use core::ptr::NonNull;

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

/// What a layer records per block.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub(crate) info: BlockInfo,
    pub(crate) state: State,
    /// The pointer the inner allocator returned (byte layers only).
    pub(crate) inner: Option<NonNull<u8>>,
    /// Bytes of the inner block (object plus red zones), or of the pages.
    pub(crate) inner_size: usize,
}

/// Memory for a layer's block table: one slot per tracked block. The
/// layer tracks at most 7/8 of the largest power-of-two prefix.
pub type RecordSlot = Slot<Record>;

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
    pub(crate) fn new(
        table: &'t mut [MaybeUninit<RecordSlot>],
        history: &'t mut [MaybeUninit<usize>],
        clock: fn() -> u64,
    ) -> Self {
        Ledger {
            table: Table::new(table),
            history,
            history_head: 0,
            history_len: 0,
            regions: [(0, 0); MAX_REGIONS],
            region_count: 0,
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

    /// Records a new live block. The caller checked [`has_room`].
    pub(crate) fn record_alloc(&mut self, key: usize, mut record: Record, now: u64) {
        self.seq += 1;
        record.info.seq = self.seq;
        if self.table.insert(key, record).is_err() {
            unreachable!("record_alloc without room");
        }
        let counters = &mut self.counters;
        counters.allocs += 1;
        counters.live_blocks += 1;
        counters.live_size += record.info.size;
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
    /// live record and its slot (valid until the table next changes) if
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
    ) -> Result<(usize, Record), Refusal> {
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
        let record = *self.table.at(slot);
        if record.state != State::Live {
            return Err(Refusal {
                kind: ReportKind::DoubleFree,
                block: Some(record.info),
                error: AllocError::DoubleFree,
            });
        }
        if record.info.size != size || align.is_some_and(|a| a != record.info.align) {
            return Err(Refusal {
                kind: ReportKind::WrongLayout {
                    size,
                    align: align.unwrap_or(record.info.align),
                },
                block: Some(record.info),
                error: AllocError::NotAllocated,
            });
        }
        Ok((slot, record))
    }

    /// An address in range that starts no known block: inside a live block,
    /// or nothing this layer handed out (possibly a block freed so long ago
    /// that it has left the history).
    fn classify_unknown(&self, key: usize) -> Refusal {
        let containing = self.table.iter().find(|(start, record)| {
            record.state == State::Live && key > *start && key - start < record.inner_size
        });
        match containing {
            Some((start, record)) => Refusal {
                kind: ReportKind::InteriorFree {
                    offset: key - start,
                },
                block: Some(record.info),
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
        let record = self.table.at_mut(slot);
        record.state = State::Freed { held };
        record.info.free_site = site;
        record.info.free_time = now;
        let (key, size) = (record.info.start, record.info.size);
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

    /// Removes and returns the freed record for `key`, if the key still
    /// names a freed block (the address may have been handed out again
    /// since it was queued, and then it is left alone).
    pub(crate) fn take_freed(&mut self, key: usize) -> Option<Record> {
        let slot = self.table.position(key)?;
        if self.table.at(slot).state == State::Live {
            return None;
        }
        Some(self.table.remove_at(slot))
    }

    /// Every live record.
    pub(crate) fn live(&self) -> impl Iterator<Item = (usize, &Record)> + '_ {
        self.table.iter().filter(|(_, r)| r.state == State::Live)
    }

    pub(crate) fn now(&self) -> u64 {
        (self.clock)()
    }
}
