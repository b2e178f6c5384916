//! Page-allocator churn: blocks of 1..=64 pages (log-uniform) allocated
//! and freed at random around 85% occupancy, sampled for Linux's
//! fragmentation indices, the largest free run and the free-block
//! histogram; every failed request is classified by what the free memory
//! held at that moment.

use std::alloc::Layout;

use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{BaseAllocator, PageAllocator};
use workload::Rng;

/// Orders whose indices are recorded.
pub const INDEX_ORDERS: [usize; 4] = [0, 3, 6, 9];
/// Orders of the free-block histogram.
pub const HISTOGRAM_ORDERS: usize = 11;
/// The largest request, in pages.
pub const MAX_REQUEST: usize = 64;

pub struct Sample {
    pub step: u64,
    pub stats: PageStats,
    /// Allocation requests so far.
    pub requests: u64,
    /// Failed requests so far.
    pub failures: u64,
}

/// Why a request of `n` pages failed, from the free memory at that moment
/// (`2^k` is `n` rounded up to a power of two, the block a buddy needs).
/// The classes are exclusive, tested in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Fewer than `n` pages free: no allocator could serve it.
    ShortOfMemory,
    /// Enough free pages, but no run of `n`: first fit fails too.
    NoRun,
    /// A run of `n` free pages, none of `2^k`: first fit would serve it,
    /// a buddy cannot even find an unaligned `2^k` run.
    RunBelowBlock,
    /// A run of `2^k` free pages or more, but no naturally aligned free
    /// `2^k` block inside it.
    Unaligned,
}

impl Cause {
    pub const ALL: [Cause; 4] = [
        Cause::ShortOfMemory,
        Cause::NoRun,
        Cause::RunBelowBlock,
        Cause::Unaligned,
    ];

    pub fn of(count: usize, stats: &PageStats) -> Cause {
        if stats.free_pages < count {
            Cause::ShortOfMemory
        } else if stats.largest_free_run < count {
            Cause::NoRun
        } else if stats.largest_free_run < count.next_power_of_two() {
            Cause::RunBelowBlock
        } else {
            Cause::Unaligned
        }
    }

    /// The column name in `pages-failures.csv`.
    pub fn column(self) -> &'static str {
        match self {
            Cause::ShortOfMemory => "short_of_memory",
            Cause::NoRun => "no_run_of_n",
            Cause::RunBelowBlock => "run_of_n_not_2k",
            Cause::Unaligned => "run_of_2k_unaligned",
        }
    }
}

/// Requests of one size and their failures.
#[derive(Clone, Copy, Default)]
pub struct SizeFailures {
    pub requests: u64,
    pub failures: u64,
    pub by_cause: [u64; 4],
    /// Sums over the failures, for the means.
    pub free_pages: u64,
    pub largest_free_run: u64,
    pub largest_aligned_block: u64,
}

/// Requests and failures by size: `self.0[n - 1]` for requests of `n`
/// pages.
#[derive(Clone)]
pub struct Failures(pub [SizeFailures; MAX_REQUEST]);

impl Default for Failures {
    fn default() -> Self {
        Failures([SizeFailures::default(); MAX_REQUEST])
    }
}

impl Failures {
    fn request(&mut self, count: usize) {
        self.0[count - 1].requests += 1;
    }

    fn record(&mut self, count: usize, stats: &PageStats) {
        let entry = &mut self.0[count - 1];
        entry.failures += 1;
        let cause = Cause::of(count, stats);
        entry.by_cause[Cause::ALL.iter().position(|&c| c == cause).unwrap()] += 1;
        entry.free_pages += stats.free_pages as u64;
        entry.largest_free_run += stats.largest_free_run as u64;
        entry.largest_aligned_block += stats.highest_free_order().map_or(0, |o| 1u64 << o);
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|f| f.failures).sum()
    }

    /// Failures of `cause`, all sizes.
    pub fn total_of(&self, cause: Cause) -> u64 {
        let index = Cause::ALL.iter().position(|&c| c == cause).unwrap();
        self.0.iter().map(|f| f.by_cause[index]).sum()
    }

    /// Requests of `pages` and their failures.
    pub fn of_size(&self, pages: std::ops::RangeInclusive<usize>) -> (u64, u64) {
        self.0[pages.start() - 1..*pages.end()]
            .iter()
            .fold((0, 0), |(r, f), s| (r + s.requests, f + s.failures))
    }
}

/// A host region for a page allocator, freed on drop.
pub struct Region {
    base: *mut u8,
    layout: Layout,
}

