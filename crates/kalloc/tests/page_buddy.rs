//! Buddy-specific tests: per-order free lists (the buddyinfo view), split
//! and merge, exact-count tails, fixed-address carving, max-order blocks.

mod page_common;

use kalloc::page::BuddyPageAllocator;
use kalloc::stats::PageStatsSource;
use kalloc::{AllocError, PageAllocator};
use page_common::{Arena, PAGE, SmallBuddy, Subject, add, check_stats};

/// One metadata page, then `pages` pages from a `2 MiB` boundary.
fn exact<A: Subject>(arena: &Arena, pages: usize) -> (A, usize) {
    let base = arena.addr(1 << 21);
    let mut a = A::fresh();
    add(&mut a, base - PAGE, (pages + 1) * PAGE).unwrap();
    assert_eq!(
        a.managed(),
        std::slice::from_ref(&(base..base + pages * PAGE))
    );
    (a, base)
}

fn buddyinfo<A: Subject>(a: &A, orders: usize) -> Vec<usize> {
    check_stats(a).free_blocks[..orders].to_vec()
}

#[test]
fn splits_down_and_merges_back_up() {
    let arena = Arena::new(1024, 1 << 21);
    let (mut a, base) = exact::<BuddyPageAllocator>(&arena, 64);
    assert_eq!(buddyinfo(&a, 8), [0, 0, 0, 0, 0, 0, 1, 0]);
    let page = a.alloc_pages(1, PAGE).unwrap();
    assert_eq!(page, base);
    assert_eq!(buddyinfo(&a, 8), [1, 1, 1, 1, 1, 1, 0, 0]);
    assert_eq!(a.free_blocks(3), 1);
    a.dealloc_pages(page, 1).unwrap();
    assert_eq!(buddyinfo(&a, 8), [0, 0, 0, 0, 0, 0, 1, 0]);
}

#[test]
fn gives_back_the_tail_of_uneven_counts() {
    let arena = Arena::new(1024, 1 << 21);
    let (mut a, base) = exact::<BuddyPageAllocator>(&arena, 16);
    let five = a.alloc_pages(5, PAGE).unwrap();
    assert_eq!(five, base);
    // The order-3 block minus 5 pages: page 5 (order 0) and 6-7 (order 1).
    assert_eq!(buddyinfo(&a, 5), [1, 1, 0, 1, 0]);
    assert_eq!(a.used_pages(), 5);
    let align = a.alloc_pages(1, 2 * PAGE).unwrap();
    assert_eq!(align, base + 6 * PAGE);
    a.dealloc_pages(five, 5).unwrap();
    a.dealloc_pages(align, 1).unwrap();
    assert_eq!(buddyinfo(&a, 5), [0, 0, 0, 0, 1]);
}

#[test]
fn merges_at_the_top_order_in_any_free_order() {
    let arena = Arena::new(1024, 1 << 21);
    let (mut a, base) = exact::<SmallBuddy>(&arena, 64);
    assert_eq!(buddyinfo(&a, 6), [0, 0, 0, 0, 4, 0]);
    let pages: Vec<usize> = (0..64).map(|_| a.alloc_pages(1, PAGE).unwrap()).collect();
    assert_eq!(a.alloc_pages(1, PAGE), Err(AllocError::NoMemory));
    // Odd pages top down, then even pages bottom up.
    for &p in pages
        .iter()
        .skip(1)
        .step_by(2)
        .rev()
        .chain(pages.iter().step_by(2))
    {
        a.dealloc_pages(p, 1).unwrap();
    }
    assert_eq!(buddyinfo(&a, 6), [0, 0, 0, 0, 4, 0]);
    let top = a.alloc_pages(16, 16 * PAGE).unwrap();
    assert!((top - base) % (16 * PAGE) == 0 && top < base + 64 * PAGE);
    assert_eq!(a.alloc_pages(17, PAGE), Err(AllocError::InvalidParam));
}

#[test]
fn carves_fixed_ranges_out_of_free_blocks() {
    let arena = Arena::new(1024, 1 << 21);
    let (mut a, base) = exact::<BuddyPageAllocator>(&arena, 64);
    assert_eq!(
        a.alloc_pages_at(base + 5 * PAGE, 7, PAGE),
        Ok(base + 5 * PAGE)
    );
    assert_eq!(a.used_pages(), 7);
    // Left: 0-3 (o2), 4 (o0); right: 12-15 (o2), 16-31 (o4), 32-63 (o5).
    assert_eq!(buddyinfo(&a, 7), [1, 0, 2, 0, 1, 1, 0]);
    assert_eq!(
        a.alloc_pages_at(base + 11 * PAGE, 2, PAGE),
        Err(AllocError::NoMemory)
    );
    assert_eq!(
        a.alloc_pages_at(base + 63 * PAGE, 2, PAGE),
        Err(AllocError::OutOfRange)
    );
    assert_eq!(a.dealloc_pages(base + 5 * PAGE, 7), Ok(()));
    assert_eq!(buddyinfo(&a, 7), [0, 0, 0, 0, 0, 0, 1]);
}

#[test]
fn region_edges_cut_into_maximal_aligned_blocks() {
    let arena = Arena::new(1024, 1 << 21);
    let mut a = SmallBuddy::fresh();
    // One metadata page, then managed frames 3..=40 relative to the
    // 2 MiB boundary (+ an unaligned tail).
    add(&mut a, arena.addr((1 << 21) + 2 * PAGE), 38 * PAGE + 100).unwrap();
    assert_eq!(a.total_pages(), 37);
    // 3 | 4-7 | 8-15 | 16-31 | 32-39
    assert_eq!(buddyinfo(&a, 5), [1, 0, 1, 2, 1]);
}

#[cfg(not(miri))]
#[test]
fn serves_one_gib_blocks_with_under_one_percent_metadata() {
    const GIB: usize = 1 << 30;
    let arena = Arena::new(2 * GIB / PAGE, GIB);
    let mut a = BuddyPageAllocator::new();
    let start = arena.addr(GIB / 2);
    add(&mut a, start, GIB / 2 + GIB).unwrap();
    let region_pages = (GIB / 2 + GIB) / PAGE;
    assert!(
        a.total_pages() * 100 >= region_pages * 99,
        "metadata over 1%"
    );
    let block = a.alloc_pages(1 << 18, GIB).unwrap();
    assert_eq!(block, arena.addr(GIB));
    assert_eq!(a.alloc_pages(1 << 18, GIB), Err(AllocError::NoMemory));
    a.dealloc_pages(block, 1 << 18).unwrap();
    assert_eq!(a.page_stats().free_blocks[18], 1);
}
