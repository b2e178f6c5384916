//! Rust's `alloc` on the kernel heap: collections work, large requests go
//! to the page allocator, failures are errors the caller can handle, and
//! the timer interrupt may allocate while the interrupted code allocates.

use super::*;
use crate::arch::PAGE_SIZE;
use crate::ktest::prelude::*;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

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
        let failures_before = crate::memory::counters::COUNTERS.failures.load(Ordering::Relaxed);
        let mut huge: Vec<u8> = Vec::new();
        // More than all RAM: the page allocator must refuse.
        kassert!(huge.try_reserve_exact(1 << 40).is_err(), "1 TiB reserved");
        kassert!(crate::memory::counters::COUNTERS.failures.load(Ordering::Relaxed) > failures_before);
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
        let block = heap::alloc(layout);
        kassert!(block.is_ok(), "a one-page block: {block:?}");
        let block = block.expect("checked");
        let addr = block.addr().get();
        // SAFETY: `block` was just handed out and is not used.
        kassert_eq!(unsafe { heap::dealloc(block, layout) }, Ok(()));
        // The page goes to another user, as a slab or a pool could take it.
        // Under memdebug's page quarantine it may not be free yet; the free
        // below must be refused either way.
        let reused = pages::with(|a| kalloc::PageAllocator::alloc_pages_at(a, addr, 1, PAGE_SIZE)).is_ok();
        let (used_before, _) = pages::usage();
        // SAFETY: `block` came from `heap::alloc`; the heap only looks it up.
        kassert_eq!(unsafe { heap::check_dealloc(block, layout) }, Err(AllocError::NotAllocated));
        // SAFETY: as above: the large block table refuses it before the
        // page allocator is asked, so the other user's page stays its own.
        kassert_eq!(unsafe { heap::dealloc(block, layout) }, Err(AllocError::NotAllocated));
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
