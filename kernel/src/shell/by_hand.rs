//! Allocating and freeing by hand: `alloc`, `free`, `pages`, `freepages`.
//!
//! The [`Ledger`] remembers every block the shell handed out (so `free`
//! can pass the allocator the right layout) and the blocks it freed (so a
//! second free is recognised). Only a remembered block is ever given to an
//! allocator; any other address gets a diagnosis and is left alone, since
//! freeing an arbitrary kernel address would corrupt the heap.
//!
//! A repeated free of bytes is not passed on: the shell asks the global
//! allocator for the verdict the free would get (`global::check_free`),
//! which is the allocator's own typed error for a block that is no longer
//! live, without the risk of freeing a block handed out again since. A
//! repeated free of pages is passed on: the page allocator refuses any
//! range that is not exactly a live block of that size.

use super::Monitor;
pub use super::ledger::Ledger;
use super::ledger::{Kind, Record};
use crate::arch::PAGE_SIZE;
use crate::memdiag::fault_report;
use crate::memory::global::{Block, FreedBlock};
use crate::memory::{Size, heap, pages};
use core::alloc::Layout;
use core::fmt::Write;
use kshell::{ArgError, Args, CommandError, parse_number};

fn layout_of(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).expect("validated by the caller")
}

/// `alloc <size> [align]`
pub fn alloc<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let size = args.number_in("size", 1..=1 << 30)?;
    let align = match args.next_word() {
        None => 8,
        Some(word) => {
            let align = parse_number(word)?;
            if !align.is_power_of_two() || align > (1 << 30) {
                return Err(ArgError::Invalid {
                    word,
                    expected: "a power of two from 1 to 1G",
                }
                .into());
            }
            align
        }
    };
    args.end()?;
    if !monitor.ledger.has_room() {
        return Err(CommandError::Failed(
            "the shell remembers 64 live blocks at most: free some first",
        ));
    }
    let (size, align) = (size as usize, align as usize);
    let layout = layout_of(size, align);
    // The scope names this line as the call site for `leaks` (memdebug
    // cannot see past the global allocator's shim otherwise).
    let Some(block) = crate::memdiag::debug::site::at_site(|| Block::alloc(layout)) else {
        writeln!(
            out,
            "alloc: the kernel heap refused {size} bytes, align {align}:"
        )?;
        crate::memory::global::print_failure_diagnosis();
        return Err(CommandError::Failed("out of memory"));
    };
    let record = monitor.ledger.add_bytes(block);
    let via = if heap::goes_to_pages(layout) {
        "page allocator, whole pages"
    } else {
        "heap byte allocator"
    };
    writeln!(out, "{record} ({via})")?;
    Ok(())
}

/// `pages <count>`
pub fn pages<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let count = args.number_in("count", 1..=1 << 20)? as usize;
    args.end()?;
    if !monitor.ledger.has_room() {
        return Err(CommandError::Failed(
            "the shell remembers 64 live blocks at most: free some first",
        ));
    }
    match pages::alloc(count, PAGE_SIZE) {
        Ok(addr) => {
            let record = monitor.ledger.add_pages(addr, count);
            writeln!(out, "{record} ({})", Size((count * PAGE_SIZE) as u64))?;
            Ok(())
        }
        Err(error) => {
            let stats = pages::stats();
            writeln!(
                out,
                "pages: the page allocator refused {count} page(s): {error} ({error:?}); \
                 {} pages free, largest free run {} pages",
                stats.free_pages, stats.largest_free_run
            )?;
            Err(CommandError::Failed("allocation refused"))
        }
    }
}

/// Frees a live record; prints the allocator's error if it refuses. What
/// the ledger keeps of it afterwards comes back.
fn release(
    record: Record,
    block: Option<Block>,
    out: &mut dyn Write,
) -> Result<Option<FreedBlock>, (Option<Block>, CommandError<'static>)> {
    match (record.kind, block) {
        (Kind::Bytes { .. }, Some(block)) => Ok(Some(block.free())),
        (Kind::Pages { count }, None) => match pages::free(record.addr, count) {
            Ok(()) => Ok(None),
            Err(error) => {
                let _ = writeln!(out, "page allocator: {error} ({error:?})");
                Err((
                    None,
                    CommandError::Failed("the page allocator refused the free"),
                ))
            }
        },
        (_, block) => Err((
            block,
            CommandError::Failed("ledger record without its block"),
        )),
    }
}

