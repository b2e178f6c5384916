//! `get_memory_stats()` against the allocators' own accessors, and its
//! watermarks and counts against a workload the test runs.

use super::*;
use crate::ktest::prelude::*;
use alloc::format;
use alloc::vec::Vec;

ktest! {
    fn memory_stats_agree_with_the_allocators() {
        let stats = get_memory_stats();
        let (used, total) = pages::usage();
        kassert_eq!(stats.total_pages(), total);
        kassert_eq!(stats.used_pages() + stats.free_pages(), total);
        // `usage()` counts pages parked in the harts' lists as free; the
        // allocator's own figures count them as handed out.
        let allocator_used = stats.used_pages().saturating_sub(stats.listed_pages);
        kassert!(allocator_used.abs_diff(used) < 64, "used {allocator_used} vs {used}");
        let from_orders: usize = stats.pages.free_blocks.iter().enumerate().map(|(order, n)| n << order).sum();
        kassert_eq!(from_orders, stats.free_pages());
        kassert_eq!(stats.slab_count > 0, heap::kind() == Some(heap::HeapKind::Slab));
        kassert!(stats.slab_rows().all(|row| row.active_objects <= row.total_objects));
        for order in 0..FRAG_ORDERS {
            kassert!(stats.unusable_index[order] <= 1000);
            kassert!((-1000..=1000).contains(&stats.fragmentation_index[order]));
        }
        kassert!(stats.counts.allocs >= stats.counts.frees);
        kassert_eq!(stats.memdebug, debug::flags());
        let text = format!("{stats}");
        for part in ["pages: ", "free blocks per order: 0:", "fragmentation", "heap (", "peak: ", "counts: "] {
            kassert!(text.contains(part), "{part:?} missing from:\n{text}");
        }
        Ok(())
    }
}

ktest! {
    fn watermarks_and_counts_follow_a_workload() {
        let before = get_memory_stats();
        let big: Vec<u8> = alloc::vec![1; 4 << 20];
        let small: Vec<Vec<u8>> = (0..100).map(|i| alloc::vec![i as u8; 100]).collect();
        let during = get_memory_stats();
        // The heap's watermark is exact to within FOLD_BYTES per hart
        // (bytes a hart has not folded into the shared total yet).
        let slack = crate::arch::hart::online().count() * kheap::FOLD_BYTES as usize;
        kassert!(
            during.watermarks.peak_bytes + slack >= before.heap.live_bytes + big.len() + 100 * 100,
            "peak {} bytes, live before {} bytes",
            during.watermarks.peak_bytes,
            before.heap.live_bytes
        );
        kassert!(during.watermarks.peak_pages >= before.used_pages() + big.len() / PAGE_SIZE);
        kassert!(during.watermarks.peak_bytes_at_us >= before.watermarks.peak_bytes_at_us);
        kassert!(during.counts.allocs >= before.counts.allocs + 102);
        kassert!(during.counts.page_allocs > before.counts.page_allocs);
        drop(small);
        drop(big);
        let after = get_memory_stats();
        kassert!(after.counts.frees >= before.counts.frees + 102);
        kassert!(after.watermarks.peak_bytes >= during.watermarks.peak_bytes);
        Ok(())
    }
}
