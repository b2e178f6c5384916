//! The kernel address space: `vmmap` (every mapping of the live kernel
//! page table, adjacent leaves with the same flags and page size merged)
//! and `translate <va>` (the walk of one address through the three Sv39
//! levels, entry by entry, as the MMU does it).
//!
//! Both read the table through `memory::paging::inspect` and copy what
//! they need out before printing, so the table lock is never held while
//! the console is.

use super::Monitor;
use crate::memory::{Size, fault, paging};
use core::fmt::{self, Write};
use kshell::{ArgError, Args, CommandError};
use sv39::{PageSize, PteFlags, VirtAddr, WalkEnd};

/// A run of leaves: contiguous in both address spaces, same flags and size.
#[derive(Clone, Copy)]
struct Run {
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

/// What the kernel keeps at `va`, for a human.
struct What(usize);

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match fault::region_of(self.0) {
            fault::Region::Section(name) => f.write_str(name),
            fault::Region::LinearMap => f.write_str("linear map of RAM"),
            fault::Region::Device(name) => write!(f, "device {name}"),
            fault::Region::StackGuard { .. } | fault::Region::TrapStackGuard { .. } => {
                f.write_str("guard page (should be unmapped!)")
            }
            fault::Region::Unmapped => f.write_str("device"),
        }
    }
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
    let collected = paging::inspect(|table| {
        for leaf in table.mappings() {
            let (va, pa, bytes) = (leaf.va.as_usize(), leaf.pa.as_usize(), leaf.size.bytes());
            if let Some(Some(run)) = count.checked_sub(1).map(|last| runs[last].as_mut())
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
        writeln!(
            out,
            "{:#018x}-{:#018x}  {:#012x} {} {:>10} {:>5}x{:<2}  {}",
            run.va,
            run.va + run.len,
            run.pa,
            Perms(run.flags),
            Size(run.len as u64),
            run.leaves,
            size_name(run.size),
            What(run.va)
        )?;
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
    let va = VirtAddr::new(va).map_err(|_| ArgError::Invalid(word))?;
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
            What(va.as_usize())
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