/// Asks the allocator for its verdict on a second free of a block freed
/// before, without freeing anything: the address may have been handed
/// out again since (to this shell or to anyone), and a free accepted then
/// would free a block someone else uses.
fn free_again(
    record: Record,
    freed: Option<FreedBlock>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'static>> {
    writeln!(out, "double free: {record} was already freed by this shell")?;
    let (verdict, who) = match (record.kind, freed) {
        (Kind::Bytes { size, align }, Some(freed)) => {
            let who = if crate::memdiag::debug::bytes_on() {
                "memdebug byte layer (report above)"
            } else if heap::goes_to_pages(layout_of(size, align)) {
                "kernel heap, large block table"
            } else {
                "heap byte allocator"
            };
            (freed.check_free(), who)
        }
        (Kind::Pages { count }, _) => (pages::free(record.addr, count), "page allocator"),
        (Kind::Bytes { .. }, None) => {
            return Err(CommandError::Failed("ledger record without its block"));
        }
    };
    match verdict {
        Err(error) => writeln!(out, "{who}: {error} ({error:?}); nothing changed")?,
        Ok(()) => writeln!(
            out,
            "{who}: {:#x} is a live block again (handed out since); not freed",
            record.addr
        )?,
    }
    Err(CommandError::Failed("double free refused"))
}

/// Explains why `addr` is not something the shell can free.
fn unknown(
    monitor: &Monitor,
    addr: usize,
    out: &mut dyn Write,
) -> Result<(), CommandError<'static>> {
    if let Some(block) = monitor.ledger.live_containing(addr) {
        writeln!(
            out,
            "{addr:#x} is inside block {block}, not its start; free takes the start address"
        )?;
        return Err(CommandError::Failed("not the start of a block"));
    }
    writeln!(
        out,
        "{addr:#x} ({}) was not handed out by this shell's `alloc` or `pages`; \
         it is left alone (freeing an arbitrary kernel address would corrupt the heap)",
        RegionName(addr)
    )?;
    Err(CommandError::Failed("unknown address"))
}

struct RegionName(usize);

impl core::fmt::Display for RegionName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match fault_report::region_of(self.0) {
            fault_report::Region::LinearMap => f.write_str("linear map of RAM"),
            fault_report::Region::Section(name) => write!(f, "kernel {name}"),
            fault_report::Region::Device(name) => write!(f, "device {name}"),
            fault_report::Region::Unmapped => f.write_str("unmapped"),
            fault_report::Region::StackGuard { hart_id } => {
                write!(f, "guard page below hart {hart_id}'s stack")
            }
            fault_report::Region::TrapStackGuard { hart_id } => {
                write!(f, "guard page below hart {hart_id}'s trap stack")
            }
            fault_report::Region::Sampled(_) => f.write_str("memdebug.kfence window"),
        }
    }
}

/// `free <addr>`
pub fn free<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let addr = args.number("addr")? as usize;
    args.end()?;
    if let Some((record, block)) = monitor.ledger.take_live(addr) {
        return free_live(monitor, record, block, out);
    }
    if let Some((record, freed)) = monitor.ledger.freed_at(addr) {
        return free_again(record, freed, out);
    }
    unknown(monitor, addr, out)
}

/// Frees a block the ledger just gave up, and remembers it as freed; a
/// refused free puts it back.
fn free_live(
    monitor: &mut Monitor,
    record: Record,
    block: Option<Block>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'static>> {
    match release(record, block, out) {
        Ok(freed) => {
            monitor.ledger.remember_freed(record, freed);
            writeln!(out, "freed {record}")?;
            Ok(())
        }
        Err((block, error)) => {
            monitor.ledger.restore(record, block);
            Err(error)
        }
    }
}

/// `freepages <addr> <count>`
pub fn freepages<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let addr = args.number("addr")? as usize;
    let count = args.number("count")? as usize;
    args.end()?;
    match monitor.ledger.live_at(addr).map(|r| r.kind) {
        Some(Kind::Pages { count: held }) if held == count => {
            let (record, block) = monitor.ledger.take_live(addr).expect("just found");
            free_live(monitor, record, block, out)
        }
        Some(Kind::Pages { count: held }) => {
            writeln!(
                out,
                "freepages: {addr:#x} is a block of {held} page(s), not {count}: give its count, \
                 {held} (a partial free is refused)"
            )?;
            Err(CommandError::Reported)
        }
        Some(Kind::Bytes { .. }) => Err(CommandError::Failed(
            "that block came from `alloc`: use `free <addr>`",
        )),
        None => match monitor.ledger.freed_at(addr) {
            Some((record, freed)) => free_again(record, freed, out),
            None => unknown(monitor, addr, out),
        },
    }
}
