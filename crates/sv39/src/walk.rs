//! What the page-table queries return: the levels a walk visited and how
//! it ended, a translation, and what an unmap removed.

use crate::{LEVELS, PageSize, PageTableEntry, PhysAddr, PteFlags, VirtAddr};

/// One level of a [`Walk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// 2 for the root, 0 for the 4 KiB level.
    pub level: usize,
    /// The table read at this level.
    pub table: PhysAddr,
    /// The index the virtual address selects in it.
    pub index: usize,
    /// The entry found there.
    pub entry: PageTableEntry,
}

/// How a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// A leaf maps the address.
    Leaf(Translation),
    /// The entry at `level` is invalid: the address is unmapped.
    Invalid {
        /// The level (2 = root) of the invalid entry.
        level: usize,
    },
    /// The entry at `level` uses a reserved encoding, is a table pointer
    /// at level 0, or is a misaligned superpage: hardware would fault.
    Malformed {
        /// The level (2 = root) of the offending entry.
        level: usize,
    },
}

/// The levels a hardware walk of one address visits, root first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The address walked.
    pub va: VirtAddr,
    pub(crate) steps: [Option<WalkStep>; LEVELS],
    /// How the walk ended.
    pub end: WalkEnd,
}

impl Walk {
    /// The visited levels, root first (one to three of them).
    pub fn steps(&self) -> impl Iterator<Item = &WalkStep> {
        self.steps.iter().flatten()
    }
}

/// What a leaf maps an address to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address of the translated byte.
    pub pa: PhysAddr,
    /// The leaf's flags.
    pub flags: PteFlags,
    /// The leaf's page size.
    pub size: PageSize,
}

/// What an [`unmap`](crate::PageTable::unmap) removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// The first physical byte of the removed page.
    pub pa: PhysAddr,
    /// Its size.
    pub size: PageSize,
    /// Its flags.
    pub flags: PteFlags,
    /// How many table frames became empty and were freed (if nonzero, the
    /// caller's flush must cover page-walk caches before those frames are
    /// reused: `sfence.vma` with the address, or a full one).
    pub tables_freed: usize,
}