impl Region {
    /// Aligned to its size rounded up to a power of two: the buddy cuts a
    /// region into blocks aligned on absolute addresses, so a looser
    /// alignment would make its initial blocks, and every result after,
    /// depend on where the host put the region.
    pub fn new(bytes: usize) -> Self {
        let layout = Layout::from_size_align(bytes, bytes.next_power_of_two()).unwrap();
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
///
/// The sequence of requests depends on the allocator: a step allocates
/// only below the target occupancy, and frees a random live block, so two
/// allocators fed the same seed part ways at the first step where their
/// occupancies differ.
pub fn churn<P: PageAllocator + PageStatsSource>(
    allocator: &mut P,
    seed: u64,
    steps: u64,
    every: u64,
) -> (Vec<Sample>, Failures) {
    let mut rng = Rng::new(seed);
    let target = allocator.total_pages() * 85 / 100;
    let mut live: Vec<(usize, usize)> = Vec::new();
    let mut samples = Vec::new();
    let mut failures = Failures::default();
    let mut requests = 0;
    for step in 0..=steps {
        if step % every == 0 {
            samples.push(Sample {
                step,
                stats: allocator.page_stats(),
                requests,
                failures: failures.total(),
            });
        }
        let grow = allocator.used_pages() < target && (live.is_empty() || rng.chance(55));
        if grow {
            requests += 1;
            let count = rng.log_uniform(1, MAX_REQUEST);
            failures.request(count);
            match allocator.alloc_pages(count, P::PAGE_SIZE) {
                Ok(addr) => live.push((addr, count)),
                // A failure leaves nothing changed: the snapshot is the
                // free memory the request was refused from.
                Err(_) => failures.record(count, &allocator.page_stats()),
            }
        } else if !live.is_empty() {
            let (addr, count) = live.swap_remove(rng.below(live.len() as u64) as usize);
            allocator.dealloc_pages(addr, count).unwrap();
        }
    }
    for (addr, count) in live {
        allocator.dealloc_pages(addr, count).unwrap();
    }
    (samples, failures)
}

/// The CSV header for [`csv_row`].
pub fn csv_header() -> String {
    let mut header = String::from("allocator,step,requests,failures,free_pages,largest_free_run");
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
        "{name},{},{},{},{},{}",
        sample.step, sample.requests, sample.failures, stats.free_pages, stats.largest_free_run
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

/// `pages-failures.csv`: one row per allocator and requested size: the
/// requests, the failures split by [`Cause`], and the means of the free
/// pages, the largest free run and the largest free aligned block at the
/// failures (empty without failures).
pub fn failures_csv(runs: &[(&str, &Failures)]) -> String {
    let mut csv = String::from("allocator,pages,requests,failures");
    for cause in Cause::ALL {
        csv += &format!(",{}", cause.column());
    }
    csv += ",mean_free_pages,mean_largest_free_run,mean_largest_aligned_block\n";
    for (name, failures) in runs {
        for (index, f) in failures.0.iter().enumerate() {
            if f.requests == 0 {
                continue;
            }
            csv += &format!("{name},{},{},{}", index + 1, f.requests, f.failures);
            for n in f.by_cause {
                csv += &format!(",{n}");
            }
            if f.failures == 0 {
                csv += ",,,\n";
                continue;
            }
            let mean = |sum: u64| sum as f64 / f.failures as f64;
            csv += &format!(
                ",{:.0},{:.1},{:.1}\n",
                mean(f.free_pages),
                mean(f.largest_free_run),
                mean(f.largest_aligned_block)
            );
        }
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_split_at_n_and_its_power_of_two() {
        // 40 free pages as one run at page 1: blocks 1, 2, 4, 8, 16, 8, 1.
        let mut stats = PageStats::empty(64);
        stats.add_free_run(1, 40, 10);
        assert_eq!(Cause::of(41, &stats), Cause::ShortOfMemory);
        assert_eq!(Cause::of(33, &stats), Cause::RunBelowBlock);
        // 32 pages: a run of 32 exists, no free aligned 32-page block.
        assert_eq!(stats.highest_free_order(), Some(4));
        assert_eq!(Cause::of(32, &stats), Cause::Unaligned);
        // Two runs of 20: 40 free, no run of 21.
        let mut split = PageStats::empty(64);
        split.add_free_run(0, 20, 10);
        split.add_free_run(32, 20, 10);
        assert_eq!(Cause::of(21, &split), Cause::NoRun);
    }

    #[test]
    fn failures_are_counted_per_size() {
        let mut stats = PageStats::empty(64);
        stats.add_free_run(1, 40, 10);
        let mut failures = Failures::default();
        for count in [33, 33, 33, 64, 32, 2] {
            failures.request(count);
        }
        for count in [33, 33, 64, 32] {
            failures.record(count, &stats);
        }
        assert_eq!(failures.of_size(33..=33), (3, 2));
        assert_eq!(failures.of_size(33..=64), (4, 3));
        assert_eq!(failures.total(), 4);
        assert_eq!(failures.total_of(Cause::ShortOfMemory), 1);
        assert_eq!(failures.total_of(Cause::RunBelowBlock), 2);
        assert_eq!(failures.0[32].largest_aligned_block, 32);
        let csv = failures_csv(&[("buddy", &failures)]);
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(
            rows,
            [
                "buddy,2,1,0,0,0,0,0,,,",
                "buddy,32,1,1,0,0,0,1,40,40.0,16.0",
                "buddy,33,3,2,0,0,2,0,40,40.0,16.0",
                "buddy,64,1,1,1,0,0,0,40,40.0,16.0",
            ]
        );
    }
}
