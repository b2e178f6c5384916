//! Physical memory layout arithmetic for the boot path: a fixed-capacity set
//! of disjoint physical ranges, and the computation "RAM minus everything
//! that is reserved, trimmed to page boundaries" that yields the memory the
//! page allocator may own.
//!
//! No allocation and no architecture knowledge: the kernel feeds it the
//! ranges it found in the device tree and its own linker symbols, and the
//! host tests feed it adversarial layouts.

#![no_std]

#[cfg(test)]
extern crate std;

mod range;
mod set;

pub use range::PhysRange;
pub use set::RangeSet;

use core::fmt;

/// Why a layout computation was refused. Every variant carries the values
/// that caused it so the boot log can name the culprit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// A range whose end lies below its start.
    Inverted { start: u64, end: u64 },
    /// `base + size` does not fit in 64 bits.
    Overflow { base: u64, size: u64 },
    /// The result needs more ranges than the set can hold; the set is left
    /// exactly as it was before the failing operation.
    CapacityExceeded { capacity: usize },
    /// An alignment that is zero or not a power of two.
    BadAlignment { align: u64 },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Inverted { start, end } => {
                write!(f, "inverted range {start:#x}..{end:#x}")
            }
            Self::Overflow { base, size } => {
                write!(
                    f,
                    "range at {base:#x} of size {size:#x} overflows the address space"
                )
            }
            Self::CapacityExceeded { capacity } => {
                write!(f, "more than {capacity} disjoint ranges needed")
            }
            Self::BadAlignment { align } => {
                write!(f, "alignment {align:#x} is not a power of two")
            }
        }
    }
}

impl core::error::Error for LayoutError {}

/// The free physical memory: the union of `ram`, minus the union of
/// `reserved`, with every remaining range shrunk inward to `align`
/// boundaries (ranges that vanish are dropped).
///
/// Reserved ranges may overlap each other, straddle RAM boundaries or lie
/// outside RAM entirely; RAM ranges may overlap or touch (they are merged).
pub fn free_ranges<const N: usize>(
    ram: &[PhysRange],
    reserved: &[PhysRange],
    align: u64,
) -> Result<RangeSet<N>, LayoutError> {
    if !align.is_power_of_two() {
        return Err(LayoutError::BadAlignment { align });
    }
    let mut free = RangeSet::new();
    for &range in ram {
        free.insert(range)?;
    }
    for &hole in reserved {
        free.remove(hole)?;
    }
    free.align_inward(align)?;
    Ok(free)
}

#[cfg(test)]
mod tests;
