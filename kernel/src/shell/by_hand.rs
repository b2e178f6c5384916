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
use crate::memory::{Size, fault, global, heap, pages};
use core::alloc::Layout;
use core::fmt::Write;
use core::ptr::NonNull;
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
    let size_word = args.word("size")?;
    let size = parse_number(size_word)?;
    if size == 0 || size > (1 << 30) {
        return Err(ArgError::OutOfRange(size_word).into());
    }
    let align = match args.next_word() {
        None => 8,
        Some(word) => {
            let align = parse_number(word)?;
            if !align.is_power_of_two() || align > (1 << 30) {
                return Err(ArgError::Invalid(word).into());
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
    // SAFETY: non-zero size (checked above).
    let ptr = crate::memory::debug::site::at_site(|| unsafe { alloc::alloc::alloc(layout) });
    if ptr.is_null() {
        writeln!(
            out,
            "alloc: the kernel heap refused {size} bytes, align {align}:"
        )?;
        crate::memory::global::print_failure_diagnosis();
        return Err(CommandError::Failed("out of memory"));
    }
    let record = monitor
        .ledger
        .add(ptr as usize, Kind::Bytes { size, align });
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
            let record = monitor.ledger.add(addr, Kind::Pages { count });
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

/// Frees a live record; prints the allocator's error if it refuses.
fn release(record: Record, out: &mut dyn Write) -> Result<(), CommandError<'static>> {
    match record.kind {
        Kind::Bytes { size, align } => {
            // SAFETY: the ledger holds exactly the blocks `alloc` returned
            // with this layout and not yet freed.
            unsafe { alloc::alloc::dealloc(record.addr as *mut u8, layout_of(size, align)) };
            Ok(())
        }
        Kind::Pages { count } => pages::free(record.addr, count).map_err(|error| {
            let _ = writeln!(out, "page allocator: {error} ({error:?})");
            CommandError::Failed("the page allocator refused the free")
        }),
    }
}

/// Asks the allocator for its verdict on a second free of a block freed
/// before, without freeing anything: the address may have been handed
/// out again since (to this shell or to anyone), and a free accepted then
/// would free a block someone else uses.
fn free_again(record: Record, out: &mut dyn Write) -> Result<(), CommandError<'static>> {
    writeln!(out, "double free: {record} was already freed by this shell")?;
    let (verdict, who) = match record.kind {
        Kind::Bytes { size, align } => {
            let block = NonNull::new(record.addr as *mut u8).expect("the ledger holds no null");
            // SAFETY: the ledger holds only addresses the global allocator
            // returned to `alloc`.
            let verdict = unsafe { global::check_free(block, layout_of(size, align)) };
            let who = if crate::memory::debug::bytes_on() {
                "memdebug byte layer (report above)"
            } else if heap::goes_to_pages(layout_of(size, align)) {
                "kernel heap, large block table"
            } else {
                "heap byte allocator"
            };
            (verdict, who)
        }
        Kind::Pages { count } => (pages::free(record.addr, count), "page allocator"),
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
        match fault::region_of(self.0) {
            fault::Region::LinearMap => f.write_str("linear map of RAM"),
            fault::Region::Section(name) => write!(f, "kernel {name}"),
            fault::Region::Device(name) => write!(f, "device {name}"),
            fault::Region::Unmapped => f.write_str("unmapped"),
            fault::Region::StackGuard { hart_id } => {
                write!(f, "guard page below hart {hart_id}'s stack")
            }
            fault::Region::TrapStackGuard { hart_id } => {
                write!(f, "guard page below hart {hart_id}'s trap stack")
            }
            fault::Region::Sampled(_) => f.write_str("memdebug.kfence window"),
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
    if let Some(record) = monitor.ledger.take_live(addr) {
        if let Err(error) = release(record, out) {
            monitor.ledger.restore(record);
            return Err(error);
        }
        monitor.ledger.remember_freed(record);
        writeln!(out, "freed {record}")?;
        return Ok(());
    }
    if let Some(record) = monitor.ledger.freed_at(addr) {
        return free_again(record, out);
    }
    unknown(monitor, addr, out)
}

/// `freepages <addr> <count>`
pub fn freepages<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let addr = args.number("addr")? as usize;
    let count_word = args.word("count")?;
    let count = parse_number(count_word)? as usize;
    args.end()?;
    match monitor.ledger.live_at(addr).map(|r| r.kind) {
        Some(Kind::Pages { count: held }) if held == count => {
            let record = monitor.ledger.take_live(addr).expect("just found");
            if let Err(error) = release(record, out) {
                monitor.ledger.restore(record);
                return Err(error);
            }
            monitor.ledger.remember_freed(record);
            writeln!(out, "freed {record}")?;
            Ok(())
        }
        Some(Kind::Pages { count: held }) => {
            writeln!(
                out,
                "{addr:#x} is a block of {held} page(s), not {count}; a partial free is refused"
            )?;
            Err(ArgError::OutOfRange(count_word).into())
        }
        Some(Kind::Bytes { .. }) => Err(CommandError::Failed(
            "that block came from `alloc`: use `free <addr>`",
        )),
        None => match monitor.ledger.freed_at(addr) {
            Some(record) => free_again(record, out),
            None => unknown(monitor, addr, out),
        },
    }
}
