//! The per-CPU side of [`PageCaches`](super::PageCaches): one CPU's lists
//! of free blocks (written by that CPU only, with plain stores), its
//! counters and drain requests, and the per-page state table.

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicU8, AtomicUsize};

use super::{PAGE_CACHE_ORDERS, page_list_capacity};
use crate::drain::DrainRequests;
use crate::seen::Seen;

const LIST_SLOTS: usize = page_list_capacity(0);
pub(super) const LIVE: u8 = 0x40;
pub(super) const PARKED: u8 = 0x80;

/// One CPU's list of free blocks of one order (written by that CPU only).
pub(super) struct PageList {
    len: AtomicUsize,
    slots: [AtomicUsize; LIST_SLOTS],
}

impl PageList {
    const fn new() -> Self {
        Self {
            len: AtomicUsize::new(0),
            slots: [const { AtomicUsize::new(0) }; LIST_SLOTS],
        }
    }

    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    #[inline(always)]
    pub(super) fn push(&self, addr: usize) {
        let len = self.len();
        self.slots[len].store(addr, Relaxed);
        self.len.store(len + 1, Relaxed);
    }

    #[inline(always)]
    pub(super) fn pop(&self) -> Option<usize> {
        let top = self.len().checked_sub(1)?;
        self.len.store(top, Relaxed);
        Some(self.slots[top].load(Relaxed))
    }
}

/// One CPU's lists, counters and drain requests.
#[repr(align(64))]
pub(super) struct CpuPages {
    pub(super) lists: [PageList; PAGE_CACHE_ORDERS],
    /// Every request and free through `alloc`/`free`, listed or not.
    pub(super) allocs: AtomicUsize,
    pub(super) frees: AtomicUsize,
    pub(super) failures: AtomicUsize,
    pub(super) locked: AtomicUsize,
    pub(super) drain: DrainRequests,
    /// This CPU read the state table as published: its later reads need
    /// no fence.
    pub(super) table_seen: Seen,
}

impl CpuPages {
    pub(super) const fn new() -> Self {
        Self {
            lists: [const { PageList::new() }; PAGE_CACHE_ORDERS],
            allocs: AtomicUsize::new(0),
            frees: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
            locked: AtomicUsize::new(0),
            drain: DrainRequests::new(),
            table_seen: Seen::new(),
        }
    }

    /// Pages parked in all lists.
    pub(super) fn parked_pages(&self) -> usize {
        self.lists
            .iter()
            .enumerate()
            .map(|(order, list)| list.len() << order)
            .sum()
    }
}

/// One page's entry in the lists' state table: a state byte alone in 8
/// bytes, so a cache line holds the states of 8 pages. The CPUs write the
/// states of the blocks they hold on every listed request and free, and
/// neighbouring runs of pages often sit on different CPUs (each refill
/// takes a run from the allocator): one byte per page would put 64 pages'
/// states in a line, which two CPUs' runs would share.
#[repr(C, align(8))]
pub struct PageState(AtomicU8);

impl PageState {
    /// A zeroed entry (all bytes zero is one too: a table may be zeroed
    /// memory).
    pub const fn new() -> Self {
        Self(AtomicU8::new(0))
    }

    #[inline(always)]
    pub(super) fn get(&self) -> &AtomicU8 {
        &self.0
    }
}

impl Default for PageState {
    fn default() -> Self {
        Self::new()
    }
}

/// The per-page state table and the pages it covers.
pub(super) struct StateTable {
    pub(super) states: &'static [PageState],
    pub(super) base: usize,
}
