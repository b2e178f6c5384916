//! The bitmap page allocator (the ArceOS-style alternative): one bit per
//! page plus summary levels, so a first-fit search for N free pages with an
//! alignment skips fully used stretches 64, 4096, 262144... pages at a time.
//!
//! `meta` holds a zone's bitmaps and keeps them consistent, `summary` the
//! summary levels, `search` the first-fit search, `occupancy` the page and
//! start bits with the exact checks of `dealloc_pages`.

mod meta;
mod occupancy;
mod search;
mod summary;

use self::meta::BitmapMeta;
use super::DEFAULT_PAGE_SIZE;
use super::zoned::{ZonedPages, first_fit_allocator};

/// A first-fit bitmap allocator of `PAGE_SIZE`-byte pages with summary
/// levels (no capacity limit: each region's bitmaps are sized to it and
/// stored at its start, about 2.05 bits of metadata per page).
///
/// Allocation finds the next free page (or, for 128 pages or more, the next
/// wholly free word) through the summaries in O(levels), starting at a
/// per-size-class hint, then checks the run word by word; any alignment is
/// honoured (one that no page can meet is `NoMemory`). Errors are those of
/// [`BuddyPageAllocator`](super::BuddyPageAllocator), except that counts
/// and alignments of any size are valid requests.
pub struct BitmapPageAllocator<const PAGE_SIZE: usize = DEFAULT_PAGE_SIZE> {
    pages: ZonedPages<BitmapMeta>,
}

first_fit_allocator!(BitmapPageAllocator);
