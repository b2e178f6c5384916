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
mod occupancy;
mod zone;

pub use bitmap::BitmapPageAllocator;
pub use buddy::{BuddyPageAllocator, DEFAULT_MAX_ORDER};
pub use linear::LinearPageAllocator;

use crate::{AllocError, AllocResult};

/// The default page size of every page allocator: 4 KiB.
pub const DEFAULT_PAGE_SIZE: usize = 4096;

/// Checks an alignment request (a power of two; below `PAGE_SIZE` means
/// `PAGE_SIZE`) and returns it as a page order.
fn check_align<const PAGE_SIZE: usize>(align: usize) -> AllocResult<usize> {
    if !align.is_power_of_two() {
        return Err(AllocError::InvalidParam);
    }
    Ok((align.max(PAGE_SIZE) / PAGE_SIZE).trailing_zeros() as usize)
}
