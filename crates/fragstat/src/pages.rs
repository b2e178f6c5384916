//! Page-allocator churn: blocks of 1..=64 pages (log-uniform) allocated
//! and freed at random around 85% occupancy, sampled for Linux's
//! fragmentation indices, the largest free run and the free-block
//! histogram.

use std::alloc::Layout;

use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{BaseAllocator, PageAllocator};
use workload::Rng;

/// Orders whose indices are recorded.
pub const INDEX_ORDERS: [usize; 4] = [0, 3, 6, 9];
/// Orders of the free-block histogram.
pub const HISTOGRAM_ORDERS: usize = 11;

pub struct Sample {
    pub step: u64,
    pub stats: PageStats,
    pub failures: u64,
}

/// A host region for a page allocator, freed on drop.
pub struct Region {
    base: *mut u8,
    layout: Layout,
}

impl Region {
    pub fn new(bytes: usize) -> Self {
        let layout = Layout::from_size_align(bytes, 2 << 20).unwrap();
        // SAFETY: non-zero size.
        let base = unsafe { std::alloc::alloc(layout) };
        assert!(!base.is_null(), "host allocation of {bytes} bytes failed");
        Region { base, layout }
    }

    /// Hands the region to `allocator`.
    pub fn give_to(&self, allocator: &mut impl BaseAllocator) {
        // SAFETY: the region is host memory nothing else uses; it outlives
        // the allocator (both live in the caller's frame, region first).
        unsafe {
            allocator
                .init(self.base as usize, self.layout.size())
                .unwrap()
        };
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.base, self.layout) }
    }
}

/// Runs the churn for `steps` steps, sampling every `every` steps.
pub fn churn<P: PageAllocator + PageStatsSource>(
    allocator: &mut P,
    seed: u64,
    steps: u64,
    every: u64,
) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    let target = allocator.total_pages() * 85 / 100;
    let mut live: Vec<(usize, usize)> = Vec::new();
    let mut samples = Vec::new();
    let mut failures = 0;
    for step in 0..=steps {
        if step % every == 0 {
            samples.push(Sample {
                step,
                stats: allocator.page_stats(),
                failures,
            });
        }
        let grow = allocator.used_pages() < target && (live.is_empty() || rng.chance(55));
        if grow {
            let count = rng.log_uniform(1, 64);
            match allocator.alloc_pages(count, P::PAGE_SIZE) {
                Ok(addr) => live.push((addr, count)),
                Err(_) => failures += 1,
            }
        } else if !live.is_empty() {
            let (addr, count) = live.swap_remove(rng.below(live.len() as u64) as usize);
            allocator.dealloc_pages(addr, count).unwrap();
        }
    }
    for (addr, count) in live {
        allocator.dealloc_pages(addr, count).unwrap();
    }
    samples
}

/// The CSV header for [`csv_row`].
pub fn csv_header() -> String {
    let mut header = String::from("allocator,step,failures,free_pages,largest_free_run");
    for order in INDEX_ORDERS {
        header += &format!(",unusable_o{order}");
    }
    for order in INDEX_ORDERS {
        header += &format!(",extfrag_o{order}");
    }
    for order in 0..HISTOGRAM_ORDERS {
        header += &format!(",blocks_o{order}");
    }
    header
}

pub fn csv_row(name: &str, sample: &Sample) -> String {
    let stats = &sample.stats;
    let mut row = format!(
        "{name},{},{},{},{}",
        sample.step, sample.failures, stats.free_pages, stats.largest_free_run
    );
    for order in INDEX_ORDERS {
        row += &format!(",{}", stats.unusable_free_index(order));
    }
    for order in INDEX_ORDERS {
        row += &format!(",{}", stats.fragmentation_index(order));
    }
    for order in 0..HISTOGRAM_ORDERS {
        row += &format!(",{}", stats.free_blocks[order]);
    }
    row
}
