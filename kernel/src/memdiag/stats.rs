//! `get_memory_stats()`: one snapshot of the whole memory subsystem (pages,
//! buddyinfo, slabinfo, byte heap, watermarks, counts, fragmentation) as a
//! plain struct, with a `Display` that prints it for `meminfo` and logs.
//!
//! The watermarks and counts come from `memory::counters`, which the
//! allocation paths keep whatever `memdebug=` says.

use super::debug;
use crate::arch::PAGE_SIZE;
use crate::memory::counters::COUNTERS;
use crate::memory::{global, heap, pages};
use core::fmt;
use core::sync::atomic::Ordering;
use kalloc::byte::SlabInfo;
use kalloc::stats::PageStats;
use memdebug::DebugFlags;

/// Slab caches [`MemoryStats`] keeps (the kmalloc classes fit).
pub const MAX_CACHES: usize = 16;
/// Orders whose fragmentation indices [`MemoryStats`] computes.
pub const FRAG_ORDERS: usize = 16;

/// The byte heap behind the global allocator.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapTotals {
    /// `alloc=`, once the heap is up.
    pub kind: Option<&'static str>,
    /// Pages the byte allocators hold (pools and slabs).
    pub pool_pages: usize,
    /// Bytes the byte allocators hand out (their own accounting).
    pub used_bytes: usize,
    /// The largest block they could hand out without growing.
    pub largest_free_block: usize,
    /// Pages given directly to requests of a page or more.
    pub large_pages: usize,
    /// Live allocations and requested bytes through `GlobalAlloc`.
    pub live_blocks: usize,
    pub live_bytes: usize,
    /// Free objects parked in the harts' caches, and their bytes.
    pub cached_objects: usize,
    pub cached_bytes: usize,
}

/// Highest use ever, and when (microseconds since boot).
#[derive(Clone, Copy, Debug, Default)]
pub struct Watermarks {
    pub peak_pages: usize,
    pub peak_pages_at_us: u64,
    pub peak_bytes: usize,
    pub peak_bytes_at_us: u64,
}

/// Operation counts since boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Through `GlobalAlloc`.
    pub allocs: u64,
    pub frees: u64,
    pub failures: u64,
    /// Through `memory::pages` (heap growth, large blocks, page tables, ...).
    pub page_allocs: u64,
    pub page_frees: u64,
    pub page_failures: u64,
    /// Frees the memdebug layers refused (0 with `memdebug=off`).
    pub refused_frees: u64,
}

/// Everything at once; see the module doc.
#[derive(Clone, Debug)]
pub struct MemoryStats {
    /// Pages: total, free, largest free run and free blocks per order.
    pub pages: PageStats,
    /// Free pages parked in the harts' page lists (not in `pages`).
    pub listed_pages: usize,
    pub heap: HeapTotals,
    /// slabinfo rows (`alloc=slab` only), `slab_count` of them.
    pub slabs: [Option<SlabInfo>; MAX_CACHES],
    pub slab_count: usize,
    pub watermarks: Watermarks,
    pub counts: Counts,
    /// Per order `0..FRAG_ORDERS`: Linux's unusable free space index and
    /// external fragmentation index, both in thousandths.
    pub unusable_index: [u32; FRAG_ORDERS],
    pub fragmentation_index: [i32; FRAG_ORDERS],
    /// `memdebug=` as the kernel runs it.
    pub memdebug: DebugFlags,
}

impl MemoryStats {
    pub fn total_pages(&self) -> usize {
        self.pages.total_pages
    }

    pub fn free_pages(&self) -> usize {
        self.pages.free_pages
    }

    pub fn used_pages(&self) -> usize {
        self.pages.total_pages - self.pages.free_pages
    }

    /// The slabinfo rows.
    pub fn slab_rows(&self) -> impl Iterator<Item = &SlabInfo> {
        self.slabs[..self.slab_count].iter().flatten()
    }
}

