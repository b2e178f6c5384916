//! The diagnostics and workload commands: `leaks` (memdebug's leak
//! checkpoint and report), `inject` (fault injection, Linux's
//! fail_page_alloc / failslab knobs), `badpage` (the memory-failure API)
//! and `stress` (the stress workload on every hart).

use super::Monitor;
use crate::memdiag::debug::leak;
use crate::memdiag::inject::{self, Site};
use crate::memdiag::{badmem, stress};
use core::fmt::Write;
use faultinject::{BadPage, FaultConfig};
use kshell::{ArgError, Args, CommandError};

/// `leaks [mark|all]`: with no argument, lists what was allocated since
/// the last mark and is still live (taking the first mark if there is
/// none); `mark` sets the mark; `all` lists everything live by call site.
pub fn leaks<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let action = args.next_word();
    args.end()?;
    let Some(now) = leak::checkpoint() else {
        writeln!(
            out,
            "leaks: call sites are not tracked; boot with memdebug=track (or memdebug=all)"
        )?;
        return Err(CommandError::Failed("memdebug=track is off"));
    };
    let since = match (action, monitor.leak_mark) {
        (Some("mark"), _) | (None, None) => {
            monitor.leak_mark = Some(now);
            writeln!(
                out,
                "leaks: checkpoint taken; `leaks` now lists what is allocated after it and still live"
            )?;
            return Ok(());
        }
        (Some("all"), _) => None,
        (None, Some(mark)) => Some(mark),
        (Some(word), _) => return Err(ArgError::Invalid(word).into()),
    };
    let (bytes, pages) = match since {
        Some(mark) => leak::outstanding_since(mark),
        None => leak::outstanding(),
    };
    let scope = if since.is_some() {
        "since the checkpoint"
    } else {
        "since boot"
    };
    writeln!(out, "leaks {scope}:")?;
    writeln!(out, "{bytes}")?;
    writeln!(out, "{pages}")?;
    for summary in [&bytes, &pages] {
        if summary.dropped > 0 {
            writeln!(
                out,
                "({} {} blocks at further call sites not listed)",
                summary.dropped, summary.unit
            )?;
        }
    }
    if crate::memdiag::debug::flags().contains(memdebug::DebugFlags::LEAKCHECK) {
        write!(out, "leak watch: {} periodic checks", leak::checks())?;
        match leak::last_named() {
            Some((site, streak)) => writeln!(
                out,
                "; last named {} ({} blocks, {} live, growing {streak} checks in a row)",
                site.site, site.count, site.size
            )?,
            None => writeln!(out, "; no call site kept growing")?,
        }
    }
    Ok(())
}

fn site_of(word: &str) -> Option<Site> {
    match word {
        "pages" => Some(Site::Pages),
        "slab" => Some(Site::Slab),
        _ => None,
    }
}

fn show_site(out: &mut dyn Write, site: Site) -> core::fmt::Result {
    let config = inject::config(site);
    write!(
        out,
        "{:<16} probability {}%, interval {}, times {}, space {}, min_order {}, filter {:?}; injected {}",
        site.name(),
        config.probability,
        config.interval,
        config.times,
        config.space,
        config.min_order,
        config.filter,
        inject::injected(site)
    )?;
    if inject::fail_nth_pending(site) {
        write!(out, "; fail-nth armed")?;
    }
    writeln!(out)
}

/// `inject [pages|slab] [off | nth <n> | <probability%> [interval] [times] [min_order]]`
pub fn inject<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let Some(word) = args.next_word() else {
        for site in Site::ALL {
            show_site(out, site)?;
        }
        return Ok(());
    };
    let site = site_of(word).ok_or(ArgError::Invalid(word))?;
    match args.next_word() {
        None => {}
        Some("off") => {
            inject::configure(site, FaultConfig::OFF);
            inject::set_fail_nth(site, 0);
        }
        Some("nth") => {
            let n = args.number_in("n", 1..=u64::MAX)?;
            inject::set_fail_nth(site, n);
        }
        Some(probability) => {
            let percent = kshell::parse_number(probability)?;
            if percent > 100 {
                return Err(ArgError::OutOfRange(probability).into());
            }
            let interval = args.number_or(1)?.max(1);
            let times = match args.next_word() {
                None | Some("-1") => -1,
                Some(word) => i64::try_from(kshell::parse_number(word)?)
                    .map_err(|_| ArgError::OutOfRange(word))?,
            };
            let min_order = args.number_or(0)?;
            let min_order = u32::try_from(min_order).map_err(|_| ArgError::Invalid("min_order"))?;
            // The filter is a boot argument only: it must outlive the line.
            inject::configure(
                site,
                FaultConfig {
                    probability: percent as u32,
                    interval,
                    times,
                    min_order,
                    filter: inject::config(site).filter,
                    ..FaultConfig::OFF
                },
            );
        }
    }
    args.end()?;
    show_site(out, site)?;
    Ok(())
}

/// `badpage [<pa>]`: marks the physical page bad (or lists the counts).
pub fn badpage<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    if let Some(word) = args.next_word() {
        args.end()?;
        let pa = kshell::parse_number(word)? as usize;
        match badmem::mark_page_bad(pa) {
            Ok(BadPage::Isolated) => writeln!(
                out,
                "page {:#x}: was free, now isolated (never handed out again)",
                pa & !(crate::arch::PAGE_SIZE - 1)
            )?,
            Ok(BadPage::Pending) => writeln!(
                out,
                "page {:#x}: in use; isolated when its block is freed (a slab on it is retired)",
                pa & !(crate::arch::PAGE_SIZE - 1)
            )?,
            Ok(BadPage::AlreadyBad) => writeln!(out, "page {pa:#x}: already marked bad")?,
            Err(error) => {
                writeln!(out, "badpage {pa:#x}: {error}")?;
                return Err(CommandError::Failed("not marked"));
            }
        }
    }
    let (isolated, pending) = badmem::counts();
    writeln!(
        out,
        "bad pages: {isolated} isolated, {pending} waiting for their block to be freed"
    )?;
    Ok(())
}

/// `stress <seconds> [harts] [seed]`
pub fn stress<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let seconds = args.number_in("seconds", 1..=3600)?;
    let harts = args.number_or(stress::MAX_HARTS as u64)?;
    let seed = args.number_or(stress::DEFAULT_SEED)?;
    args.end()?;
    let harts = harts.clamp(1, stress::MAX_HARTS as u64) as usize;
    // The run allocates and frees on every hart: a block this shell freed
    // may be reused, so it can no longer be recognised as a double free.
    monitor.ledger.forget_freed();
    let _ = out;
    stress::run(seconds, harts, seed, false).map_err(CommandError::Failed)
}
