//! A page marked bad never comes back: checked each time by allocating
//! every free page. Covers a free page inside a larger free
//! block, an allocated page (isolated when its block is freed), a page
//! backing a slab (the slab is retired), and the `badmem=` boot pages.
//! Marked pages stay out of service for the rest of the run.

use super::*;
use crate::ktest::prelude::*;
use alloc::vec::Vec;
use core::alloc::Layout;

/// Allocates every free page, shows each to `seen`, then frees them all.
/// Each step takes a block of the largest order the allocator reports
/// free, not a single page: with `memdebug=` on, the debug table holds one
/// entry per live block and would fill long before memory does (3584
/// entries against about 32000 pages), which ended an earlier version of
/// this sweep after its first 14 MiB. Asking only for what is free also
/// keeps the sweep from provoking out-of-memory reports. The blocks are
/// chained through their first two words, so nothing else allocates
/// meanwhile.
#[allow(
    clippy::result_large_err,
    reason = "a test helper, with a test's signature"
)]
fn sweep(mut seen: impl FnMut(usize)) -> crate::ktest::TestResult {
    // Pages in memdebug's quarantine would sit the sweep out.
    settle();
    let free_before = pages::stats().free_pages;
    let mut shown = 0;
    let mut head = 0usize;
    let mut outcome = Ok(());
    loop {
        let stats = pages::stats();
        let Some(order) = stats.free_blocks.iter().rposition(|&blocks| blocks > 0) else {
            break;
        };
        let count = 1 << order;
        // From the allocator itself: the harts' lists (drained by
        // `settle`) must not keep a batch of what the sweep takes.
        let Ok(block) = pages::with(|a| a.alloc_pages(count, PAGE_SIZE)) else {
            outcome = Err(crate::ktest::Failure::new(format_args!(
                "a free block of {count} pages was reported but could not be allocated"
            )));
            break;
        };
        (0..count).for_each(|page| seen(block + page * PAGE_SIZE));
        shown += count;
        // SAFETY: a block just allocated, in the linear map, ours, at least
        // a page long.
        unsafe { (block as *mut [usize; 2]).write([head, count]) };
        head = block;
    }
    let left = pages::stats().free_pages;
    while head != 0 {
        // SAFETY: a block of the chain above, still ours.
        let [next, count] = unsafe { (head as *const [usize; 2]).read() };
        pages::with(|a| a.dealloc_pages(head, count)).expect("a block the sweep allocated");
        head = next;
    }
    settle();
    outcome?;
    kassert_eq!(left, 0, "the sweep ended with free pages left");
    // Independent of how the loop ended: every page free at the start was
    // shown, once.
    kassert_eq!(
        shown,
        free_before,
        "pages shown against pages free before the sweep"
    );
    Ok(())
}

/// Frees reach the page allocator now: with `memdebug=` on, its layers
/// hold freed blocks in quarantine first, and the harts' caches and page
/// lists hold freed objects and pages.
fn settle() {
    crate::memdiag::shrink();
    pages::drain_lists();
}

ktest! {
    fn a_free_bad_page_is_carved_out_of_a_larger_free_block() {
        // A 16-page block, freed again: its pages sit in a free block of at
        // least that size.
        let block = pages::alloc(16, 16 * PAGE_SIZE).map_err(|e| crate::ktest::Failure::new(format_args!("{e}")))?;
        pages::free(block, 16).expect("just allocated");
        settle();
        let bad = block + 5 * PAGE_SIZE;
        let (isolated, pending) = counts();
        let used = pages::usage().0;
        kassert_eq!(mark_page_bad(arch::virt_to_phys(bad)), Ok(BadPage::Isolated));
        kassert_eq!(mark_page_bad(arch::virt_to_phys(bad)), Ok(BadPage::AlreadyBad));
        kassert_eq!(counts(), (isolated + 1, pending));
        kassert_eq!(pages::usage().0, used + 1, "the isolated page counts as used");
        let (mut handed_out, mut neighbours) = (false, 0);
        sweep(|page| {
            handed_out |= page == bad;
            neighbours += usize::from(page == bad - PAGE_SIZE || page == bad + PAGE_SIZE);
        })?;
        kassert!(!handed_out, "bad page {bad:#x} handed out");
        kassert_eq!(neighbours, 2, "the pages around the bad one stay in service");
        kassert!(pages::free(bad, 1).is_err(), "a free of the isolated page was accepted");
        kassert_eq!(pages::usage().0, used + 1);
        Ok(())
    }
}