/// Takes the snapshot (locks each allocator briefly, one at a time).
pub fn get_memory_stats() -> MemoryStats {
    let (pages, listed_pages) = pages::stats_and_listed();
    let mut slabs = [None; MAX_CACHES];
    let mut slab_count = 0;
    global::for_each_slab_cache(|info| {
        if slab_count < MAX_CACHES {
            slabs[slab_count] = Some(*info);
            slab_count += 1;
        }
    });
    let mut unusable_index = [0; FRAG_ORDERS];
    let mut fragmentation_index = [0; FRAG_ORDERS];
    for order in 0..FRAG_ORDERS {
        unusable_index[order] = pages.unusable_free_index(order);
        fragmentation_index[order] = pages.fragmentation_index(order);
    }
    let (page_ops, heap) = (pages::cache_stats(), global::stats());
    let refused_frees = debug::layers_counters().map_or(0, |(bytes, pages)| {
        bytes.refused_frees + pages.refused_frees
    });
    MemoryStats {
        heap: HeapTotals {
            kind: heap::kind().map(heap::HeapKind::name),
            pool_pages: COUNTERS.heap_pages.load(Ordering::Relaxed),
            used_bytes: global::used_bytes(),
            largest_free_block: global::largest_free_block(),
            large_pages: COUNTERS.large_pages.load(Ordering::Relaxed),
            live_blocks: heap.live_blocks() as usize,
            live_bytes: heap.live_bytes(),
            cached_objects: heap.cached_total(),
            cached_bytes: heap.cached_bytes,
        },
        pages,
        listed_pages,
        slabs,
        slab_count,
        watermarks: Watermarks {
            peak_pages: page_ops.peak_pages,
            peak_pages_at_us: page_ops.peak_at,
            peak_bytes: heap.peak_bytes,
            peak_bytes_at_us: heap.peak_at,
        },
        counts: Counts {
            allocs: heap.allocs,
            frees: heap.frees,
            failures: heap.failures,
            page_allocs: page_ops.allocs,
            page_frees: page_ops.frees,
            page_failures: page_ops.failures,
            refused_frees,
        },
        unusable_index,
        fragmentation_index,
        memdebug: debug::flags(),
    }
}

/// Microseconds as `s.uuuuuu`.
struct Seconds(u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl fmt::Display for MemoryStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kib = |pages: usize| pages * PAGE_SIZE / 1024;
        writeln!(
            f,
            "pages: {} total, {} used, {} free ({} KiB free), {} more in the harts' page lists; \
             largest free run {} pages",
            self.total_pages(),
            self.used_pages(),
            self.free_pages(),
            kib(self.free_pages()),
            self.listed_pages,
            self.pages.largest_free_run
        )?;
        let top = self.pages.highest_free_order().unwrap_or(0);
        f.write_str("free blocks per order:")?;
        for (order, count) in self.pages.free_blocks.iter().enumerate().take(top + 1) {
            write!(f, " {order}:{count}")?;
        }
        f.write_str("\nfragmentation (unusable/extfrag, thousandths):")?;
        for order in 0..=top.min(FRAG_ORDERS - 1) {
            write!(
                f,
                " {order}:{}/{}",
                self.unusable_index[order], self.fragmentation_index[order]
            )?;
        }
        let heap = &self.heap;
        writeln!(
            f,
            "\nheap ({}): {} pool pages, {} bytes used, largest free block {} bytes; \
             {} large pages; {} live blocks, {} live bytes; {} objects ({} bytes) in per-hart caches",
            heap.kind.unwrap_or("not started"),
            heap.pool_pages,
            heap.used_bytes,
            heap.largest_free_block,
            heap.large_pages,
            heap.live_blocks,
            heap.live_bytes,
            heap.cached_objects,
            heap.cached_bytes
        )?;
        let marks = &self.watermarks;
        writeln!(
            f,
            "peak: {} pages at {}, {} live bytes at {}",
            marks.peak_pages,
            Seconds(marks.peak_pages_at_us),
            marks.peak_bytes,
            Seconds(marks.peak_bytes_at_us)
        )?;
        let counts = &self.counts;
        write!(
            f,
            "counts: {} allocs, {} frees, {} failures; pages {} allocs, {} frees, {} failures; \
             {} refused frees (memdebug={})",
            counts.allocs,
            counts.frees,
            counts.failures,
            counts.page_allocs,
            counts.page_frees,
            counts.page_failures,
            counts.refused_frees,
            self.memdebug
        )?;
        if self.slab_count > 0 {
            write!(f, "\n{}", SlabInfo::TITLE)?;
            for row in self.slab_rows() {
                write!(f, "\n{row}")?;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "ktest")]
mod tests;
