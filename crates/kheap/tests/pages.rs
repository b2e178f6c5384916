//! The per-CPU page lists: the fast path, exact double frees through the
//! state table, frees the lists did not hand out, draining, and no
//! request failing while blocks sit in another CPU's list.

mod common;

use std::sync::mpsc;

use common::{PAGE, TestCpu, set_cpu};
use kalloc::page::BuddyPageAllocator;
use kalloc::{AllocError, BaseAllocator, PageAllocator};
use kheap::{PageCaches, PageState, page_list_capacity};

type Pages = PageCaches<TestCpu, BuddyPageAllocator, { common::CPUS }>;

/// Page caches over `pages` fresh pages, lists on, leaked.
fn page_caches(pages: usize) -> &'static Pages {
    let caches: &'static Pages = Box::leak(Box::new(PageCaches::new("pages")));
    common::keep(caches);
    let arena = std::alloc::Layout::from_size_align(pages * PAGE, 8 * PAGE).unwrap();
    // SAFETY: a non-zero layout.
    let start = unsafe { std::alloc::alloc(arena) };
    assert!(!start.is_null());
    common::keep(start);
    let mut buddy = BuddyPageAllocator::new();
    // SAFETY: fresh memory, leaked, used by nothing else.
    unsafe { buddy.add_memory(start.expose_provenance(), pages * PAGE) }.unwrap();
    caches.init(buddy);
    let states: &'static [PageState] = Box::leak((0..pages).map(|_| PageState::new()).collect());
    common::keep(states.as_ptr());
    caches.enable_lists(states, start.addr());
    caches
}

fn used(caches: &Pages) -> usize {
    caches.with(|buddy| buddy.used_pages()).unwrap()
}

#[test]
fn a_freed_page_comes_back_on_the_same_cpu_without_the_lock() {
    let caches = page_caches(256);
    set_cpu(0);
    let page = caches.alloc(1, PAGE).unwrap();
    caches.free(page, 1).unwrap();
    let locked = caches.stats().lock_acquisitions;
    assert_eq!(caches.alloc(1, PAGE).unwrap(), page);
    caches.free(page, 1).unwrap();
    assert_eq!(caches.stats().lock_acquisitions, locked);
}

#[test]
fn a_second_free_of_a_parked_block_is_a_double_free_on_any_cpu() {
    let caches = page_caches(256);
    set_cpu(1);
    let block = caches.alloc(4, 4 * PAGE).unwrap();
    assert_eq!(block % (4 * PAGE), 0, "naturally aligned");
    caches.free(block, 4).unwrap();
    for cpu in [1, 2] {
        set_cpu(cpu);
        assert_eq!(caches.free(block, 4), Err(AllocError::DoubleFree));
    }
    set_cpu(1);
    caches.drain_this_cpu();
    assert_eq!(
        caches.free(block, 4),
        Err(AllocError::DoubleFree),
        "the allocator knows it free"
    );
}

#[test]
fn frees_the_lists_did_not_hand_out_are_judged_by_the_allocator() {
    let caches = page_caches(256);
    set_cpu(0);
    let block = caches.alloc(2, PAGE).unwrap();
    assert_eq!(
        caches.free(block, 1),
        Err(AllocError::NotAllocated),
        "wrong size"
    );
    assert_eq!(
        caches.free(block + PAGE, 2),
        Err(AllocError::NotAllocated),
        "not a start"
    );
    let big = caches.alloc(16, PAGE).unwrap();
    caches.free(big, 16).unwrap();
    assert_eq!(caches.free(big, 16), Err(AllocError::DoubleFree));
    caches.free(block, 2).unwrap();
}

#[test]
fn a_full_list_gives_half_back_and_a_drain_gives_everything_back() {
    let caches = page_caches(1024);
    set_cpu(3);
    let before = used(caches);
    let pages: Vec<usize> = (0..200).map(|_| caches.alloc(1, PAGE).unwrap()).collect();
    for page in pages {
        caches.free(page, 1).unwrap();
    }
    let parked = caches.stats().parked_blocks[0];
    assert!(parked <= page_list_capacity(0), "{parked} parked");
    assert_eq!(used(caches), before + parked);
    assert_eq!(caches.drain_this_cpu(), parked);
    assert_eq!(used(caches), before);
}

#[test]
fn no_request_fails_while_blocks_sit_in_another_cpus_list() {
    let caches = page_caches(64);
    let (parked_tx, parked_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        set_cpu(1);
        let pages: Vec<usize> = (0..40).map(|_| caches.alloc(1, PAGE).unwrap()).collect();
        for page in pages {
            caches.free(page, 1).unwrap();
        }
        parked_tx.send(caches.parked_per_cpu()[1]).unwrap();
        while stop_rx.try_recv().is_err() {
            caches.serve_drain_requests();
            std::thread::yield_now();
        }
    });
    let parked = parked_rx.recv().unwrap();
    assert!(parked > 0);
    set_cpu(0);
    let mut plain = Vec::new();
    while let Ok(block) = caches.alloc(8, 8 * PAGE) {
        plain.push(block);
    }
    let mut reclaimed = 0;
    while let Ok(block) = caches.alloc_or_reclaim(8, 8 * PAGE) {
        plain.push(block);
        reclaimed += 1;
    }
    assert!(
        reclaimed > 0,
        "nothing came back from CPU 1's {parked} parked pages"
    );
    assert_eq!(caches.parked_per_cpu()[1], 0);
    stop_tx.send(()).unwrap();
    other.join().unwrap();
    for block in plain {
        caches.free(block, 8).unwrap();
    }
}
