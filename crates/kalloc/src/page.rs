//! Page-granular allocators: buddy (default), hierarchical bitmap, linear-scan baseline.
//!
//! All three implement [`PageAllocator`](crate::PageAllocator) and
//! [`PageStatsSource`](crate::stats::PageStatsSource) with the same error
//! behaviour, take several disjoint regions, and keep their metadata at the
//! start of each region (see `docs/page-allocators.md`).

mod bitmap;
pub(crate) mod bits;
mod buddy;
mod linear;
mod zone;
mod zoned;

pub use bitmap::BitmapPageAllocator;
pub use buddy::{BuddyPageAllocator, DEFAULT_MAX_ORDER};
pub use linear::LinearPageAllocator;

use crate::{AllocError, AllocResult};

/// The default page size of every page allocator: 4 KiB.
pub const DEFAULT_PAGE_SIZE: usize = 4096;

/// Checks an alignment request (a power of two; below `PAGE_SIZE` means
/// `PAGE_SIZE`) and returns it as a page order.
#[inline]
fn check_align(align: usize, page_size: usize) -> AllocResult<usize> {
    if !align.is_power_of_two() {
        return Err(AllocError::InvalidParam);
    }
    // Both are powers of two: the quotient's log without a division.
    Ok((align.max(page_size).trailing_zeros() - page_size.trailing_zeros()) as usize)
}
