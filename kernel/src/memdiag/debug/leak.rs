//! Leaks: the checkpoint/diff API (what is still allocated that was
//! allocated after a checkpoint, grouped by call site) and the periodic
//! watch the timer drives under `memdebug=leakcheck`, which logs call
//! sites whose outstanding bytes grew at each of [`LEAK_STREAK`]
//! consecutive checks.

use super::layers::{self, ByteLayer, PageLayer};
use crate::sync::IrqTicketLock;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use memdebug::{Checkpoint, DebugFlags, LeakWatch, SiteSummary};

/// Call sites one summary keeps (the largest first).
pub const SITES: usize = 16;
/// Consecutive growing checks before the watch names a site.
pub const LEAK_STREAK: u32 = 3;

/// A point in both layers' histories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LeakCheckpoint {
    bytes: Checkpoint,
    pages: Checkpoint,
}

/// Marks now; `None` unless `memdebug=` has `track` (nothing to diff).
pub fn checkpoint() -> Option<LeakCheckpoint> {
    if !super::config::flags().contains(DebugFlags::TRACK) {
        return None;
    }
    Some(LeakCheckpoint {
        bytes: layers::with_bytes(|layer| layer.checkpoint())?,
        pages: layers::with_pages(|layer| layer.checkpoint())?,
    })
}

/// Outstanding blocks grouped by call site, largest first.
#[derive(Clone, Copy, Debug)]
pub struct Outstanding {
    /// `bytes` for the global allocator, `pages` for the page allocator.
    pub unit: &'static str,
    sites: [SiteSummary; SITES],
    len: usize,
    /// Blocks whose call site did not fit in the summary.
    pub dropped: usize,
}

impl Outstanding {
    fn new(unit: &'static str) -> Self {
        Outstanding {
            unit,
            sites: [SiteSummary::default(); SITES],
            len: 0,
            dropped: 0,
        }
    }

    pub fn sites(&self) -> &[SiteSummary] {
        &self.sites[..self.len]
    }

    /// Blocks and size over every site.
    pub fn totals(&self) -> (usize, usize) {
        self.sites()
            .iter()
            .fold((0, 0), |(count, size), s| (count + s.count, size + s.size))
    }
}

/// What is still allocated that was allocated after `since`, from the
/// global allocator and from the page allocator.
pub fn outstanding_since(since: LeakCheckpoint) -> (Outstanding, Outstanding) {
    let mut bytes = Outstanding::new("bytes");
    let mut pages = Outstanding::new("pages");
    if let Some((len, dropped)) = layers::with_bytes(|layer: &mut ByteLayer| {
        layer.outstanding_since(since.bytes, &mut bytes.sites)
    }) {
        (bytes.len, bytes.dropped) = (len, dropped);
    }
    if let Some((len, dropped)) = layers::with_pages(|layer: &mut PageLayer| {
        layer.outstanding_since(since.pages, &mut pages.sites)
    }) {
        (pages.len, pages.dropped) = (len, dropped);
    }
    (bytes, pages)
}

/// Everything outstanding since boot, by call site (the page_owner view).
pub fn outstanding() -> (Outstanding, Outstanding) {
    outstanding_since(LeakCheckpoint::default())
}

impl fmt::Display for Outstanding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (count, size) = self.totals();
        write!(
            f,
            "outstanding {}: {count} blocks, {size} {} at {} call sites",
            self.unit, self.unit, self.len
        )?;
        for site in self.sites() {
            write!(
                f,
                "\n  {}: {} blocks, {} {}, oldest #{} at {}us",
                site.site,
                site.count,
                site.size,
                self.unit,
                site.oldest_seq,
                super::config::ticks_to_micros(site.oldest_time)
            )?;
        }
        if self.dropped > 0 {
            write!(f, "\n  ({} more blocks at further sites)", self.dropped)?;
        }
        Ok(())
    }
}

/// One step of the periodic watch: feeds the byte layer's outstanding
/// sites to `watch`; calls `on_growth` for each site that grew at
/// [`LEAK_STREAK`] or more consecutive steps.
pub fn watch_step(watch: &mut LeakWatch<SITES>, mut on_growth: impl FnMut(&SiteSummary, u32)) {
    let (bytes, _) = outstanding();
    watch.observe(bytes.sites(), LEAK_STREAK, |site, streak| {
        on_growth(site, streak)
    });
}

static WATCH: IrqTicketLock<LeakWatch<SITES>> = IrqTicketLock::new("leakwatch", LeakWatch::new());
static TICKS: AtomicUsize = AtomicUsize::new(0);
/// Watch steps the timer ran, and the last site it named (with its streak).
static CHECKS: AtomicUsize = AtomicUsize::new(0);
static LAST_NAMED: IrqTicketLock<Option<(SiteSummary, u32)>> =
    IrqTicketLock::new("leakwatch-named", None);

/// How many periodic checks ran since boot.
pub fn checks() -> usize {
    CHECKS.load(Ordering::Acquire)
}

/// The last site the periodic watch named, with its streak.
pub fn last_named() -> Option<(SiteSummary, u32)> {
    *LAST_NAMED.lock()
}

/// Called by the timer interrupt on every hart: under `leakcheck`, the
/// boot hart runs a watch step every `memdebug.leakwatch` ticks.
pub fn on_tick() {
    if !super::config::flags().contains(DebugFlags::LEAKCHECK) {
        return;
    }
    if crate::arch::hart::try_current().is_none_or(|hart| hart.slot() != 0) {
        return;
    }
    let period = super::config::leak_period_ticks().max(1);
    if !(TICKS.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(period) {
        return;
    }
    let mut named = [None; SITES];
    let mut count = 0;
    watch_step(&mut WATCH.lock(), |site, streak| {
        named[count] = Some((*site, streak));
        count += 1;
    });
    // Logged once the watch's lock is released, under the reports'
    // shared rate limit; the watch's record is kept either way.
    for (site, streak) in named.into_iter().flatten() {
        *LAST_NAMED.lock() = Some((site, streak));
        if !crate::memdiag::ratelimit::admit() {
            continue;
        }
        log::warn!(
            "memdebug: possible leak: {} grew at {streak} consecutive checks: \
             {} blocks, {} bytes outstanding, oldest #{} at {}us",
            site.site,
            site.count,
            site.size,
            site.oldest_seq,
            super::config::ticks_to_micros(site.oldest_time)
        );
    }
    CHECKS.fetch_add(1, Ordering::Release);
}
