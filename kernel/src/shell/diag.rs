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
    let action = args.choice(&["mark", "all"], "mark or all")?;
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
        (Some(_), _) => None,
        (None, Some(mark)) => Some(mark),
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
    let site = site_of(word).ok_or(ArgError::Invalid {
        word,
        expected: "pages or slab",
    })?;
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
            let percent = kshell::parse_number(probability).map_err(|_| ArgError::Invalid {
                word: probability,
                expected: "off, nth <n>, or a probability in percent (0 to 100)",
            })?;
            kshell::in_range(probability, 0..=100)?;
            let interval = args.number_in_or(1, 1..=u64::MAX)?;
            let times = match args.next_word() {
                None | Some("-1") => -1,
                Some(word) => {
                    kshell::in_range(word, 0..=i64::MAX as u64).map_err(|_| ArgError::Invalid {
                        word,
                        expected: "a count of failures, or -1 for no limit",
                    })? as i64
                }
            };
            let min_order = args.number_in_or(0, 0..=u64::from(u32::MAX))? as u32;
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
        let page = PageOf(pa);
        match badmem::mark_page_bad(pa) {
            Ok(BadPage::Isolated) => writeln!(
                out,
                "{page}: was free, now isolated (never handed out again)"
            )?,
            Ok(BadPage::Pending) => writeln!(
                out,
                "{page}: in use; isolated when its block is freed (a slab on it is retired)"
            )?,
            Ok(BadPage::AlreadyBad) => writeln!(out, "{page}: already marked bad")?,
            Err(error) => {
                writeln!(out, "{page}: {error}")?;
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

/// The page holding physical address `pa`, as every `badpage` reply names
/// it: its start, and the address typed when that was not the start.
struct PageOf(usize);

impl core::fmt::Display for PageOf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let page = self.0 & !(crate::arch::PAGE_SIZE - 1);
        write!(f, "page {page:#x}")?;
        if page != self.0 {
            write!(f, " (holding {:#x})", self.0)?;
        }
        Ok(())
    }
}

/// `stress <seconds> [harts] [seed]`
pub fn stress<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let seconds = args.number_in("seconds", 1..=3600)?;
    let most = stress::MAX_HARTS as u64;
    let harts = args.number_in_or(most, 1..=most)? as usize;
    let seed = args.number_or(stress::DEFAULT_SEED)?;
    args.end()?;
    // The run allocates and frees on every hart: a block this shell freed
    // may be reused, so it can no longer be recognised as a double free.
    monitor.ledger.forget_freed();
    let _ = out;
    stress::run(seconds, harts, seed, false).map_err(CommandError::Failed)
}
