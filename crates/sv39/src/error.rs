//! The errors every page-table operation reports instead of panicking.

use core::fmt;

use crate::{PageSize, PageTableEntry};

/// Why a page-table operation was refused. On every error the table is
/// unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    /// Bits 63..39 of the virtual address do not all equal bit 38.
    NonCanonical {
        /// The address given.
        va: usize,
    },
    /// The physical address does not fit in Sv39's 56 bits.
    PhysAddrTooLarge {
        /// The address given (or the last byte of the range).
        pa: usize,
    },
    /// An address or length is not a multiple of the required size.
    Unaligned {
        /// The offending address or length.
        addr: usize,
        /// The size it must be a multiple of.
        required: PageSize,
    },
    /// The flags are not a legal leaf: neither R nor X (that would be a
    /// table pointer), or W without R (reserved by the spec).
    InvalidFlags {
        /// The flag bits given.
        flags: u64,
    },
    /// A leaf already maps (part of) the requested range.
    AlreadyMapped {
        /// The address whose mapping was requested.
        va: usize,
        /// The size of the leaf already covering it.
        existing: PageSize,
    },
    /// A huge page was requested where a lower-level table already holds
    /// smaller mappings.
    TableInTheWay {
        /// The address of the requested huge page.
        va: usize,
        /// The level of the slot holding the table (1 or 2).
        level: usize,
    },
    /// Nothing maps this address.
    NotMapped {
        /// The address looked up.
        va: usize,
    },
    /// The address lies inside a huge page but is not its first byte
    /// (`unmap`/`protect` act on whole leaves).
    InsideHugePage {
        /// The address given.
        va: usize,
        /// The size of the huge page containing it.
        size: PageSize,
    },
    /// The frame source had no frame for a page-table page.
    OutOfFrames,
    /// A range's length is zero or its end overflows the address space.
    BadRange {
        /// The range's first address.
        start: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// The walk found an entry whose encoding the spec reserves (or a
    /// table pointer at level 0): the table was corrupted or not built by
    /// this crate.
    Malformed {
        /// The level (2 = root) of the table holding the entry.
        level: usize,
        /// The entry found.
        entry: PageTableEntry,
    },
}

impl fmt::Display for PagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NonCanonical { va } => {
                write!(f, "virtual address {va:#x} is not canonical for Sv39")
            }
            Self::PhysAddrTooLarge { pa } => write!(f, "physical address {pa:#x} exceeds 56 bits"),
            Self::Unaligned { addr, required } => write!(f, "{addr:#x} is not {required}-aligned"),
            Self::InvalidFlags { flags } => write!(f, "flags {flags:#x} are not a legal Sv39 leaf"),
            Self::AlreadyMapped { va, existing } => {
                write!(f, "{va:#x} is already mapped by a {existing} page")
            }
            Self::TableInTheWay { va, level } => {
                write!(
                    f,
                    "{va:#x}: a level-{level} table with smaller mappings is in the way of a huge page"
                )
            }
            Self::NotMapped { va } => write!(f, "{va:#x} is not mapped"),
            Self::InsideHugePage { va, size } => {
                write!(f, "{va:#x} is inside a {size} page, not its start")
            }
            Self::OutOfFrames => f.write_str("out of frames for page-table pages"),
            Self::BadRange { start, len } => {
                write!(f, "bad range: start {start:#x}, length {len:#x}")
            }
            Self::Malformed { level, entry } => {
                write!(f, "malformed level-{level} entry {entry:?}")
            }
        }
    }
}

impl core::error::Error for PagingError {}
