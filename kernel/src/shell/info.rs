//! The memory-info commands, printed byte for byte the way Linux prints
//! them: `buddyinfo` (`/proc/buddyinfo`) and `slabinfo` (`/proc/slabinfo`,
//! version 2.1); `meminfo` is in `meminfo.rs`. `caches` shows the per-hart
//! caches, which Linux has no file for.
//!
//! Every figure is read from the allocators' own accounting at the moment
//! of the command; none is cached by the shell.

use super::Monitor;
use crate::memory::{heap, pages};
use core::fmt::Write;
use kalloc::byte::SlabInfo;
use kshell::{Args, CommandError};

/// `alloc=` as the kernel booted with it.
pub fn heap_name() -> &'static str {
    heap::kind().map_or("?", heap::HeapKind::name)
}

/// Whether the heap has slab caches (`alloc=slab`).
pub fn slabs_present() -> bool {
    heap::kind() == Some(heap::HeapKind::Slab)
}

/// The slab caches' rows, or `None` unless the heap is `alloc=slab`.
fn slab_stats() -> Option<crate::memdiag::stats::MemoryStats> {
    slabs_present().then(crate::memdiag::stats::get_memory_stats)
}

/// `help buddyinfo`.
pub const BUDDYINFO_DETAILS: &str = "\
Linux's format (mm/vmstat.c): `Node 0, zone   Normal ` then each order's free-block count as `%6lu `
orders 0 to the largest this RAM can hold; free pages in the allocator = sum of count x 2^order
(meminfo's MemFree; blocks parked in the harts' page lists are not counted, as Linux's per-CPU lists)";

/// `help slabinfo`.
pub const SLABINFO_DETAILS: &str = "\
Linux's slabinfo 2.1 format (mm/slab_common.c); one row per cache of the slab allocator
limit and batchcount: the per-hart magazine capacity of a kmalloc class (0 without the caches)
active_objs: objects handed out (those parked in the harts' caches count as free)
active_slabs: full and partial slabs; num_slabs: those and the empty ones
with alloc=tlsf or alloc=buddy there are no slab caches: the header alone";

/// `buddyinfo`: free blocks per order, byte for byte as Linux prints
/// `/proc/buddyinfo` (one zone; every order up to [`pages::max_order`]).
pub fn buddyinfo<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    let stats = pages::stats();
    write!(out, "Node {}, zone {:>8} ", 0, "Normal")?;
    for count in &stats.free_blocks[..=pages::max_order()] {
        write!(out, "{count:>6} ")?;
    }
    writeln!(out)?;
    Ok(())
}

/// `slabinfo`
pub fn slabinfo<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    writeln!(out, "slabinfo - version: 2.1")?;
    writeln!(
        out,
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> \
         : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>"
    )?;
    let Some(stats) = slab_stats() else {
        return Ok(());
    };
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
    let drain = args.choice(&["drain"], "drain")?.is_some();
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
