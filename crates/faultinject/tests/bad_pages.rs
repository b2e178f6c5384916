//! The memory-failure API over the real buddy allocator: a bad page is
//! never handed out again, whether it was free or in use when marked.

use std::alloc::Layout;

use faultinject::{BadPage, BadPageFilter};
use kalloc::page::BuddyPageAllocator;
use kalloc::{AllocError, BaseAllocator, PageAllocator};

const PAGE: usize = 4096;

/// A 1 MiB-aligned host region, freed on drop.
struct Region(*mut u8, Layout);

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `filter` with this layout.
        unsafe { std::alloc::dealloc(self.0, self.1) }
    }
}

/// A buddy allocator over a fresh host region (keep the region alive
/// while the allocator is used).
fn filter(pages: usize) -> (BadPageFilter<BuddyPageAllocator, 8>, usize, Region) {
    let layout = Layout::from_size_align(pages * PAGE, 1 << 20).unwrap();
    // SAFETY: non-zero size.
    let region = Region(unsafe { std::alloc::alloc(layout) }, layout);
    let mut filter = BadPageFilter::new(BuddyPageAllocator::new());
    // SAFETY: the region is host memory owned by the allocator while it lives.
    unsafe {
        filter
            .init(region.0.expose_provenance(), layout.size())
            .unwrap()
    };
    let first = filter.inner().regions().next().unwrap().start;
    (filter, first, region)
}

/// Allocates single pages until none is left; returns them.
fn drain(filter: &mut BadPageFilter<BuddyPageAllocator, 8>) -> Vec<usize> {
    std::iter::from_fn(|| filter.alloc_pages(1, PAGE).ok()).collect()
}

#[test]
fn a_free_bad_page_is_carved_out_and_never_returned() {
    let (mut filter, first, _region) = filter(256);
    let total = filter.total_pages();
    let bad = first + 37 * PAGE;
    assert_eq!(filter.mark_bad(bad + 123), Ok(BadPage::Isolated));
    assert_eq!(filter.mark_bad(bad), Ok(BadPage::AlreadyBad));
    assert!(filter.is_bad(bad + 4095) && !filter.is_bad(bad + PAGE));
    assert_eq!(filter.total_pages(), total - 1);
    assert_eq!(filter.used_pages(), 0);
    let pages = drain(&mut filter);
    assert_eq!(pages.len(), total - 1);
    assert!(!pages.contains(&bad));
    // Large blocks still come from around the hole once pages are back.
    for page in pages {
        filter.dealloc_pages(page, 1).unwrap();
    }
    assert!(filter.alloc_pages(32, 32 * PAGE).is_ok());
    assert_eq!(
        filter
            .alloc_pages(64, 64 * PAGE)
            .map(|a| (a..a + 64 * PAGE).contains(&bad)),
        Ok(false)
    );
}

#[test]
fn a_bad_page_in_use_is_isolated_when_its_block_is_freed() {
    let (mut filter, _, _region) = filter(64);
    let block = filter.alloc_pages(8, PAGE).unwrap();
    let bad = block + 5 * PAGE;
    assert_eq!(filter.mark_bad(bad), Ok(BadPage::Pending));
    assert_eq!(filter.bad_pages(), (0, 1));
    filter.dealloc_pages(block, 8).unwrap();
    assert_eq!(filter.bad_pages(), (1, 0));
    assert!(!drain(&mut filter).contains(&bad));
}

#[test]
fn frees_naming_an_isolated_page_and_marks_outside_ram_are_refused() {
    let (mut filter, first, _region) = filter(64);
    filter.mark_bad(first).unwrap();
    assert_eq!(
        filter.dealloc_pages(first, 1),
        Err(AllocError::NotAllocated)
    );
    assert_eq!(
        filter.mark_bad(first + 1000 * PAGE),
        Err(AllocError::OutOfRange)
    );
    for i in 1..8 {
        filter.mark_bad(first + i * PAGE).unwrap();
    }
    // The list of bad pages is full.
    assert_eq!(filter.mark_bad(first + 9 * PAGE), Err(AllocError::NoMemory));
}
