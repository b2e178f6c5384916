//! The memory-info commands, printed the way Linux prints them:
//! `meminfo` (`/proc/meminfo`: `Name:  value kB`), `buddyinfo`
//! (`/proc/buddyinfo`) and `slabinfo` (`/proc/slabinfo`, version 2.1).
//!
//! Every figure is read from the allocators' own accounting at the moment
//! of the command; none is cached by the shell.

use super::Monitor;
use crate::arch::PAGE_SIZE;
use crate::memory::{heap, pages};
use crate::platform;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use kalloc::byte::SlabInfo;
use kshell::{Args, CommandError};

const KB_PER_PAGE: usize = PAGE_SIZE / 1024;

/// `pagealloc=` as the running kernel has it.
pub fn page_allocator_name() -> &'static str {
    pages::with(|allocator| match allocator {
        pages::BootPageAllocator::Buddy(_) => "buddy page allocator",
        pages::BootPageAllocator::Bitmap(_) => "bitmap page allocator",
    })
}

/// `alloc=` as the kernel booted with it.
pub fn heap_name() -> &'static str {
    heap::kind().map_or("?", heap::HeapKind::name)
}

/// The slab caches' rows, or `None` unless the heap is `alloc=slab`.
fn slab_stats() -> Option<crate::memdiag::stats::MemoryStats> {
    (heap::kind() == Some(heap::HeapKind::Slab)).then(crate::memdiag::stats::get_memory_stats)
}

/// Linux's watermarks for `managed_pages` (in pages): `min_free_kbytes =
/// sqrt(16 * lowmem_kbytes)` clamped to 128..=262144, low = min + min/4,
/// high = min + min/2 (mm/page_alloc.c, before watermark_scale_factor).
pub fn watermarks(managed_pages: usize) -> (usize, usize, usize) {
    let kbytes = (managed_pages * KB_PER_PAGE) as u64;
    let min_kbytes = (kbytes * 16).isqrt().clamp(128, 262_144) as usize;
    let min = min_kbytes.div_ceil(KB_PER_PAGE);
    (min, min + min / 4, min + min / 2)
}

fn kb(pages: usize) -> usize {
    pages * KB_PER_PAGE
}

/// `meminfo`
pub fn meminfo<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    let ram: u64 = platform::get()
        .ram
        .as_slice()
        .iter()
        .map(|r| r.size())
        .sum();
    let stats = pages::stats();
    // Blocks parked in the harts' page lists are free for any request,
    // though not in the allocator (FreePages, buddyinfo).
    let listed = pages::cache_stats().parked_pages;
    let (total, free) = (stats.total_pages, stats.free_pages + listed);
    let used = total - free;
    let counters = &crate::memory::counters::COUNTERS;
    let heap = crate::memory::global::stats();
    let heap_pages = counters.heap_pages.load(Ordering::Relaxed);
    let large_pages = counters.large_pages.load(Ordering::Relaxed);
    let (min, low, high) = watermarks(total);
    let zone = if free <= min {
        "below min"
    } else if free <= low {
        "below low"
    } else if free <= high {
        "below high"
    } else {
        "above high"
    };
    let (blocks, bytes, page_blocks, page_count) = monitor.ledger.totals();
    let line = |out: &mut dyn Write, name: &str, value: usize, unit: &str, note: &str| {
        let pad = 15usize.saturating_sub(name.len());
        match (unit, note) {
            ("", "") => writeln!(out, "{name}:{:pad$}{value:>12}", ""),
            (unit, "") => writeln!(out, "{name}:{:pad$}{value:>12} {unit}", ""),
            (unit, note) => writeln!(out, "{name}:{:pad$}{value:>12} {unit:<2}  {note}", ""),
        }
    };
    line(
        out,
        "MemTotal",
        (ram / 1024) as usize,
        "kB",
        "RAM in the device tree",
    )?;
    line(out, "MemManaged", kb(total), "kB", page_allocator_name())?;
    line(
        out,
        "MemFree",
        kb(free),
        "kB",
        "in the allocator and the harts' page lists",
    )?;
    line(out, "MemUsed", kb(used), "kB", "managed minus free")?;
    line(
        out,
        "Reserved",
        (ram / 1024) as usize - kb(total),
        "kB",
        "firmware, kernel image, device tree, allocator metadata",
    )?;
    line(
        out,
        "FreePages",
        stats.free_pages,
        "",
        "pages of 4 KiB in the allocator",
    )?;
    line(
        out,
        "PagesListed",
        listed,
        "",
        "free pages parked in the harts' lists",
    )?;
    line(out, "LargestFreeRun", kb(stats.largest_free_run), "kB", "")?;
    line(
        out,
        "WatermarkMin",
        kb(min),
        "kB",
        "Linux's formula; advisory",
    )?;
    line(out, "WatermarkLow", kb(low), "kB", "")?;
    line(out, "WatermarkHigh", kb(high), "kB", zone)?;
    writeln!(out, "HeapAllocator:  {:>12}", heap_name())?;
    line(
        out,
        "HeapPages",
        kb(heap_pages),
        "kB",
        "held by the byte allocator (pools, slabs)",
    )?;
    if let Some(stats) = slab_stats() {
        let slab_pages: usize = stats
            .slab_rows()
            .map(|r| r.pages_per_slab * (r.full_slabs + r.partial_slabs + r.empty_slabs))
            .sum();
        line(
            out,
            "Slab",
            kb(slab_pages),
            "kB",
            "slabs of the kmalloc caches",
        )?;
    }
    line(
        out,
        "HeapUsed",
        crate::memory::global::used_bytes(),
        "B",
        "handed out by the byte allocator, with rounding",
    )?;
    line(
        out,
        "HeapLive",
        heap.live_bytes(),
        "B",
        "requested through the global allocator",
    )?;
    line(out, "HeapLiveBlocks", heap.live_blocks() as usize, "", "")?;
    line(
        out,
        "HeapCached",
        heap.cached_bytes,
        "B",
        "free objects parked in the harts' caches",
    )?;
    line(
        out,
        "LargeAllocs",
        kb(large_pages),
        "kB",
        "requests of a page or more, straight from the page allocator",
    )?;
    line(
        out,
        "HeapLargestFree",
        crate::memory::global::largest_free_block(),
        "B",
        "without growing",
    )?;
    line(out, "AllocFailures", heap.failures as usize, "", "")?;
    line(out, "ShellAlloc", bytes, "B", "")?;
    line(out, "ShellAllocs", blocks, "", "blocks from `alloc`")?;
    line(out, "ShellPages", kb(page_count), "kB", "")?;
    line(
        out,
        "ShellPageAllocs",
        page_blocks,
        "",
        "blocks from `pages`",
    )?;
    Ok(())
}

