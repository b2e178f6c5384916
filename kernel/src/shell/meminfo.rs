//! `meminfo [-v]`: `/proc/meminfo` as Linux prints it (fs/proc/meminfo.c):
//! `show_val_kb`'s line, the key and its colon padded to 16 columns, the
//! value right-aligned in 8, then ` kB`; every size in kB (bytes rounded
//! down, as Linux shifts); a count without a unit the same way minus
//! ` kB`; `HardwareCorrupted` with its own `%5lu`. Linux's keys come first,
//! with Linux's meaning where RVOS has the thing, then x86's `DirectMap`
//! lines for the linear map, then RVOS's own keys (as an arch adds its
//! own). A reader of `/proc/meminfo` (key up to the colon, a number, an
//! optional `kB`) reads every line.
//!
//! `-v` appends each key's explanation, which `help meminfo` also lists.

use super::Monitor;
use crate::arch::{PAGE_SIZE, hart};
use crate::memory::counters::COUNTERS;
use crate::memory::{global, pages, paging};
use core::fmt::Write;
use core::sync::atomic::Ordering;
use kshell::{Args, CommandError};

/// Declares the keys' explanations once, for `-v` ([`EXPLAIN`]) and for
/// `help meminfo` ([`DETAILS`]).
macro_rules! keys {
    ($(($key:literal, $what:literal)),* $(,)?) => {
        const EXPLAIN: &[(&str, &str)] = &[$(($key, $what)),*];
        /// `help meminfo`.
        pub const DETAILS: &str = concat!(
            "Linux's format: `Key:` padded to 16 columns, the value in 8, ` kB` (a count has no unit)\n",
            "-v: the same lines, each with its explanation",
            $("\n  ", $key, ": ", $what),*
        );
    };
}

keys![
    (
        "MemTotal",
        "pages the page allocator manages: RAM minus firmware, kernel image, device tree and allocator metadata"
    ),
    (
        "MemFree",
        "free pages in the page allocator (not those parked in the harts' lists)"
    ),
    (
        "MemAvailable",
        "what allocations can still get: MemFree + PageLists + SReclaimable; no reserve is kept (the watermarks are advisory)"
    ),
    (
        "KReclaimable",
        "kernel memory given back under pressure: SReclaimable"
    ),
    (
        "Slab",
        "pages of the kmalloc caches' slabs (alloc=slab; 0 otherwise)"
    ),
    (
        "SReclaimable",
        "empty slabs, given back when the heap shrinks"
    ),
    ("SUnreclaim", "slabs holding live or cached objects"),
    (
        "KernelStack",
        "every hart's kernel stack and trap stack (the boot stack included)"
    ),
    ("PageTables", "pages of the kernel page table"),
    (
        "HardwareCorrupted",
        "pages taken out of service (badpage, badmem=), isolated or waiting for their block's free"
    ),
    ("DirectMap4k", "linear map of RAM mapped with 4 KiB pages"),
    ("DirectMap2M", "linear map of RAM mapped with 2 MiB pages"),
    ("DirectMap1G", "linear map of RAM mapped with 1 GiB pages"),
    ("RamTotal", "RAM the device tree lists"),
    (
        "RamReserved",
        "RamTotal minus MemTotal: firmware, kernel image, device tree, allocator metadata"
    ),
    (
        "PageLists",
        "free blocks of 1 to 8 pages parked in the harts' page lists"
    ),
    (
        "LargestFreeRun",
        "longest run of contiguous free pages in the allocator"
    ),
    (
        "WatermarkMin",
        "Linux's min watermark for MemTotal (sqrt(16 x MemTotal kB)); advisory"
    ),
    ("WatermarkLow", "min + min/4"),
    ("WatermarkHigh", "min + min/2"),
    (
        "HeapPages",
        "pages the byte allocators hold (slabs and pools)"
    ),
    (
        "HeapUsed",
        "handed out by the byte allocators, with their rounding"
    ),
    (
        "HeapLive",
        "requested through the global allocator and not yet freed"
    ),
    (
        "HeapLiveBlocks",
        "count: blocks live through the global allocator"
    ),
    (
        "HeapCached",
        "free objects parked in the harts' heap caches"
    ),
    (
        "HeapLargest",
        "largest block the byte allocator can hand out without growing"
    ),
    (
        "LargeAllocs",
        "requests of a page or more, served as whole pages"
    ),
    (
        "AllocFailures",
        "count: global allocations that failed since boot"
    ),
    ("ShellAlloc", "bytes the monitor's `alloc` holds"),
    ("ShellAllocs", "count: blocks the monitor's `alloc` holds"),
    ("ShellPages", "pages the monitor's `pages` holds"),
    ("ShellPageRuns", "count: blocks the monitor's `pages` holds"),
];

fn explain(key: &str) -> &'static str {
    EXPLAIN
        .iter()
        .find(|(name, _)| *name == key)
        .map_or("", |(_, what)| what)
}

/// Prints lines in Linux's format, with explanations under `-v`.
struct Lines<'o> {
    out: &'o mut dyn Write,
    verbose: bool,
}

