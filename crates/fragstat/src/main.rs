//! `fragstat`: fragmentation over time for every allocator of `kalloc`,
//! written as CSV series and drawn as SVG line charts
//! (`docs/fragmentation.md` explains the measures and the figures).
//!
//! ```sh
//! cargo run --release -p fragstat -- --out docs/plots   # [--quick]; SEED=n to change the seed
//! ```
//!
//! Page allocators (buddy, bitmap, linear scan) churn blocks of 1..=64
//! pages around 85% occupancy of 64 MiB; the samples carry the requests
//! and failures so far, Linux's unusable free space and external
//! fragmentation indices, the largest free run and the free-block
//! histogram (`pages.csv`), and every failed request is classified by the
//! free memory it was refused from (`pages-failures.csv`). The same churn
//! runs on the buddy's metadata under other placement policies
//! (`placement.rs`), to tell which part of the buddy's rule makes it fail.
//! Byte allocators (TLSF, slab, buddy) churn 16 B..16 KiB requests around
//! 80% use of 32 MiB (largest free block over all free memory), and run
//! the heap-efficiency test (share of the arena in use at the first failed
//! allocation) over seeded rounds.

mod bytes;
mod pages;
mod placement;
mod plot;

use std::fs;
use std::path::{Path, PathBuf};

use kalloc::byte::{BuddyByteAllocator, SlabAllocator, Tlsf};
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator, LinearPageAllocator};
use kalloc::stats::PageStatsSource;
use kalloc::{ByteAllocator, PageAllocator};
use pages::{Cause, Region};
use placement::{Placed, Policy};
use plot::{Chart, Series};

const PAGE_REGION: usize = 64 << 20;
const BYTE_ARENA: usize = 32 << 20;

struct Options {
    quick: bool,
    out: PathBuf,
    seed: u64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        out: PathBuf::from("target/fragstat"),
        seed: workload::seed_from(std::env::var("SEED").ok().as_deref(), 1),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--out" => options.out = args.next().ok_or("--out needs a directory")?.into(),
            other => {
                return Err(format!(
                    "usage: fragstat [--quick] [--out DIR] (got `{other}`)"
                ));
            }
        }
    }
    Ok(options)
}

/// One page allocator's churn.
struct PageRun {
    name: &'static str,
    samples: Vec<pages::Sample>,
    failures: pages::Failures,
    /// Requests the first-fit fallback served, for the buddy with one.
    fallbacks: Option<u64>,
    /// Requests placed in a free run shorter than their `2^k`, for the
    /// placements of `placement.rs`.
    below_block: Option<u64>,
}

fn page_run<P: PageAllocator + PageStatsSource>(
    allocator: &mut P,
    region: &Region,
    options: &Options,
) -> (Vec<pages::Sample>, pages::Failures) {
    region.give_to(allocator);
    let steps = if options.quick { 20_000 } else { 200_000 };
    let run = pages::churn(allocator, options.seed, steps, steps / 100);
    assert_eq!(
        allocator.used_pages(),
        0,
        "the churn frees everything it allocated"
    );
    run
}

fn page_runs(options: &Options) -> Vec<PageRun> {
    fn plain<P: PageAllocator + PageStatsSource>(
        name: &'static str,
        mut allocator: P,
        options: &Options,
    ) -> PageRun {
        let region = Region::new(PAGE_REGION);
        let (samples, failures) = page_run(&mut allocator, &region, options);
        PageRun {
            name,
            samples,
            failures,
            fallbacks: None,
            below_block: None,
        }
    }
    let placed = |name, policy| {
        let region = Region::new(PAGE_REGION);
        let mut allocator = Placed::new(policy);
        let (samples, failures) = page_run(&mut allocator, &region, options);
        PageRun {
            name,
            samples,
            failures,
            fallbacks: (policy == Policy::BuddyThenFirstFit).then_some(allocator.fallbacks),
            below_block: Some(allocator.below_block),
        }
    };
    vec![
        plain("buddy", BuddyPageAllocator::new(), options),
        plain("bitmap", BitmapPageAllocator::<4096>::new(), options),
        plain("linear", LinearPageAllocator::<4096>::new(), options),
        placed("buddy+fallback", Policy::BuddyThenFirstFit),
        placed("buddy-lowest-aligned", Policy::LowestAligned),
        placed("buddy-first-fit-2^k", Policy::FirstFitRounded),
        placed("buddy-first-fit", Policy::FirstFit),
    ]
}

