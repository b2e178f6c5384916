//! What the debug layers remember per block: a [`Record`] packed into one
//! cache line with its table key, its call sites packed a word each.

use core::fmt;
use core::panic::Location;

use crate::table::Slot;
use crate::{BlockInfo, CallSite};

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
    /// A live block's record: allocation number `seq`, made at `site` at
    /// clock `now`.
    pub(crate) fn live(size: usize, align: usize, seq: u64, site: CallSite, now: u64) -> Self {
        let (alloc_kind, alloc_site) = pack(site);
        let (free_kind, free_site) = pack(CallSite::Unknown);
        Record {
            size,
            seq,
            alloc_time: now,
            free_time: 0,
            alloc_site,
            free_site,
            alloc_kind,
            free_kind,
            align_log2: align.trailing_zeros().min(usize::BITS - 1) as u8,
            state: State::Live,
        }
    }

    /// Marks the block freed at `site` at clock `now`; `held` if its
    /// memory stays in quarantine.
    pub(crate) fn mark_freed(&mut self, site: CallSite, now: u64, held: bool) {
        self.state = State::Freed { held };
        (self.free_kind, self.free_site) = pack(site);
        self.free_time = now;
    }

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