ktest! {
    fn an_allocated_bad_page_is_isolated_when_its_block_is_freed() {
        let block = pages::alloc(4, PAGE_SIZE).map_err(|e| crate::ktest::Failure::new(format_args!("{e}")))?;
        let bad = block + 2 * PAGE_SIZE;
        let (isolated, pending) = counts();
        kassert_eq!(mark_page_bad(arch::virt_to_phys(bad)), Ok(BadPage::Pending));
        kassert_eq!(counts(), (isolated, pending + 1));
        kassert!(is_bad(arch::virt_to_phys(bad)));
        // Marking the page asks the other harts to drain their lists; let
        // them finish, so that only this test's free moves the figures.
        settle();
        let used = pages::usage().0;
        pages::free(block, 4).expect("the block is live");
        settle();
        kassert_eq!(counts(), (isolated + 1, pending), "isolated by the free");
        kassert_eq!(pages::usage().0, used - 3, "the three good pages went back");
        let (mut handed_out, mut good) = (false, 0);
        sweep(|page| {
            handed_out |= page == bad;
            good += usize::from((block..block + 4 * PAGE_SIZE).contains(&page));
        })?;
        kassert!(!handed_out, "bad page {bad:#x} handed out");
        kassert_eq!(good, 3, "good pages of the block back in service");
        Ok(())
    }
}

ktest! {
    fn a_bad_page_backing_a_slab_retires_the_slab() {
        if crate::memory::heap::kind() != Some(crate::memory::heap::HeapKind::Slab) {
            crate::print!("(alloc= has no slabs) ");
            return Ok(());
        }
        let layout = Layout::from_size_align(1000, 8).expect("valid");
        // Enough objects that the last ones sit in slabs holding only ours.
        let mut objects: Vec<*mut u8> = Vec::with_capacity(64);
        for _ in 0..64 {
            // SAFETY: non-zero size.
            let object = unsafe { alloc::alloc::alloc(layout) };
            kassert!(!object.is_null(), "allocation failed");
            // SAFETY: a fresh object of 1000 bytes.
            unsafe { core::ptr::write_bytes(object, 0x5a, layout.size()) };
            objects.push(object);
        }
        let victim = *objects.last().expect("64 objects");
        let bad = victim as usize & !(PAGE_SIZE - 1);
        let (isolated, pending) = counts();
        kassert_eq!(mark_page_bad(arch::virt_to_phys(bad)), Ok(BadPage::Pending));
        // Objects freed into the retired slab are not handed out again.
        // SAFETY: live objects of `layout`.
        unsafe {
            for &object in objects.iter().rev().take(4) {
                alloc::alloc::dealloc(object, layout);
            }
        }
        objects.truncate(60);
        let mut later: Vec<*mut u8> = Vec::with_capacity(200);
        for _ in 0..200 {
            // SAFETY: non-zero size.
            let object = unsafe { alloc::alloc::alloc(layout) };
            kassert!(!object.is_null(), "allocation failed");
            later.push(object);
        }
        let reused = later.iter().any(|&o| o as usize & !(PAGE_SIZE - 1) == bad);
        // SAFETY: live objects of `layout`.
        unsafe {
            for &object in objects.iter().chain(&later) {
                kassert!(object.read() == 0x5a || later.contains(&object), "object {object:p} damaged");
                alloc::alloc::dealloc(object, layout);
            }
        }
        drop((objects, later));
        settle();
        kassert!(!reused, "an object of the retired slab was handed out again");
        kassert_eq!(counts(), (isolated + 1, pending), "the slab's last free isolated the page");
        crate::memdiag::shrink();
        let mut handed_out = false;
        sweep(|page| handed_out |= page == bad)?;
        kassert!(!handed_out, "bad page {bad:#x} handed out");
        Ok(())
    }
}

ktest! {
    fn badmem_boot_pages_are_out_of_service() {
        let boot = boot_pages();
        kassert!(!boot.as_slice().is_empty(), "boot without badmem= (cargo xtask test passes badmem=0x84000000,0x84001000)");
        for &pa in boot.as_slice() {
            kassert!(is_bad(pa as usize), "badmem page {pa:#x} not marked");
        }
        let mut handed_out = 0;
        sweep(|page| {
            handed_out += usize::from(boot.as_slice().iter().any(|&pa| arch::phys_to_virt(pa as usize) == page));
        })?;
        kassert_eq!(handed_out, 0, "badmem pages handed out");
        Ok(())
    }
}
