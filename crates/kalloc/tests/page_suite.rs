//! The shared suite: the same behaviour checks and regression cases run
//! against every page allocator.

mod page_common;

use kalloc::AllocError;
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator, LinearPageAllocator};
use page_common::{Arena, PAGE, SmallBuddy, Subject, add, check_stats};

const ALIGN: usize = 1 << 21;

/// An allocator whose single region has one metadata page followed by
/// exactly `pages` managed pages starting at a 2 MiB boundary.
fn exact<A: Subject>(arena: &Arena, pages: usize) -> (A, usize) {
    let base = arena.addr(ALIGN);
    for meta_pages in 1..16 {
        let mut a = A::fresh();
        let start = base - meta_pages * PAGE;
        add(&mut a, start, (pages + meta_pages) * PAGE).unwrap();
        if a.managed() == std::slice::from_ref(&(base..base + pages * PAGE)) {
            return (a, base);
        }
    }
    panic!("{}: metadata of more than 15 pages", A::NAME);
}

fn arena() -> Arena {
    Arena::new(1024, ALIGN)
}

fn allocates_exact_counts<A: Subject>() {
    let arena = arena();
    let (mut a, base) = exact::<A>(&arena, 64);
    let three = a.alloc_pages(3, PAGE).unwrap();
    assert_eq!(
        (a.used_pages(), a.available_pages()),
        (3, 61),
        "{}",
        A::NAME
    );
    let one = a.alloc_pages(1, PAGE).unwrap();
    assert_eq!(
        one,
        three + 3 * PAGE,
        "{}: the tail of 3 goes back",
        A::NAME
    );
    assert_eq!(three, base);
    check_stats(&a);
    assert_eq!(a.dealloc_pages(three, 3), Ok(()));
    assert_eq!(a.dealloc_pages(one, 1), Ok(()));
    assert_eq!(a.used_pages(), 0);
}

fn rejects_bad_parameters<A: Subject>() {
    let arena = arena();
    let (mut a, base) = exact::<A>(&arena, 16);
    assert_eq!(a.alloc_pages(0, PAGE), Err(AllocError::InvalidParam));
    assert_eq!(a.alloc_pages(1, 3 * PAGE), Err(AllocError::InvalidParam));
    assert_eq!(a.alloc_pages(1, 0), Err(AllocError::InvalidParam));
    assert_eq!(
        a.alloc_pages_at(base, 0, PAGE),
        Err(AllocError::InvalidParam)
    );
    assert_eq!(
        a.alloc_pages_at(base + PAGE, 1, 2 * PAGE),
        Err(AllocError::InvalidParam)
    );
    assert_eq!(
        a.alloc_pages_at(base + 1, 1, PAGE),
        Err(AllocError::InvalidParam)
    );
    // Regression: alignment of 2^63 and absurd counts must not overflow.
    let expect_big = if A::MAX_BLOCK.is_some() {
        AllocError::InvalidParam
    } else {
        AllocError::NoMemory
    };
    assert_eq!(a.alloc_pages(1, 1 << 63), Err(expect_big), "{}", A::NAME);
    assert_eq!(
        a.alloc_pages(usize::MAX, PAGE),
        Err(expect_big),
        "{}",
        A::NAME
    );
    assert_eq!(
        a.alloc_pages(17, PAGE),
        Err(if A::MAX_BLOCK.is_some_and(|m| m < 17) {
            AllocError::InvalidParam
        } else {
            AllocError::NoMemory
        })
    );
    assert_eq!(
        a.alloc_pages_at(base, usize::MAX, PAGE),
        Err(AllocError::OutOfRange)
    );
    assert_eq!(
        a.alloc_pages_at(base, 1, 1 << 63),
        Err(AllocError::InvalidParam)
    );
    assert_eq!(a.used_pages(), 0);
    assert_eq!(a.page_stats().free_pages, 16);
}

