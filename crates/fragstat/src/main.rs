//! `fragstat`: fragmentation over time for every allocator of `kalloc`,
//! written as CSV series and drawn as SVG line charts.
//!
//! ```sh
//! cargo run --release -p fragstat -- [--quick] [--out DIR]   # SEED=n to change the seed
//! ```
//!
//! Page allocators (buddy, bitmap, linear scan) churn blocks of 1..=64
//! pages around 85% occupancy of 64 MiB; the samples carry Linux's unusable
//! free space and external fragmentation indices, the largest free run and
//! the free-block histogram. Byte allocators (TLSF, slab, buddy) churn
//! 16 B..16 KiB requests around 80% use of 32 MiB (largest free block over
//! all free memory), and run the heap-efficiency test (share of the arena
//! in use at the first failed allocation) over seeded rounds.

mod bytes;
mod pages;
mod plot;

use std::fs;
use std::path::{Path, PathBuf};

use kalloc::byte::{BuddyByteAllocator, SlabAllocator, Tlsf};
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator, LinearPageAllocator};
use kalloc::stats::{PageStats, PageStatsSource};
use kalloc::{ByteAllocator, PageAllocator};
use pages::Region;
use plot::Series;

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

fn page_run<P: PageAllocator + PageStatsSource>(
    mut allocator: P,
    options: &Options,
) -> Vec<pages::Sample> {
    let region = Region::new(PAGE_REGION);
    region.give_to(&mut allocator);
    let steps = if options.quick { 20_000 } else { 200_000 };
    let samples = pages::churn(&mut allocator, options.seed, steps, steps / 100);
    assert_eq!(
        allocator.used_pages(),
        0,
        "the churn frees everything it allocated"
    );
    drop(allocator);
    drop(region);
    samples
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

    let page_runs = [
        ("buddy", page_run(BuddyPageAllocator::new(), options)),
        (
            "bitmap",
            page_run(BitmapPageAllocator::<4096>::new(), options),
        ),
        (
            "linear",
            page_run(LinearPageAllocator::<4096>::new(), options),
        ),
    ];
    let mut csv = pages::csv_header() + "\n";
    for (name, samples) in &page_runs {
        for sample in samples {
            csv += &(pages::csv_row(name, sample) + "\n");
        }
    }
    write(&options.out.join("pages.csv"), &csv)?;
    let series = |f: &dyn Fn(&PageStats) -> f64| -> Vec<Series> {
        page_runs
            .iter()
            .map(|(name, samples)| {
                (
                    name.to_string(),
                    samples
                        .iter()
                        .map(|s| (s.step as f64, f(&s.stats)))
                        .collect(),
                )
            })
            .collect()
    };
    plot::lines(
        &options.out.join("pages-largest-free-run.svg"),
        "Page allocators: largest free run during churn (64 MiB, 85% target)",
        "step",
        "pages",
        &series(&|s| s.largest_free_run as f64),
    )?;
    plot::lines(
        &options.out.join("pages-unusable-index-o6.svg"),
        "Page allocators: unusable free space index, order 6 (256 KiB)",
        "step",
        "index (thousandths)",
        &series(&|s| s.unusable_free_index(6) as f64),
    )?;
    for (name, samples) in &page_runs {
        let last = &samples.last().expect("at least one sample").stats;
        println!(
            "{name:<7} at the end: free {} pages, largest run {}, unusable index o3/o6/o9 {}/{}/{}, failures {}",
            last.free_pages,
            last.largest_free_run,
            last.unusable_free_index(3),
            last.unusable_free_index(6),
            last.unusable_free_index(9),
            samples.last().map_or(0, |s| s.failures),
        );
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
    let mut csv =
        String::from("allocator,step,used_bytes,free_bytes,largest_free_block,largest_over_free\n");
    for (name, samples) in &byte_runs {
        for s in samples {
            let ratio = if s.free == 0 {
                0.0
            } else {
                s.largest_free as f64 / s.free as f64
            };
            csv += &format!(
                "{name},{},{},{},{},{ratio:.4}\n",
                s.step, s.used, s.free, s.largest_free
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
                    (
                        s.step as f64,
                        if s.free == 0 {
                            0.0
                        } else {
                            s.largest_free as f64 / s.free as f64
                        },
                    )
                })
                .collect();
            (name.to_string(), points)
        })
        .collect();
    plot::lines(
        &options.out.join("bytes-largest-over-free.svg"),
        "Byte allocators: largest free block / all free memory (32 MiB, 80% target)",
        "step",
        "ratio",
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

fn fresh<A: ByteAllocator>(mut heap: A, region: &Region, seed: u64) -> f64 {
    region.give_to(&mut heap);
    bytes::efficiency(&mut heap, BYTE_ARENA, seed)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