fn largest_buddy_block(heap: &BuddyByteAllocator) -> usize {
    let mut per_order = [0usize; 64];
    heap.free_blocks_per_order(&mut per_order);
    per_order
        .iter()
        .rposition(|&n| n > 0)
        .map_or(0, |order| kalloc::byte::BUDDY_UNIT << order)
}

fn largest_slab_block(heap: &SlabAllocator<BuddyPageAllocator>) -> usize {
    heap.source().page_stats().largest_free_run * 4096
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("fragstat: {message}");
            std::process::exit(2);
        }
    };
    if let Err(message) = run(&options) {
        eprintln!("fragstat: {message}");
        std::process::exit(1);
    }
}

fn run(options: &Options) -> Result<(), String> {
    fs::create_dir_all(&options.out).map_err(|e| format!("{}: {e}", options.out.display()))?;
    println!(
        "seed {} ({}), output in {}",
        options.seed,
        if options.quick { "quick" } else { "full" },
        options.out.display()
    );

    let page_runs = page_runs(options);
    let mut csv = pages::csv_header() + "\n";
    for run in &page_runs {
        for sample in &run.samples {
            csv += &(pages::csv_row(run.name, sample) + "\n");
        }
    }
    write(&options.out.join("pages.csv"), &csv)?;
    let failures: Vec<(&str, &pages::Failures)> =
        page_runs.iter().map(|r| (r.name, &r.failures)).collect();
    write(
        &options.out.join("pages-failures.csv"),
        &pages::failures_csv(&failures),
    )?;
    // The three allocators of kalloc, then the buddy under other
    // placement policies (`placement.rs`), drawn against the buddy.
    let allocators: Vec<&PageRun> = page_runs[..3].iter().collect();
    let buddy_variants: Vec<&PageRun> =
        [&page_runs[0]].into_iter().chain(&page_runs[3..]).collect();
    let series = |runs: &[&PageRun], f: &dyn Fn(&pages::Sample) -> f64| -> Vec<Series> {
        runs.iter()
            .map(|run| Series {
                name: run.name.to_string(),
                notes: failure_notes(run),
                points: run.samples.iter().map(|s| (s.step as f64, f(s))).collect(),
            })
            .collect()
    };
    let chart = |title, y_label| Chart {
        title,
        x_label: "step",
        y_label,
        log_y: false,
    };
    let failed = |s: &pages::Sample| s.failures as f64;
    plot::lines(
        &options.out.join("pages-failures.svg"),
        &chart(
            "Page allocators: failed requests, cumulative (1..64 pages, 85% target)",
            "failed requests",
        ),
        &series(&allocators, &failed),
    )?;
    plot::lines(
        &options.out.join("pages-buddy-placement.svg"),
        &chart(
            "Buddy metadata, other placements: failed requests, cumulative",
            "failed requests",
        ),
        &series(&buddy_variants, &failed),
    )?;
    plot::lines(
        &options.out.join("pages-largest-free-run.svg"),
        &Chart {
            log_y: true,
            ..chart(
                "Page allocators: largest free run (64 MiB, 85% target)",
                "pages (log scale)",
            )
        },
        &series(&allocators, &|s| s.stats.largest_free_run as f64),
    )?;
    plot::lines(
        &options.out.join("pages-unusable-index-o6.svg"),
        &chart(
            "Page allocators: unusable free space index, order 6 (256 KiB)",
            "index (thousandths)",
        ),
        &series(&allocators, &|s| s.stats.unusable_free_index(6) as f64),
    )?;
    for run in &page_runs {
        let last = &run.samples.last().expect("at least one sample").stats;
        println!(
            "{:<21} at the end: free {} pages, largest run {}, unusable index o3/o6/o9 {}/{}/{}",
            run.name,
            last.free_pages,
            last.largest_free_run,
            last.unusable_free_index(3),
            last.unusable_free_index(6),
            last.unusable_free_index(9),
        );
        let f = &run.failures;
        let (big, big_failed) = f.of_size(64..=64);
        let (mid, mid_failed) = f.of_size(33..=63);
        println!(
            "{:<21} {}; of 64 pages: {big_failed} of {big}, of 33..=63 pages: {mid_failed} of {mid}",
            "",
            failure_notes(run).join(", "),
        );
        if f.total() > 0 {
            let causes: Vec<String> = Cause::ALL
                .iter()
                .map(|&c| format!("{} {}", c.column(), f.total_of(c)))
                .collect();
            println!("{:<21} causes: {}", "", causes.join(", "));
        }
        if let Some(n) = run.below_block {
            println!("{:<21} placed in a free run shorter than 2^k: {n}", "");
        }
    }

    let steps = if options.quick { 20_000 } else { 200_000 };
    let every = steps / 100;
    let byte_runs: Vec<(&str, Vec<bytes::Sample>)> = vec![
        ("tlsf", {
            let region = Region::new(BYTE_ARENA);
            let mut heap = Tlsf::new();
            region.give_to(&mut heap);
            bytes::churn(
                &mut heap,
                |h| h.largest_free_block(),
                options.seed,
                steps,
                every,
            )
        }),
        ("slab", {
            let region = Region::new(BYTE_ARENA);
            let mut source = BuddyPageAllocator::new();
            region.give_to(&mut source);
            let mut heap = SlabAllocator::new(source);
            bytes::churn(&mut heap, largest_slab_block, options.seed, steps, every)
        }),
        ("buddy", {
            let region = Region::new(BYTE_ARENA);
            let mut heap = BuddyByteAllocator::new();
            region.give_to(&mut heap);
            bytes::churn(&mut heap, largest_buddy_block, options.seed, steps, every)
        }),
    ];
    let mut csv = String::from(
        "allocator,step,used_bytes,free_bytes,largest_free_block,largest_over_free,requests,failed\n",
    );
    for (name, samples) in &byte_runs {
        for s in samples {
            let ratio = if s.free == 0 {
                0.0
            } else {
                s.largest_free as f64 / s.free as f64
            };
            csv += &format!(
                "{name},{},{},{},{},{ratio:.4},{},{}\n",
                s.step, s.used, s.free, s.largest_free, s.requests, s.failures
            );
        }
    }
    write(&options.out.join("bytes.csv"), &csv)?;
    let ratio_series: Vec<Series> = byte_runs
        .iter()
        .map(|(name, samples)| {
            let points = samples
                .iter()
                .map(|s| {
                    let percent = if s.free == 0 {
                        0.0
                    } else {
                        s.largest_free as f64 * 100.0 / s.free as f64
                    };
                    (s.step as f64, percent)
                })
                .collect();
            let last = samples.last().expect("a churn has samples");
            Series {
                name: name.to_string(),
                notes: vec![format!(
                    "{} of {} failed",
                    plot::integer(last.failures as f64),
                    plot::integer(last.requests as f64)
                )],
                points,
            }
        })
        .collect();
    plot::lines(
        &options.out.join("bytes-largest-over-free.svg"),
        &Chart {
            title: "Byte allocators: largest free block over free memory (32 MiB, 80% target)",
            x_label: "step",
            y_label: "% of free memory",
            log_y: false,
        },
        &ratio_series,
    )?;

    let rounds = if options.quick { 4 } else { 20 };
    let mut csv = String::from("allocator,round,seed,efficiency\n");
    let mut summary = Vec::new();
    for name in ["tlsf", "slab", "buddy"] {
        let mut total = 0.0;
        for round in 0..rounds {
            let seed = options.seed.wrapping_add(round);
            let region = Region::new(BYTE_ARENA);
            let efficiency = match name {
                "tlsf" => fresh(Tlsf::new(), &region, seed),
                "slab" => {
                    let mut source = BuddyPageAllocator::new();
                    region.give_to(&mut source);
                    bytes::efficiency(&mut SlabAllocator::new(source), BYTE_ARENA, seed)
                }
                _ => fresh(BuddyByteAllocator::new(), &region, seed),
            };
            total += efficiency;
            csv += &format!("{name},{round},{seed},{efficiency:.4}\n");
        }
        summary.push((name, total / rounds as f64));
    }
    write(&options.out.join("efficiency.csv"), &csv)?;
    for (name, mean) in summary {
        println!(
            "{name:<7} heap efficiency {:.1}% (mean of {rounds} rounds)",
            mean * 100.0
        );
    }
    Ok(())
}

/// The legend's lines under a page allocator's name: its failed requests.
fn failure_notes(run: &PageRun) -> Vec<String> {
    let last = run.samples.last().expect("at least one sample");
    let mut notes = vec![format!(
        "{} of {} failed",
        plot::integer(last.failures as f64),
        plot::integer(last.requests as f64)
    )];
    if let Some(served) = run.fallbacks {
        notes.push(format!("{} by the fallback", plot::integer(served as f64)));
    }
    notes
}

fn fresh<A: ByteAllocator>(mut heap: A, region: &Region, seed: u64) -> f64 {
    region.give_to(&mut heap);
    bytes::efficiency(&mut heap, BYTE_ARENA, seed)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
