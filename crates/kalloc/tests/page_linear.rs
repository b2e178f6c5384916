//! Linear-scan-specific tests: first fit from the bottom, holes reused.

mod page_common;

use kalloc::page::LinearPageAllocator;
use kalloc::{AllocError, PageAllocator};
use page_common::{Arena, PAGE, Subject, add, check_stats};

#[test]
fn first_fit_reuses_the_lowest_hole_that_fits() {
    let arena = Arena::new(64, 1 << 21);
    let mut a = LinearPageAllocator::new();
    add(&mut a, arena.addr(0), 64 * PAGE).unwrap();
    let base = a.managed()[0].start;
    let blocks: Vec<usize> = (0..6).map(|_| a.alloc_pages(2, PAGE).unwrap()).collect();
    assert_eq!(blocks[5], base + 10 * PAGE);
    a.dealloc_pages(blocks[1], 2).unwrap();
    a.dealloc_pages(blocks[3], 2).unwrap();
    assert_eq!(a.alloc_pages(3, PAGE), Ok(base + 12 * PAGE));
    assert_eq!(a.alloc_pages(2, PAGE), Ok(base + 2 * PAGE));
    assert_eq!(a.alloc_pages(1, PAGE), Ok(base + 6 * PAGE));
    let s = check_stats(&a);
    assert_eq!(s.largest_free_run, a.total_pages() - 15);
    assert_eq!(a.dealloc_pages(blocks[1], 1), Err(AllocError::NotAllocated));
}