fn reports_bad_frees<A: Subject>() {
    let arena = arena();
    let (mut a, base) = exact::<A>(&arena, 32);
    let block = a.alloc_pages(4, PAGE).unwrap();
    let single = a.alloc_pages(1, PAGE).unwrap();
    let before = (a.page_stats(), a.used_pages());
    let cases = [
        (block, 3, AllocError::NotAllocated),
        (block, 5, AllocError::NotAllocated),
        (block + PAGE, 3, AllocError::NotAllocated),
        (block + 1, 4, AllocError::NotAllocated),
        (block, 0, AllocError::NotAllocated),
        (base + 20 * PAGE, 1, AllocError::DoubleFree),
        (base - PAGE, 1, AllocError::NotAllocated), // the metadata page
        (base + 40 * PAGE, 1, AllocError::OutOfRange),
        (usize::MAX - 5, 1, AllocError::OutOfRange),
        (single, usize::MAX, AllocError::NotAllocated),
    ];
    for (addr, count, err) in cases {
        assert_eq!(
            a.dealloc_pages(addr, count),
            Err(err),
            "{}: free({addr:#x}, {count})",
            A::NAME
        );
        assert_eq!(
            (a.page_stats(), a.used_pages()),
            before,
            "{}: changed by a bad free",
            A::NAME
        );
    }
    assert_eq!(a.dealloc_pages(block, 4), Ok(()));
    assert_eq!(a.dealloc_pages(block, 4), Err(AllocError::DoubleFree));
    assert_eq!(a.dealloc_pages(single, 1), Ok(()));
    assert_eq!(a.used_pages(), 0);
}

fn allocates_whole_region_at_once<A: Subject>() {
    let arena = arena();
    let (mut a, base) = exact::<A>(&arena, 16);
    assert_eq!(a.alloc_pages(16, PAGE), Ok(base), "{}", A::NAME);
    assert_eq!(a.alloc_pages(1, PAGE), Err(AllocError::NoMemory));
    assert_eq!(a.page_stats().largest_free_run, 0);
    assert_eq!(a.dealloc_pages(base, 16), Ok(()));
    assert_eq!(a.alloc_pages_at(base, 16, PAGE), Ok(base));
    assert_eq!(a.alloc_pages_at(base, 1, PAGE), Err(AllocError::NoMemory));
    assert_eq!(a.dealloc_pages(base, 16), Ok(()));
    assert_eq!(a.page_stats().free_blocks[4], 1, "{}", A::NAME);
}

fn refuses_tiny_overlapping_and_unaligned_regions<A: Subject>() {
    let arena = arena();
    let mut a = A::fresh();
    // Regression: too small for the metadata and one page.
    assert_eq!(
        add(&mut a, arena.addr(0), PAGE),
        Err(AllocError::InvalidParam)
    );
    assert_eq!(
        add(&mut a, arena.addr(100), 2 * PAGE),
        Err(AllocError::InvalidParam)
    );
    assert_eq!(add(&mut a, arena.addr(0), 0), Err(AllocError::InvalidParam));
    assert_eq!(
        add(&mut a, usize::MAX - PAGE, 2 * PAGE),
        Err(AllocError::InvalidParam)
    );
    assert_eq!(
        (a.total_pages(), a.alloc_pages(1, PAGE)),
        (0, Err(AllocError::NoMemory))
    );
    // Regression: unaligned edges are trimmed, never handed out.
    let (start, size) = (arena.addr(123), 40 * PAGE - 500);
    add(&mut a, start, size).unwrap();
    let managed = a.managed();
    assert_eq!(managed.len(), 1);
    assert!(managed[0].start >= start && managed[0].end <= start + size);
    assert_eq!(managed[0].start % PAGE, 0);
    assert_eq!(
        add(&mut a, start + size - 1, 8 * PAGE),
        Err(AllocError::MemoryOverlap)
    );
    assert_eq!(
        add(&mut a, arena.addr(0), 124),
        Err(AllocError::MemoryOverlap)
    );
    // A second region right after the first.
    add(&mut a, start + size, 100 * PAGE).unwrap();
    assert_eq!(a.managed().len(), 2);
    let total = a.total_pages();
    let mut got = Vec::new();
    while let Ok(p) = a.alloc_pages(1, PAGE) {
        assert!(a.managed().iter().any(|r| r.contains(&p)), "{}", A::NAME);
        got.push(p);
    }
    assert_eq!(got.len(), total, "{}", A::NAME);
    for p in got {
        a.dealloc_pages(p, 1).unwrap();
    }
    check_stats(&a);
}