/// `buddyinfo`: free blocks per order, orders 0 to at least 10.
pub fn buddyinfo<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    let stats = pages::stats();
    let top = stats.highest_free_order().unwrap_or(0).max(10);
    write!(out, "Node 0, zone   Normal ")?;
    for count in &stats.free_blocks[..=top] {
        write!(out, "{count:>7}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "# orders 0..={top}; {} ({} free pages = sum of count x 2^order)",
        page_allocator_name(),
        stats.free_pages
    )?;
    Ok(())
}

/// `slabinfo`
pub fn slabinfo<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    let Some(stats) = slab_stats() else {
        writeln!(
            out,
            "slabinfo: the kernel heap is `{}` (boot argument alloc=), which has no slab caches",
            heap_name()
        )?;
        return Ok(());
    };
    writeln!(out, "slabinfo - version: 2.1")?;
    writeln!(
        out,
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> \
         : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>"
    )?;
    let caches_on = crate::memory::global::HEAP.caches_enabled();
    for (index, info) in stats.slab_rows().enumerate() {
        // The kmalloc classes come first; their per-hart magazines are the
        // `limit` (and a refill's `batchcount`) of Linux's tunables.
        let limit = match index < kalloc::byte::KMALLOC_CLASSES && caches_on {
            true => kheap::magazine_capacity(index),
            false => 0,
        };
        print_row(out, info, limit)?;
    }
    Ok(())
}

/// `caches [drain]`: objects parked in each hart's heap caches (per
/// class) and pages in its page lists, and how often the harts took the
/// heap's and the page allocator's locks; `drain` first asks every hart to
/// give everything back.
pub fn caches<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let drain = match args.next_word() {
        None => false,
        Some("drain") => true,
        Some(other) => return Err(CommandError::Args(kshell::ArgError::Invalid(other))),
    };
    args.end()?;
    let heap = &crate::memory::global::HEAP;
    if !heap.caches_enabled() {
        writeln!(
            out,
            "caches: the kernel heap is `{}` (boot argument alloc=): no per-hart object caches \
             (they serve the slab classes)",
            heap_name()
        )?;
    }
    if drain {
        let objects = crate::memory::global::drain_caches();
        let pages = crate::memory::pages::drain_lists();
        writeln!(
            out,
            "drained on this hart: {} objects, {} page blocks; other harts asked {} and {}, \
             answered {} and {} (heap, pages)",
            objects.objects_here,
            pages.objects_here,
            objects.cpus_asked,
            pages.cpus_asked,
            objects.cpus_answered,
            pages.cpus_answered
        )?;
    }
    let pages_parked = crate::memory::pages::parked_per_hart();
    writeln!(
        out,
        "hart slot  pages  objects     bytes  parked per class (size:objects)"
    )?;
    for hart in crate::arch::hart::online() {
        let parked = heap.parked_on(hart.slot());
        let bytes: usize = parked
            .iter()
            .zip(kalloc::byte::KMALLOC_SIZES)
            .map(|(count, size)| count * size)
            .sum();
        write!(
            out,
            "{:>4} {:>4} {:>6} {:>8} {:>9} ",
            hart.hart_id(),
            hart.slot(),
            pages_parked[hart.slot()],
            parked.iter().sum::<usize>(),
            bytes
        )?;
        for (count, size) in parked.iter().zip(kalloc::byte::KMALLOC_SIZES) {
            if *count != 0 {
                write!(out, " {size}:{count}")?;
            }
        }
        writeln!(out)?;
    }
    let stats = heap.stats();
    writeln!(
        out,
        "heap: {} objects ({} bytes) parked; lock taken {} times ({} refills, {} flushes) \
         for {} allocs+frees",
        stats.cached_total(),
        stats.cached_bytes,
        stats.lock_acquisitions,
        stats.refills,
        stats.flushes,
        stats.allocs + stats.frees
    )?;
    let pages = crate::memory::pages::cache_stats();
    writeln!(
        out,
        "pages: {} pages parked (blocks of 1, 2, 4, 8 pages: {:?}); lock taken {} times \
         for {} allocs+frees",
        pages.parked_pages,
        pages.parked_blocks,
        pages.lock_acquisitions,
        pages.allocs + pages.frees
    )?;
    Ok(())
}

fn print_row(out: &mut dyn Write, info: &SlabInfo, limit: usize) -> core::fmt::Result {
    let active_slabs = info.full_slabs + info.partial_slabs;
    writeln!(
        out,
        "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
        info.name,
        info.active_objects,
        info.total_objects,
        info.object_size,
        info.objects_per_slab,
        info.pages_per_slab,
        limit,
        limit,
        0,
        active_slabs,
        active_slabs + info.empty_slabs,
        0
    )
}
