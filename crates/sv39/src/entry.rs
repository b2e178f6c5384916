//! The Sv39 page-table entry: flag bits 0..9, PPN in bits 10..53, bits
//! 54..63 reserved (zero: Svpbmt and Svnapot are not used).

use core::fmt;

use crate::PhysAddr;

bitflags::bitflags! {
    /// The low ten bits of an entry.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PteFlags: u64 {
        /// Valid.
        const V = 1 << 0;
        /// Readable.
        const R = 1 << 1;
        /// Writable (requires R: W without R is reserved).
        const W = 1 << 2;
        /// Executable.
        const X = 1 << 3;
        /// Accessible from U-mode.
        const U = 1 << 4;
        /// Global: present in every address space.
        const G = 1 << 5;
        /// Accessed.
        const A = 1 << 6;
        /// Dirty.
        const D = 1 << 7;
        /// First bit reserved for software.
        const RSW0 = 1 << 8;
        /// Second bit reserved for software.
        const RSW1 = 1 << 9;
    }
}

impl PteFlags {
    /// The permission bits; any of them set makes a valid entry a leaf.
    pub const RWX: Self = Self::R.union(Self::W).union(Self::X);

    /// Whether these flags are a legal leaf: R or X set (otherwise the
    /// entry would be a table pointer), and not W without R (reserved).
    pub const fn is_valid_leaf(self) -> bool {
        let has_permission = self.intersects(Self::R.union(Self::X));
        let write_without_read = self.contains(Self::W) && !self.contains(Self::R);
        has_permission && !write_without_read
    }
}

impl fmt::Display for PteFlags {
    /// Compact `VRWXUGAD` form with `-` for clear bits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (flag, letter) in [
            (Self::V, 'V'),
            (Self::R, 'R'),
            (Self::W, 'W'),
            (Self::X, 'X'),
            (Self::U, 'U'),
            (Self::G, 'G'),
            (Self::A, 'A'),
            (Self::D, 'D'),
        ] {
            write!(f, "{}", if self.contains(flag) { letter } else { '-' })?;
        }
        Ok(())
    }
}

/// One 64-bit Sv39 entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct PageTableEntry(u64);

impl PageTableEntry {
    const PPN_SHIFT: u32 = 10;
    const PPN_MASK: u64 = (1 << 44) - 1;
    const RESERVED_MASK: u64 = !((1 << 54) - 1);

    /// The all-zero (invalid) entry.
    pub const INVALID: Self = Self(0);

    /// An entry pointing at `pa` with `flags`.
    pub const fn new(pa: PhysAddr, flags: PteFlags) -> Self {
        Self(((pa.ppn() as u64) << Self::PPN_SHIFT) | flags.bits())
    }

    /// A valid non-leaf entry pointing at the table in frame `table`.
    pub const fn table(table: PhysAddr) -> Self {
        Self::new(table, PteFlags::V)
    }

    /// Reinterprets a raw entry.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw entry.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The flag bits (bits 0..9).
    pub const fn flags(self) -> PteFlags {
        PteFlags::from_bits_truncate(self.0)
    }

    /// The physical address the PPN field names.
    pub const fn addr(self) -> PhysAddr {
        match PhysAddr::new((((self.0 >> Self::PPN_SHIFT) & Self::PPN_MASK) << 12) as usize) {
            Ok(pa) => pa,
            Err(_) => unreachable!(),
        }
    }

    /// V is set.
    pub const fn is_valid(self) -> bool {
        self.flags().contains(PteFlags::V)
    }

    /// Valid and any of R/W/X set: the walk stops here.
    pub const fn is_leaf(self) -> bool {
        self.is_valid() && self.flags().intersects(PteFlags::RWX)
    }

    /// Valid and no R/W/X: points to the next-level table.
    pub const fn is_table(self) -> bool {
        self.is_valid() && !self.flags().intersects(PteFlags::RWX)
    }

    /// Whether a valid entry uses an encoding the spec reserves (the
    /// hardware raises a page fault on it): W without R, reserved high
    /// bits, or A/D/U on a non-leaf entry.
    pub const fn is_reserved_encoding(self) -> bool {
        if !self.is_valid() {
            return false;
        }
        let flags = self.flags();
        let non_leaf_bad =
            self.is_table() && flags.intersects(PteFlags::A.union(PteFlags::D).union(PteFlags::U));
        (self.0 & Self::RESERVED_MASK) != 0
            || (flags.contains(PteFlags::W) && !flags.contains(PteFlags::R))
            || non_leaf_bad
    }
}

impl fmt::Debug for PageTableEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PTE({:#018x}: pa {} {})",
            self.0,
            self.addr(),
            self.flags()
        )
    }
}
