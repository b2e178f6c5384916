//! The one error type every allocator of the crate returns.

use core::fmt;

/// Why an allocator refused an operation.
///
/// Every variant is returned by at least one allocator; a refused operation
/// never changes the allocator's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocError {
    /// An impossible request: zero pages or bytes where that makes no sense,
    /// an alignment that is not a power of two or larger than supported, a
    /// size that overflows, a region too small to hold anything.
    InvalidParam,
    /// `add_memory` was given a range that overlaps memory already managed.
    MemoryOverlap,
    /// The request is valid but no free block can satisfy it.
    NoMemory,
    /// The address is inside managed memory but is not the start of a live
    /// block, or the size/layout given does not match the block.
    NotAllocated,
    /// The block is already free.
    DoubleFree,
    /// The address lies outside every managed region.
    OutOfRange,
}

/// The result of an allocator operation.
pub type AllocResult<T = ()> = Result<T, AllocError>;

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllocError::InvalidParam => "invalid parameter",
            AllocError::MemoryOverlap => "memory overlaps a managed region",
            AllocError::NoMemory => "out of memory",
            AllocError::NotAllocated => "not the start of a live block (or wrong size)",
            AllocError::DoubleFree => "block is already free",
            AllocError::OutOfRange => "address outside every managed region",
        })
    }
}

impl core::error::Error for AllocError {}
