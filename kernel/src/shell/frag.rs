//! `frag`: Linux's two fragmentation indices per order (as
//! `/sys/kernel/debug/extfrag/{unusable_index,extfrag_index}` print them)
//! and an ASCII map of physical memory, one character per chunk of pages.
//!
//! The page allocators keep no public per-page map, so the map is taken
//! by asking the allocator itself, under its lock (one consistent
//! snapshot): a chunk that `alloc_pages_at` can take whole is free (and
//! is given straight back), otherwise each page is asked in turn. Taking
//! and returning free pages leaves a coalescing allocator exactly as it
//! was (the free set, hence the buddy free lists and the bitmap, are the
//! same afterwards).
//!
//! ```text
//!   0x80400000 ....................1###############################
//!              '.' free   '1'..'9' 10%..90% used   '#' full
//! ```

use super::Monitor;
use crate::arch::{PAGE_SIZE, phys_to_virt};
use crate::memory::{layout, pages};
use core::fmt::Write;
use kalloc::PageAllocator;
use kshell::{Args, CommandError};

/// Characters per map line, and the map's target size in characters.
const LINE_CHARS: usize = 64;
const MAP_CHARS: usize = 512;
/// Chunks the map can hold: the target, plus a partial chunk at each end
/// of every free range.
const MAX_CHUNKS: usize = MAP_CHARS + 2 * layout::MAX_FREE_RANGES;

/// `frag`
pub fn frag<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    let stats = pages::stats();
    let top = stats.highest_free_order().unwrap_or(0).max(10);
    write!(out, "order          ")?;
    for order in 0..=top {
        write!(out, "{order:>7}")?;
    }
    writeln!(out)?;
    write!(out, "free blocks    ")?;
    for count in &stats.free_blocks[..=top] {
        write!(out, "{count:>7}")?;
    }
    writeln!(out)?;
    write!(out, "unusable_index ")?;
    for order in 0..=top {
        let index = stats.unusable_free_index(order);
        write!(out, "  {}.{:03}", index / 1000, index % 1000)?;
    }
    writeln!(out)?;
    write!(out, "extfrag_index  ")?;
    for order in 0..=top {
        let index = stats.fragmentation_index(order);
        let sign = if index < 0 { "-" } else { " " };
        let abs = index.unsigned_abs();
        write!(out, " {sign}{}.{:03}", abs / 1000, abs % 1000)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "(unusable: share of free memory unusable for a block of that order; \
         extfrag: -1.000 = would succeed, towards 1.000 = fails from fragmentation)"
    )?;
    map(out)?;
    Ok(())
}

/// Pages used in `[va, va + count pages)`, probed under the page lock.
fn used_pages(allocator: &mut pages::BootPageAllocator, va: usize, count: usize) -> usize {
    let whole = count.is_power_of_two() && va.is_multiple_of(count * PAGE_SIZE);
    if whole && allocator.alloc_pages_at(va, count, PAGE_SIZE).is_ok() {
        let back = allocator.dealloc_pages(va, count);
        debug_assert!(back.is_ok(), "a block just taken goes back");
        return 0;
    }
    (0..count)
        .filter(|page| {
            let addr = va + page * PAGE_SIZE;
            let free = allocator.alloc_pages_at(addr, 1, PAGE_SIZE).is_ok();
            if free {
                let back = allocator.dealloc_pages(addr, 1);
                debug_assert!(back.is_ok(), "a page just taken goes back");
            }
            !free
        })
        .count()
}

fn map(out: &mut dyn Write) -> core::fmt::Result {
    let free_ranges = layout::get().free.as_slice();
    let managed: u64 = free_ranges.iter().map(|r| r.size()).sum();
    let managed_pages = (managed / PAGE_SIZE as u64) as usize;
    let per_char = managed_pages.div_ceil(MAP_CHARS).next_power_of_two().max(1);
    // (chunk start, pages in chunk, pages used), gathered under the lock.
    let mut chunks = [(0usize, 0u16, 0u16); MAX_CHUNKS];
    let mut count = 0;
    pages::with(|allocator| {
        for range in free_ranges {
            let (start, end) = (range.start() as usize, range.end() as usize);
            let chunk_bytes = per_char * PAGE_SIZE;
            let mut pa = start;
            while pa < end && count < MAX_CHUNKS {
                let next = ((pa / chunk_bytes) + 1) * chunk_bytes;
                let len = (next.min(end) - pa) / PAGE_SIZE;
                let used = used_pages(allocator, phys_to_virt(pa), len);
                chunks[count] = (pa, len as u16, used as u16);
                count += 1;
                pa = next.min(end);
            }
        }
    });
    writeln!(
        out,
        "physical memory the page allocator manages, one character = {per_char} page(s) \
         ('.' free, '1'..'9' 10%..90% used, '#' full):"
    )?;
    let mut column = 0;
    let mut previous_end = None;
    for &(pa, len, used) in &chunks[..count] {
        if column == LINE_CHARS || previous_end != Some(pa) {
            if column > 0 {
                writeln!(out)?;
            }
            write!(out, "  {pa:#010x} ")?;
            column = 0;
        }
        let symbol = match (used, len) {
            (0, _) => '.',
            (u, l) if u == l => '#',
            (u, l) => char::from(b'0' + (u32::from(u) * 10 / u32::from(l)).clamp(1, 9) as u8),
        };
        out.write_char(symbol)?;
        column += 1;
        previous_end = Some(pa + usize::from(len) * PAGE_SIZE);
    }
    writeln!(out)?;
    if count == MAX_CHUNKS {
        writeln!(out, "  (map truncated at {MAX_CHUNKS} chunks)")?;
    }
    Ok(())
}
