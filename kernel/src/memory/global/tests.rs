//! Rust's `alloc` on the kernel heap: collections work, large requests go
//! to the page allocator, failures are errors the caller can handle, a
//! block parked in another hart's cache is still a double free, and no
//! allocation fails while objects sit in another hart's cache.

use super::*;
use crate::arch::PAGE_SIZE;
use crate::ktest::prelude::*;
use crate::memory::pages;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize};

ktest! {
    fn vec_box_btreemap_and_string_work_on_the_heap() {
        let mut numbers: Vec<u64> = (0..1000).collect();
        numbers.retain(|n| n % 3 == 0);
        kassert_eq!(numbers.len(), 334);
        let boxed = Box::new([7u8; 100]);
        kassert!(boxed.iter().all(|&b| b == 7));
        let mut map = BTreeMap::new();
        for i in 0..200u32 {
            map.insert(i, i * i);
        }
        kassert_eq!(map.get(&150), Some(&22500));
        let mut text = String::new();
        for word in ["heap", "on", "every", "hart"] {
            text.push_str(word);
            text.push(' ');
        }
        kassert_eq!(text.trim_end(), "heap on every hart");
        Ok(())
    }
}

ktest! {
    fn requests_of_a_page_or_more_come_from_the_page_allocator() {
        crate::memdiag::debug::flush_quarantines();
        let (used_before, _) = pages::usage();
        let large: Vec<u8> = alloc::vec![0xa5; 3 * PAGE_SIZE];
        let (used_during, _) = pages::usage();
        kassert!(used_during >= used_before + 3, "3-page Vec took {} pages", used_during - used_before);
        kassert!((large.as_ptr() as usize).is_multiple_of(PAGE_SIZE), "large block {:p} is not page aligned", large.as_ptr());
        drop(large);
        crate::memdiag::debug::flush_quarantines();
        kassert_eq!(pages::usage().0, used_before);
        Ok(())
    }
}

ktest! {
    fn allocation_failure_is_an_error_the_caller_handles() {
        let failures_before = stats().failures;
        let mut huge: Vec<u8> = Vec::new();
        // More than all RAM: the page allocator must refuse.
        kassert!(huge.try_reserve_exact(1 << 40).is_err(), "1 TiB reserved");
        kassert!(stats().failures > failures_before);
        let (_, total) = pages::usage();
        let too_big = try_box([0u8; 0]).map(|_| ());
        kassert!(too_big.is_ok(), "zero-size box failed");
        let reservation = Vec::<u8>::new().try_reserve_exact(2 * total * PAGE_SIZE);
        kassert!(reservation.is_err(), "reserving twice the RAM succeeded");
        let fine = try_box([1u64; 64]);
        kassert!(fine.is_ok_and(|b| b[63] == 1), "a small try_box failed");
        Ok(())
    }
}

ktest! {
    fn a_stale_free_of_a_large_block_is_refused_once_its_pages_serve_another_user() {
        let layout = Layout::from_size_align(PAGE_SIZE, 8).expect("valid layout");
        let block = depot_alloc(layout);
        kassert!(block.is_ok(), "a one-page block: {block:?}");
        let block = block.expect("checked");
        let addr = block.addr().get();
        // SAFETY: `block` was just handed out and is not used.
        kassert_eq!(unsafe { depot_dealloc(block, layout) }, Ok(()));
        // The page goes to another user, as a slab or a pool could take it.
        // Under memdebug's page quarantine it may not be free yet; the free
        // below must be refused either way.
        let reused = pages::with(|a| kalloc::PageAllocator::alloc_pages_at(a, addr, 1, PAGE_SIZE)).is_ok();
        let (used_before, _) = pages::usage();
        // SAFETY: `block` came from `depot_alloc`; the heap only looks it up.
        kassert_eq!(unsafe { HEAP.check_dealloc(block, layout) }, Err(AllocError::NotAllocated));
        // SAFETY: as above: the large block table refuses it before the
        // page allocator is asked, so the other user's page stays its own.
        kassert_eq!(unsafe { depot_dealloc(block, layout) }, Err(AllocError::NotAllocated));
        kassert_eq!(pages::usage().0, used_before);
        if reused {
            kassert_eq!(pages::with(|a| kalloc::PageAllocator::dealloc_pages(a, addr, 1)), Ok(()));
        }
        Ok(())
    }
}

ktest! {
    fn the_global_allocator_judges_a_second_free_without_freeing() {
        let layout = Layout::new::<[u64; 8]>();
        let block = Block::alloc(layout);
        kassert!(block.is_some(), "a 64-byte block");
        let block = block.expect("checked");
        kassert!(block.addr().is_multiple_of(8) && block.layout() == layout);
        let freed = block.free();
        let verdict = freed.check_free();
        kassert!(
            matches!(verdict, Err(AllocError::DoubleFree | AllocError::NotAllocated)),
            "a freed block was judged {verdict:?}"
        );
        Ok(())
    }
}

ktest! {
    fn pages_lent_to_an_allocator_come_back_when_it_drops() {
        crate::memdiag::debug::flush_quarantines();
        let (used_before, _) = pages::usage();
        let lent = pages::lend(16, kalloc::byte::Tlsf::new(), |tlsf| {
            let layout = Layout::from_size_align(1000, 8).expect("valid layout");
            let block = kalloc::ByteAllocator::alloc(tlsf, layout);
            kassert!(block.is_ok(), "TLSF over lent pages: {block:?}");
            kassert_eq!(pages::usage().0, used_before + 16);
            Ok(())
        });
        kassert!(lent.is_ok(), "lending 16 pages: {lent:?}");
        crate::memdiag::debug::flush_quarantines();
        kassert_eq!(pages::usage().0, used_before);
        lent.expect("checked")
    }
}

