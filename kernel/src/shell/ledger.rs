//! The shell's record of the blocks it handed out by hand and of the ones
//! it freed since: what `free` needs to free a block, and to recognise a
//! second free (see `by_hand`). A heap block is held as the
//! `global::Block` it is (freed once, by consuming it); a freed one as its
//! `FreedBlock`, which can only ask for a verdict.
//!
//! ```text
//!   live:  [Option<(Record, Option<Block>)>; 64]      addr, Bytes{size, align} | Pages{count}, serial #n
//!   freed: [Option<(Record, Option<FreedBlock>)>; 32] ring of the last frees
//! ```

use crate::arch::{PAGE_SIZE, virt_to_phys};
use crate::memory::global::{Block, FreedBlock};

const LIVE: usize = 64;
const FREED: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// From the global allocator (`alloc`).
    Bytes { size: usize, align: usize },
    /// From the page allocator (`pages`).
    Pages { count: usize },
}

#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub addr: usize,
    pub kind: Kind,
    /// 1 for the first block handed out, 2 for the next ...
    pub serial: u32,
}

impl Record {
    pub fn bytes(&self) -> usize {
        match self.kind {
            Kind::Bytes { size, .. } => size,
            Kind::Pages { count } => count * PAGE_SIZE,
        }
    }

    pub fn overlaps(&self, addr: usize, bytes: usize) -> bool {
        self.addr < addr + bytes && addr < self.addr + self.bytes()
    }

    pub fn contains(&self, addr: usize) -> bool {
        (self.addr..self.addr + self.bytes().max(1)).contains(&addr)
    }
}

impl core::fmt::Display for Record {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.kind {
            Kind::Bytes { size, align } => {
                write!(
                    f,
                    "#{} {:#x}: {size} bytes, align {align}",
                    self.serial, self.addr
                )
            }
            Kind::Pages { count } => write!(
                f,
                "#{} {:#x}: {count} page(s) at physical {:#x}",
                self.serial,
                self.addr,
                virt_to_phys(self.addr)
            ),
        }
    }
}

/// The blocks handed out and recently freed by the shell.
pub struct Ledger {
    live: [Option<(Record, Option<Block>)>; LIVE],
    freed: [Option<(Record, Option<FreedBlock>)>; FREED],
    next_freed: usize,
    serial: u32,
}

impl Ledger {
    pub const fn new() -> Self {
        Self {
            live: [const { None }; LIVE],
            freed: [None; FREED],
            next_freed: 0,
            serial: 0,
        }
    }

    /// Live blocks and their bytes, split into heap bytes and pages.
    pub fn totals(&self) -> (usize, usize, usize, usize) {
        let (mut blocks, mut bytes, mut page_blocks, mut page_count) = (0, 0, 0, 0);
        for (record, _) in self.live.iter().flatten() {
            match record.kind {
                Kind::Bytes { size, .. } => {
                    blocks += 1;
                    bytes += size;
                }
                Kind::Pages { count } => {
                    page_blocks += 1;
                    page_count += count;
                }
            }
        }
        (blocks, bytes, page_blocks, page_count)
    }

    pub fn has_room(&self) -> bool {
        self.live.iter().any(Option::is_none)
    }

    /// Records a heap block `alloc` handed out.
    pub fn add_bytes(&mut self, block: Block) -> Record {
        let layout = block.layout();
        let kind = Kind::Bytes {
            size: layout.size(),
            align: layout.align(),
        };
        self.add(block.addr(), kind, Some(block))
    }

    /// Records `count` pages `pages` handed out at `addr`.
    pub fn add_pages(&mut self, addr: usize, count: usize) -> Record {
        self.add(addr, Kind::Pages { count }, None)
    }

    fn add(&mut self, addr: usize, kind: Kind, block: Option<Block>) -> Record {
        self.serial += 1;
        let record = Record {
            addr,
            kind,
            serial: self.serial,
        };
        // The allocator handed this range out again: it is no longer free.
        for slot in &mut self.freed {
            if slot.is_some_and(|(r, _)| r.overlaps(addr, record.bytes())) {
                *slot = None;
            }
        }
        let slot = self
            .live
            .iter_mut()
            .find(|s| s.is_none())
            .expect("has_room checked");
        *slot = Some((record, block));
        record
    }

    /// Puts back what `take_live` removed (its free was refused).
    pub fn restore(&mut self, record: Record, block: Option<Block>) {
        if let Some(slot) = self.live.iter_mut().find(|s| s.is_none()) {
            *slot = Some((record, block));
        }
    }

    pub fn take_live(&mut self, addr: usize) -> Option<(Record, Option<Block>)> {
        self.live
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|(r, _)| r.addr == addr))
            .and_then(Option::take)
    }

    pub fn live_at(&self, addr: usize) -> Option<Record> {
        self.live
            .iter()
            .flatten()
            .map(|(r, _)| *r)
            .find(|r| r.addr == addr)
    }

    pub fn remember_freed(&mut self, record: Record, freed: Option<FreedBlock>) {
        self.freed[self.next_freed] = Some((record, freed));
        self.next_freed = (self.next_freed + 1) % FREED;
    }

    pub fn freed_at(&self, addr: usize) -> Option<(Record, Option<FreedBlock>)> {
        self.freed
            .iter()
            .flatten()
            .filter(|(r, _)| r.addr == addr)
            .max_by_key(|(r, _)| r.serial)
            .copied()
    }

    /// The live block holding `addr`, if any.
    pub fn live_containing(&self, addr: usize) -> Option<Record> {
        self.live
            .iter()
            .flatten()
            .map(|(r, _)| *r)
            .find(|r| r.contains(addr))
    }

    /// Forgets every freed record (after others may have reused them).
    pub fn forget_freed(&mut self) {
        self.freed = [None; FREED];
    }
}