fn finds_runs_across_word_boundaries<A: Subject>() {
    let arena = arena();
    let (mut a, base) = exact::<A>(&arena, 256);
    let pages: Vec<usize> = (0..256).map(|_| a.alloc_pages(1, PAGE).unwrap()).collect();
    // Free pages 60..70 and 120..136: runs that straddle bitmap words.
    for &p in pages[60..70].iter().chain(&pages[120..136]) {
        a.dealloc_pages(p, 1).unwrap();
    }
    assert_eq!(a.page_stats().largest_free_run, 16);
    if A::MAX_BLOCK.is_none() {
        assert_eq!(a.alloc_pages(10, PAGE), Ok(base + 60 * PAGE), "{}", A::NAME);
        assert_eq!(
            a.alloc_pages(16, PAGE),
            Ok(base + 120 * PAGE),
            "{}",
            A::NAME
        );
    } else {
        assert_eq!(
            a.alloc_pages_at(base + 60 * PAGE, 10, PAGE),
            Ok(base + 60 * PAGE)
        );
        assert_eq!(a.alloc_pages(16, 16 * PAGE), Err(AllocError::NoMemory));
        assert_eq!(
            a.alloc_pages_at(base + 120 * PAGE, 16, 8 * PAGE),
            Ok(base + 120 * PAGE)
        );
    }
    assert_eq!(a.alloc_pages(1, PAGE), Err(AllocError::NoMemory));
}

fn honours_alignment<A: Subject>() {
    let arena = arena();
    let (mut a, base) = exact::<A>(&arena, 64);
    let one = a.alloc_pages(1, PAGE).unwrap();
    let aligned = a.alloc_pages(2, 16 * PAGE).unwrap();
    assert_eq!(aligned % (16 * PAGE), 0);
    assert_eq!(aligned, base + 16 * PAGE, "{}", A::NAME);
    if A::MAX_BLOCK.is_some_and(|m| m < 64) {
        assert_eq!(a.alloc_pages(1, 64 * PAGE), Err(AllocError::InvalidParam));
        return;
    }
    assert_eq!(a.alloc_pages(1, 64 * PAGE), Err(AllocError::NoMemory));
    a.dealloc_pages(one, 1).unwrap();
    if A::MAX_BLOCK.is_some() {
        // The buddy serves alignment with a whole block of that order.
        assert_eq!(a.alloc_pages(1, 64 * PAGE), Err(AllocError::NoMemory));
        a.dealloc_pages(aligned, 2).unwrap();
    }
    assert_eq!(a.alloc_pages(1, 64 * PAGE), Ok(base), "{}", A::NAME);
}

macro_rules! suite {
    ($module:ident, $ty:ty) => {
        mod $module {
            use super::*;
            #[test]
            fn allocates_exact_counts() {
                super::allocates_exact_counts::<$ty>();
            }
            #[test]
            fn rejects_bad_parameters() {
                super::rejects_bad_parameters::<$ty>();
            }
            #[test]
            fn reports_bad_frees() {
                super::reports_bad_frees::<$ty>();
            }
            #[test]
            fn allocates_whole_region_at_once() {
                super::allocates_whole_region_at_once::<$ty>();
            }
            #[test]
            fn refuses_tiny_overlapping_and_unaligned_regions() {
                super::refuses_tiny_overlapping_and_unaligned_regions::<$ty>();
            }
            #[test]
            fn finds_runs_across_word_boundaries() {
                super::finds_runs_across_word_boundaries::<$ty>();
            }
            #[test]
            fn honours_alignment() {
                super::honours_alignment::<$ty>();
            }
        }
    };
}

suite!(buddy, BuddyPageAllocator);
suite!(small_buddy, SmallBuddy);
suite!(bitmap, BitmapPageAllocator);
suite!(linear, LinearPageAllocator);
