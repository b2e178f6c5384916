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

/// First fit exactly: random allocations (counts 1..300, alignments up to
/// 128 pages) and frees, each allocation compared with the lowest aligned
/// free run a brute-force scan of a shadow page array finds. Covers the
/// word-at-a-time run walk for small counts and its search hints.
#[test]
fn allocations_are_exactly_first_fit() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    #[cfg(not(miri))]
    let (pages, steps) = (3_000, 4_000);
    #[cfg(miri)]
    let (pages, steps) = (700, 150);
    let arena = Arena::new(pages + 64, 1 << 21);
    let mut a = BitmapPageAllocator::new();
    add(&mut a, arena.addr(0), (pages + 64) * PAGE).unwrap();
    let region = a.managed()[0].clone();
    let total = a.total_pages();
    let mut taken = vec![false; total];
    let mut live: Vec<(usize, usize)> = Vec::new();
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..steps {
        if live.is_empty() || rng.gen_bool(0.55) {
            let count = if rng.gen_bool(0.8) {
                rng.gen_range(1..70)
            } else {
                rng.gen_range(1..300)
            };
            let align_pages = 1usize << rng.gen_range(0..=7);
            let expected = (0..total).find(|&p| {
                (region.start / PAGE + p).is_multiple_of(align_pages)
                    && p + count <= total
                    && taken[p..p + count].iter().all(|t| !t)
            });
            let got = a.alloc_pages(count, align_pages * PAGE).ok();
            assert_eq!(
                got.map(|addr| (addr - region.start) / PAGE),
                expected,
                "count {count}, align {align_pages}"
            );
            if let Some(p) = expected {
                taken[p..p + count].fill(true);
                live.push((p, count));
            }
        } else {
            let (p, count) = live.swap_remove(rng.gen_range(0..live.len()));
            a.dealloc_pages(region.start + p * PAGE, count).unwrap();
            taken[p..p + count].fill(false);
        }
    }
    check_stats(&a);
}
