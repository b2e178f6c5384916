//! The per-hart page lists in the running kernel: a page parked on
//! another hart is still a double free, `alloc_at` finds a page parked in
//! a list, and no request fails while pages sit in another hart's list.

use super::*;
use crate::ktest::prelude::*;
use alloc::vec::Vec;
use core::sync::atomic::AtomicUsize;

/// The hart the tests park pages on, and the page handed to it.
static OTHER_SLOT: AtomicUsize = AtomicUsize::new(usize::MAX);
static HANDED_OVER: AtomicUsize = AtomicUsize::new(0);

/// The next online slot after this hart's, when the lists are on and
/// frees use them.
fn other_slot() -> Option<usize> {
    let lists_serve_frees = PAGES.lists_enabled() && !hooks::PAGES_FILTERED.load(Ordering::Relaxed);
    lists_serve_frees.then(another_hart).flatten()
}

/// On the other hart: frees the handed-over page into its own list.
fn free_handed_over(slot: usize) {
    if slot == OTHER_SLOT.load(Ordering::Acquire) {
        let freed = free_plain(HANDED_OVER.load(Ordering::Acquire), 1);
        HANDED_OVER.store(usize::from(freed.is_ok()), Ordering::Release);
    }
}

/// On the other hart: fills its single-page list.
fn park_pages(slot: usize) {
    if slot != OTHER_SLOT.load(Ordering::Acquire) {
        return;
    }
    let mut taken = [0usize; 48];
    for page in &mut taken {
        *page = alloc_plain(1, PAGE_SIZE).unwrap_or(0);
    }
    for page in taken.into_iter().filter(|&page| page != 0) {
        let _ = free_plain(page, 1);
    }
}

ktest! {
    fn a_page_parked_on_another_hart_is_a_double_free_and_alloc_at_finds_it() {
        let Some(other) = other_slot() else {
            return Ok(());
        };
        OTHER_SLOT.store(other, Ordering::Release);
        let page = alloc_plain(1, PAGE_SIZE);
        kassert!(page.is_ok(), "a page: {page:?}");
        let page = page.expect("checked");
        HANDED_OVER.store(page, Ordering::Release);
        crate::arch::smp::run_on_all_harts(free_handed_over);
        kassert_eq!(HANDED_OVER.load(Ordering::Acquire), 1, "the other hart's free was refused");
        kassert!(parked_per_hart()[other] >= 1);
        kassert_eq!(free_plain(page, 1), Err(kalloc::AllocError::DoubleFree));
        // The page sits in the other hart's list: alloc_at drains it out.
        kassert_eq!(alloc_at(page, 1, PAGE_SIZE), Ok(page));
        kassert_eq!(parked_per_hart()[other], 0);
        kassert_eq!(free_plain(page, 1), Ok(()));
        drain_lists();
        Ok(())
    }
}

ktest! {
    fn no_page_request_fails_while_pages_sit_in_another_harts_list() {
        let Some(other) = other_slot() else {
            return Ok(());
        };
        OTHER_SLOT.store(other, Ordering::Release);
        crate::arch::smp::run_on_all_harts(park_pages);
        let parked = parked_per_hart()[other];
        kassert!(parked > 0, "nothing parked on slot {other}");
        let this_hart = drain_lists_of_this_hart();
        // Both vectors are allocated before memory runs out: afterwards
        // the heap could not grow for them.
        let mut taken: Vec<(usize, usize)> = Vec::with_capacity(4096);
        let mut singles: Vec<usize> = Vec::with_capacity(4096);
        // Every free page goes to this test, largest blocks first, without
        // touching the other hart's list.
        for order in (0..=16).rev() {
            while taken.len() < taken.capacity() {
                match with(|a| a.alloc_pages(1 << order, PAGE_SIZE)) {
                    Ok(addr) => taken.push((addr, 1 << order)),
                    Err(_) => break,
                }
            }
        }
        // Single pages until the other hart's list has been drained: what
        // the heap's reclaim or memdebug's quarantine give back may serve
        // the first ones, but none may fail while pages are parked, and
        // with memory exhausted the drain must come (parked pages need not
        // coalesce, so only single pages are sure to be served by them).
        let mut refused = None;
        while singles.len() < singles.capacity() && parked_per_hart()[other] > 0 {
            let parked_before = parked_per_hart()[other];
            match alloc_plain(1, PAGE_SIZE) {
                Ok(page) => singles.push(page),
                Err(error) => {
                    refused = Some((error, parked_before));
                    break;
                }
            }
        }
        let parked_after = parked_per_hart()[other];
        for &(addr, count) in &taken {
            kassert_eq!(with(|a| a.dealloc_pages(addr, count)), Ok(()));
        }
        for &page in &singles {
            kassert_eq!(free_plain(page, 1), Ok(()));
        }
        drain_lists();
        kassert!(taken.len() < taken.capacity(), "memory not exhausted in {} blocks", taken.len());
        kassert!(
            refused.is_none(),
            "a page refused ({refused:?}, pages parked on slot {other} then) after {} served; \
             {parked} parked at the start ({this_hart} here)",
            singles.len()
        );
        kassert_eq!(parked_after, 0, "slot {other} kept its pages after {} pages served", singles.len());
        Ok(())
    }
}

/// Empties this hart's lists, so only the other hart's pages remain.
fn drain_lists_of_this_hart() -> usize {
    PAGES.drain_this_cpu()
}

ktest! {
    fn orders_up_to_max_order_hold_every_free_block() {
        let top = max_order();
        let stats = stats();
        kassert!(1usize << top <= stats.total_pages, "order {top} of {} pages", stats.total_pages);
        kassert!(stats.free_blocks[top + 1..].iter().all(|&n| n == 0), "a free block above order {top}");
        Ok(())
    }
}