impl Lines<'_> {
    fn line(&mut self, key: &str, value: usize, unit: &str) -> core::fmt::Result {
        if key == "HardwareCorrupted" {
            write!(self.out, "{key}: {value:>5}{unit}")?;
        } else {
            let label_width = 16usize;
            write!(self.out, "{:<label_width$}{value:>8}{unit}", KeyColon(key))?;
        }
        if self.verbose {
            write!(self.out, "  {}", explain(key))?;
        }
        writeln!(self.out)
    }

    fn kb(&mut self, key: &str, kb: usize) -> core::fmt::Result {
        self.line(key, kb, " kB")
    }

    fn pages(&mut self, key: &str, pages: usize) -> core::fmt::Result {
        self.kb(key, pages * (PAGE_SIZE / 1024))
    }

    fn bytes(&mut self, key: &str, bytes: usize) -> core::fmt::Result {
        self.kb(key, bytes >> 10)
    }

    fn count(&mut self, key: &str, count: usize) -> core::fmt::Result {
        self.line(key, count, "")
    }
}

/// `Key:`, so the padding counts the colon as Linux's literals do.
struct KeyColon<'k>(&'k str);

impl core::fmt::Display for KeyColon<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let width = f.width().unwrap_or(0);
        write!(f, "{}:", self.0)?;
        for _ in self.0.len() + 1..width {
            f.write_str(" ")?;
        }
        Ok(())
    }
}

/// Linux's watermarks for `managed_pages` (in pages): `min_free_kbytes =
/// sqrt(16 * lowmem_kbytes)` clamped to 128..=262144, low = min + min/4,
/// high = min + min/2 (mm/page_alloc.c, before watermark_scale_factor).
pub fn watermarks(managed_pages: usize) -> (usize, usize, usize) {
    let kb_per_page = PAGE_SIZE / 1024;
    let kbytes = (managed_pages * kb_per_page) as u64;
    let min_kbytes = (kbytes * 16).isqrt().clamp(128, 262_144) as usize;
    let min = min_kbytes.div_ceil(kb_per_page);
    (min, min + min / 4, min + min / 2)
}

/// `meminfo [-v]`
pub fn meminfo<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let verbose = args
        .choice(&["-v"], "-v (each line with its explanation)")?
        .is_some();
    args.end()?;
    let ram: u64 = crate::platform::get()
        .ram
        .as_slice()
        .iter()
        .map(|r| r.size())
        .sum();
    let (stats, listed) = pages::stats_and_listed();
    let heap = global::stats();
    let (mut slab_pages, mut empty_slab_pages) = (0, 0);
    if super::info::slabs_present() {
        global::for_each_slab_cache(|row| {
            slab_pages +=
                row.pages_per_slab * (row.full_slabs + row.partial_slabs + row.empty_slabs);
            empty_slab_pages += row.pages_per_slab * row.empty_slabs;
        });
    }
    let stacks: usize = hart::HARTS
        .iter()
        .filter(|h| h.stack().end != 0)
        .map(|h| h.stack().len() + h.trap_stack().len())
        .sum();
    let (isolated, pending) = crate::memdiag::badmem::counts();
    let direct = paging::direct_map_leaves();
    let (min, low, high) = watermarks(stats.total_pages);
    let (blocks, bytes, page_blocks, page_count) = monitor.ledger.totals();

    let mut lines = Lines { out, verbose };
    lines.pages("MemTotal", stats.total_pages)?;
    lines.pages("MemFree", stats.free_pages)?;
    lines.pages("MemAvailable", stats.free_pages + listed + empty_slab_pages)?;
    lines.pages("KReclaimable", empty_slab_pages)?;
    lines.pages("Slab", slab_pages)?;
    lines.pages("SReclaimable", empty_slab_pages)?;
    lines.pages("SUnreclaim", slab_pages - empty_slab_pages)?;
    lines.bytes("KernelStack", stacks)?;
    lines.pages("PageTables", paging::table_pages())?;
    lines.pages("HardwareCorrupted", isolated + pending)?;
    lines.kb("DirectMap4k", direct[0] * 4)?;
    lines.kb("DirectMap2M", direct[1] * 2048)?;
    lines.kb("DirectMap1G", direct[2] * 1024 * 1024)?;
    lines.bytes("RamTotal", ram as usize)?;
    lines.bytes("RamReserved", ram as usize - stats.total_pages * PAGE_SIZE)?;
    lines.pages("PageLists", listed)?;
    lines.pages("LargestFreeRun", stats.largest_free_run)?;
    lines.pages("WatermarkMin", min)?;
    lines.pages("WatermarkLow", low)?;
    lines.pages("WatermarkHigh", high)?;
    lines.pages("HeapPages", COUNTERS.heap_pages.load(Ordering::Relaxed))?;
    lines.bytes("HeapUsed", global::used_bytes())?;
    lines.bytes("HeapLive", heap.live_bytes())?;
    lines.count("HeapLiveBlocks", heap.live_blocks() as usize)?;
    lines.bytes("HeapCached", heap.cached_bytes)?;
    lines.bytes("HeapLargest", global::largest_free_block())?;
    lines.pages("LargeAllocs", COUNTERS.large_pages.load(Ordering::Relaxed))?;
    lines.count("AllocFailures", heap.failures as usize)?;
    lines.bytes("ShellAlloc", bytes)?;
    lines.count("ShellAllocs", blocks)?;
    lines.pages("ShellPages", page_count)?;
    lines.count("ShellPageRuns", page_blocks)?;
    Ok(())
}
