//! The kernel address space: `vmmap` (every mapping of the live kernel
//! page table, adjacent leaves with the same flags and page size merged)
//! and `translate <va>` (the walk of one address through the three Sv39
//! levels, entry by entry, as the MMU does it).
//!
//! Both read the table through `memory::paging::inspect` and copy what
//! they need out before printing, so the table lock is never held while
//! the console is.

use super::Monitor;
use crate::memory::{Size, layout, paging};
use core::fmt::{self, Write};
use kshell::{ArgError, Args, CommandError};
use sv39::{PageSize, PteFlags, VirtAddr, WalkEnd};

/// A run of leaves: contiguous in both address spaces, same flags and size.
#[derive(Clone, Copy)]
struct Run {
    what: &'static str,
    va: usize,
    pa: usize,
    len: usize,
    size: PageSize,
    flags: PteFlags,
    leaves: usize,
}

const MAX_RUNS: usize = 192;

/// `R-X G A D`-style permissions.
pub struct Perms(pub PteFlags);

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |bit: PteFlags, c: char| if self.0.contains(bit) { c } else { '-' };
        write!(
            f,
            "{}{}{} {}{}{}{}",
            flag(PteFlags::R, 'R'),
            flag(PteFlags::W, 'W'),
            flag(PteFlags::X, 'X'),
            flag(PteFlags::U, 'U'),
            flag(PteFlags::G, 'G'),
            flag(PteFlags::A, 'A'),
            flag(PteFlags::D, 'D')
        )
    }
}

fn size_name(size: PageSize) -> &'static str {
    match size {
        PageSize::Size4K => "4K",
        PageSize::Size2M => "2M",
        PageSize::Size1G => "1G",
    }
}

/// What the kernel keeps at `va` (mapped to `pa`), for a human: an
/// image section, the linear map of RAM, or a device. Reads no lock (it
/// runs while the page-table lock is held).
fn classify(sections: &[layout::Section], va: usize, pa: usize) -> &'static str {
    if let Some(section) = sections.iter().find(|s| s.virt.contains(&va)) {
        return section.name;
    }
    if paging::is_ram(pa) {
        return "linear map of RAM";
    }
    paging::device_at(va).unwrap_or("device")
}

/// The device-tree node whose registers hold physical `pa`, and where
/// they end.
fn device_node(pa: usize) -> Option<(&'static str, usize)> {
    crate::platform::get().fdt.all_nodes().find_map(|node| {
        let reg = node.reg()?.next()?;
        let start = reg.starting_address as usize;
        let end = start + reg.size?;
        (start..end).contains(&pa).then_some((node.name, end))
    })
}

/// `vmmap`
pub fn vmmap<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    let mut runs = [None::<Run>; MAX_RUNS];
    let mut count: usize = 0;
    let mut truncated = false;
    let sections = layout::sections();
    let collected = paging::inspect(|table| {
        for leaf in table.mappings() {
            let (va, pa, bytes) = (leaf.va.as_usize(), leaf.pa.as_usize(), leaf.size.bytes());
            let what = classify(&sections, va, pa);
            if let Some(Some(run)) = count.checked_sub(1).map(|last| runs[last].as_mut())
                && run.what == what
                && run.va + run.len == va
                && run.pa + run.len == pa
                && run.size == leaf.size
                && run.flags == leaf.flags
            {
                run.len += bytes;
                run.leaves += 1;
                continue;
            }
            if count == MAX_RUNS {
                truncated = true;
                break;
            }
            runs[count] = Some(Run {
                what,
                va,
                pa,
                len: bytes,
                size: leaf.size,
                flags: leaf.flags,
                leaves: 1,
            });
            count += 1;
        }
    });
    if collected.is_none() {
        return Err(CommandError::Failed("the kernel page table is not built"));
    }
    writeln!(
        out,
        "{:<39} {:<12} {:<11} {:>10} {:>9}  what",
        "virtual", "physical", "perms", "size", "pages"
    )?;
    let mut leaves = [0usize; 3];
    for run in runs[..count].iter().flatten() {
        leaves[run.size.level()] += run.leaves;
        write!(
            out,
            "{:#018x}-{:#018x}  {:#012x} {} {:>10} {:>5}x{:<2}  {}",
            run.va,
            run.va + run.len,
            run.pa,
            Perms(run.flags),
            Size(run.len as u64),
            run.leaves,
            size_name(run.size),
            run.what
        )?;
        if run.what == "device"
            && let Some((node, end)) = device_node(run.pa)
        {
            let more = if end < run.pa + run.len {
                " and more"
            } else {
                ""
            };
            write!(out, " {node}{more}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "{} runs; leaves: {} x 1G, {} x 2M, {} x 4K{}",
        count,
        leaves[2],
        leaves[1],
        leaves[0],
        if truncated { " (list truncated)" } else { "" }
    )?;
    Ok(())
}

/// `translate <va>`
pub fn translate<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let word = args.word("va")?;
    let va = kshell::parse_number(word)? as usize;
    args.end()?;
    let va = VirtAddr::new(va).map_err(|_| ArgError::Invalid {
        word,
        expected: "an Sv39 address: bits 63..39 copies of bit 38 (0x0..0x3f_ffff_ffff or \
                   0xffff_ffc0_0000_0000 and up)",
    })?;
    let sections = layout::sections();
    let walk = paging::inspect(|table| table.walk(va))
        .ok_or(CommandError::Failed("the kernel page table is not built"))?;
    writeln!(
        out,
        "{:#x}: VPN[2]={} VPN[1]={} VPN[0]={} offset {:#x}",
        va.as_usize(),
        va.index(2),
        va.index(1),
        va.index(0),
        va.as_usize() & 0xfff
    )?;
    for step in walk.steps() {
        let entry = step.entry;
        write!(
            out,
            "  L{} table {:#x} [{:>3}] = {:#018x}  ",
            step.level,
            step.table.as_usize(),
            step.index,
            entry.bits()
        )?;
        if !entry.is_valid() {
            writeln!(out, "invalid")?;
        } else if entry.is_leaf() {
            writeln!(
                out,
                "leaf {} {}",
                size_name(PageSize::at_level(step.level)),
                Perms(entry.flags())
            )?;
        } else {
            writeln!(out, "next table {:#x}", entry.addr().as_usize())?;
        }
    }
    match walk.end {
        WalkEnd::Leaf(translation) => writeln!(
            out,
            "  => physical {:#x}, {} page, {} ({})",
            translation.pa.as_usize(),
            size_name(translation.size),
            Perms(translation.flags),
            classify(&sections, va.as_usize(), translation.pa.as_usize())
        )?,
        WalkEnd::Invalid { level } => {
            writeln!(out, "  => not mapped (invalid entry at level {level})")?
        }
        WalkEnd::Malformed { level } => writeln!(
            out,
            "  => malformed entry at level {level}: the MMU would raise a page fault"
        )?,
    }
    Ok(())
}