/// The hart the cache tests park objects on: the next online slot after
/// the test hart's.
static OTHER_SLOT: AtomicUsize = AtomicUsize::new(usize::MAX);
/// A block for the other hart to free, and the verdict it got.
static HANDED_OVER: AtomicUsize = AtomicUsize::new(0);
static OTHER_FREE_OK: AtomicBool = AtomicBool::new(false);

const OBJECT: Layout = match Layout::from_size_align(64, 8) {
    Ok(layout) => layout,
    Err(_) => panic!("valid layout"),
};
const LARGE_OBJECT: Layout = match Layout::from_size_align(2048, 8) {
    Ok(layout) => layout,
    Err(_) => panic!("valid layout"),
};

/// The other slot, or `None` when the caches are off or one hart runs.
fn other_slot() -> Option<usize> {
    HEAP.caches_enabled().then(another_hart).flatten()
}

/// On the other hart: frees the handed-over block into its own cache.
fn free_handed_over(slot: usize) {
    if slot != OTHER_SLOT.load(Ordering::Acquire) {
        return;
    }
    let block = NonNull::new(HANDED_OVER.load(Ordering::Acquire) as *mut u8);
    // SAFETY: the test hart allocated the block from `HEAP` with `OBJECT`
    // and handed it over without using it again.
    let freed = block.is_some_and(|block| unsafe { HEAP.dealloc(block, OBJECT) }.is_ok());
    OTHER_FREE_OK.store(freed, Ordering::Release);
}

ktest! {
    fn a_second_free_of_an_object_parked_on_another_hart_is_a_double_free() {
        let Some(other) = other_slot() else {
            return Ok(());
        };
        OTHER_SLOT.store(other, Ordering::Release);
        let block = HEAP.alloc(OBJECT);
        kassert!(block.is_ok(), "a 64-byte object: {block:?}");
        let block = block.expect("checked");
        HANDED_OVER.store(block.addr().get(), Ordering::Release);
        crate::arch::smp::run_on_all_harts(free_handed_over);
        kassert!(OTHER_FREE_OK.load(Ordering::Acquire), "the other hart's free was refused");
        let class = kalloc::byte::kmalloc_class(OBJECT).expect("a kmalloc class");
        kassert!(HEAP.parked_on(other)[class] >= 1, "the object is not parked on slot {other}");
        // SAFETY: the block came from `HEAP`; it is parked, so the heap
        // refuses the free without touching it.
        kassert_eq!(unsafe { HEAP.dealloc(block, OBJECT) }, Err(AllocError::DoubleFree));
        // SAFETY: as above; a verdict only.
        kassert_eq!(unsafe { HEAP.check_dealloc(block, OBJECT) }, Err(AllocError::DoubleFree));
        let report = drain_caches();
        kassert_eq!(report.cpus_answered, report.cpus_asked, "a hart did not answer the drain");
        kassert_eq!(HEAP.parked_on(other).iter().sum::<usize>(), 0);
        // Back in the slab allocator, the object is still refused.
        // SAFETY: as above.
        kassert_eq!(unsafe { HEAP.dealloc(block, OBJECT) }, Err(AllocError::DoubleFree));
        Ok(())
    }
}

/// On the other hart: fills its 2 KiB magazines (and the slabs behind).
fn park_objects(slot: usize) {
    if slot != OTHER_SLOT.load(Ordering::Acquire) {
        return;
    }
    let mut blocks = [None; 64];
    for block in &mut blocks {
        *block = HEAP.alloc(LARGE_OBJECT).ok();
    }
    for block in blocks.into_iter().flatten() {
        // SAFETY: just allocated with this layout, never used.
        let _ = unsafe { HEAP.dealloc(block, LARGE_OBJECT) };
    }
}

ktest! {
    fn no_allocation_fails_while_objects_sit_in_another_harts_cache() {
        let Some(other) = other_slot() else {
            return Ok(());
        };
        OTHER_SLOT.store(other, Ordering::Release);
        crate::arch::smp::run_on_all_harts(park_objects);
        let parked = HEAP.parked_on(other).iter().sum::<usize>();
        kassert!(parked > 0, "nothing parked on slot {other}");
        // Every free page goes to this test, largest blocks first.
        let mut taken: Vec<(usize, usize)> = Vec::with_capacity(4096);
        for order in (0..=16).rev() {
            while taken.len() < taken.capacity() {
                match pages::alloc(1 << order, PAGE_SIZE) {
                    Ok(addr) => taken.push((addr, 1 << order)),
                    Err(_) => break,
                }
            }
        }
        let page = Layout::from_size_align(PAGE_SIZE, PAGE_SIZE).expect("valid layout");
        let without_reclaim = HEAP.alloc(page);
        let with_reclaim = HEAP.alloc_or_reclaim(page);
        let parked_after = HEAP.parked_on(other).iter().sum::<usize>();
        for &(addr, count) in &taken {
            kassert_eq!(pages::free(addr, count), Ok(()));
        }
        if let Ok(block) = with_reclaim {
            // SAFETY: just allocated with this layout, never used.
            kassert_eq!(unsafe { HEAP.dealloc(block, page) }, Ok(()));
        }
        kassert!(taken.len() < taken.capacity(), "memory not exhausted in {} blocks", taken.len());
        kassert_eq!(without_reclaim, Err(AllocError::NoMemory));
        kassert!(with_reclaim.is_ok(), "the allocation failed with {parked} objects parked on slot {other}");
        kassert_eq!(parked_after, 0, "slot {other} kept its objects");
        Ok(())
    }
}
