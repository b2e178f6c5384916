//! Virtual and physical addresses with their Sv39 validity rules, and the
//! three page sizes.

use core::fmt;

use crate::PagingError;

/// The page sizes Sv39 maps with one leaf entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB, a leaf at level 0.
    Size4K,
    /// 2 MiB megapage, a leaf at level 1.
    Size2M,
    /// 1 GiB gigapage, a leaf at level 2 (the root).
    Size1G,
}

impl PageSize {
    /// All sizes, largest first (the order `map_range` tries them).
    pub const LARGEST_FIRST: [PageSize; 3] = [PageSize::Size1G, PageSize::Size2M, PageSize::Size4K];

    /// The size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
            PageSize::Size1G => 1 << 30,
        }
    }

    /// The table level whose entries are leaves of this size.
    pub const fn level(self) -> usize {
        match self {
            PageSize::Size4K => 0,
            PageSize::Size2M => 1,
            PageSize::Size1G => 2,
        }
    }

    /// The size a leaf at `level` maps (`level` must be 0..=2).
    pub const fn at_level(level: usize) -> PageSize {
        match level {
            0 => PageSize::Size4K,
            1 => PageSize::Size2M,
            _ => PageSize::Size1G,
        }
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PageSize::Size4K => "4K",
            PageSize::Size2M => "2M",
            PageSize::Size1G => "1G",
        })
    }
}

/// A canonical Sv39 virtual address: bits 63..39 all equal bit 38.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VirtAddr(usize);

impl VirtAddr {
    /// Checks canonicity.
    pub const fn new(addr: usize) -> Result<Self, PagingError> {
        let sign_extended = (((addr << 25) as isize) >> 25) as usize;
        if sign_extended == addr {
            Ok(Self(addr))
        } else {
            Err(PagingError::NonCanonical { va: addr })
        }
    }

    /// The address whose low 39 bits are `low39`, sign-extended from bit 38.
    pub(crate) const fn from_low_bits(low39: usize) -> Self {
        Self((((low39 << 25) as isize) >> 25) as usize)
    }

    /// The raw address.
    pub const fn as_usize(self) -> usize {
        self.0
    }

    /// The 9-bit table index this address selects at `level` (2 = root).
    pub const fn index(self, level: usize) -> usize {
        (self.0 >> (12 + 9 * level)) & 0x1ff
    }

    /// The offset inside a page of `size`.
    pub const fn offset_in(self, size: PageSize) -> usize {
        self.0 & (size.bytes() - 1)
    }

    /// Whether the address is a multiple of `size`.
    pub const fn is_aligned(self, size: PageSize) -> bool {
        self.offset_in(size) == 0
    }

    /// The address rounded down to a multiple of `size`.
    pub const fn align_down(self, size: PageSize) -> Self {
        Self(self.0 & !(size.bytes() - 1))
    }

    /// `self + bytes`, if the result is canonical and does not wrap.
    pub fn checked_add(self, bytes: usize) -> Option<Self> {
        self.0
            .checked_add(bytes)
            .and_then(|addr| Self::new(addr).ok())
    }
}

impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtAddr({:#x})", self.0)
    }
}

impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A physical address Sv39 can express: below 2^56.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(usize);

impl PhysAddr {
    /// Bits of a physical address in Sv39 (44-bit PPN + 12-bit offset).
    pub const BITS: u32 = 56;

    /// Checks the address fits in 56 bits.
    pub const fn new(addr: usize) -> Result<Self, PagingError> {
        if addr >> Self::BITS == 0 {
            Ok(Self(addr))
        } else {
            Err(PagingError::PhysAddrTooLarge { pa: addr })
        }
    }

    /// The raw address.
    pub const fn as_usize(self) -> usize {
        self.0
    }

    /// The physical page number.
    pub const fn ppn(self) -> usize {
        self.0 >> 12
    }

    /// Whether the address is a multiple of `size`.
    pub const fn is_aligned(self, size: PageSize) -> bool {
        self.0 & (size.bytes() - 1) == 0
    }

    /// `self + bytes`, if still below 2^56.
    pub fn checked_add(self, bytes: usize) -> Option<Self> {
        self.0
            .checked_add(bytes)
            .and_then(|addr| Self::new(addr).ok())
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysAddr({:#x})", self.0)
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
