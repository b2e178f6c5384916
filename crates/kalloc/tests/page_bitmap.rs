//! Bitmap-specific tests: searches that must descend several summary
//! levels, and runs that straddle words and summary blocks.

mod page_common;

use kalloc::page::BitmapPageAllocator;
use kalloc::{AllocError, PageAllocator};
use page_common::{Arena, PAGE, Subject, add, check_stats};

#[cfg(not(miri))]
const PAGES: usize = 300_000; // three summary levels
#[cfg(miri)]
const PAGES: usize = 9_000; // two summary levels

#[test]
fn finds_the_last_free_page_through_every_level() {
    let arena = Arena::new(PAGES + 64, 1 << 21);
    let mut a = BitmapPageAllocator::new();
    add(&mut a, arena.addr(0), (PAGES + 64) * PAGE).unwrap();
    let region = a.managed()[0].clone();
    let total = a.total_pages();
    assert_eq!(region.len() / PAGE, total);
    // Everything but the last page and one page at a word boundary.
    assert_eq!(
        a.alloc_pages_at(region.start, total - 1, PAGE),
        Ok(region.start)
    );
    let last = region.start + (total - 1) * PAGE;
    assert_eq!(a.alloc_pages(1, PAGE), Ok(last));
    assert_eq!(a.alloc_pages(1, PAGE), Err(AllocError::NoMemory));
    a.dealloc_pages(last, 1).unwrap();
    a.dealloc_pages(region.start, total - 1).unwrap();
    // A run crossing a 4096-page summary block.
    let first = a.alloc_pages_at(region.start, 4090, PAGE).unwrap();
    let run = a.alloc_pages(12, PAGE).unwrap();
    assert_eq!(run, region.start + 4090 * PAGE);
    assert_eq!(a.alloc_pages(1, PAGE), Ok(region.start + 4102 * PAGE));
    check_stats(&a);
    a.dealloc_pages(first, 4090).unwrap();
    assert_eq!(
        a.alloc_pages(4091, PAGE).unwrap() - region.start,
        4103 * PAGE
    );
    assert_eq!(a.alloc_pages(4090, PAGE), Ok(region.start));
}
