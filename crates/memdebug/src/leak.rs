//! Outstanding allocations grouped by call site: the leak checkpoint/diff
//! API and the periodic watch for sites whose outstanding size keeps growing.

use crate::CallSite;
use crate::ledger::Record;

/// Outstanding allocations of one call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SiteSummary {
    /// Where the blocks were allocated.
    pub site: CallSite,
    /// Live blocks.
    pub count: usize,
    /// Their total requested size (bytes or pages).
    pub size: usize,
    /// The oldest one's allocation number.
    pub oldest_seq: u64,
    /// The oldest one's allocation time (clock ticks).
    pub oldest_time: u64,
}

/// A point in an allocator's history; blocks allocated after it are "new".
/// The default checkpoint is the beginning: every live block is after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Checkpoint(pub(crate) u64);

/// Groups `records` allocated at or after sequence number `since` by call
/// site into `out`, largest size first. Returns how many entries were
/// filled and how many blocks did not fit (their sites beyond `out.len()`).
pub(crate) fn tally(
    records: impl Iterator<Item = Record>,
    since: u64,
    out: &mut [SiteSummary],
) -> (usize, usize) {
    let mut filled = 0;
    let mut dropped = 0;
    for record in records.filter(|r| r.seq() >= since) {
        let site = record.alloc_site();
        let entry = match out[..filled].iter_mut().position(|s| s.site == site) {
            Some(index) => &mut out[index],
            None if filled < out.len() => {
                out[filled] = SiteSummary {
                    site,
                    oldest_seq: u64::MAX,
                    ..SiteSummary::default()
                };
                filled += 1;
                &mut out[filled - 1]
            }
            None => {
                dropped += 1;
                continue;
            }
        };
        entry.count += 1;
        entry.size += record.size();
        if record.seq() < entry.oldest_seq {
            entry.oldest_seq = record.seq();
            entry.oldest_time = record.alloc_time();
        }
    }
    out[..filled]
        .sort_unstable_by(|a, b| b.size.cmp(&a.size).then(a.oldest_seq.cmp(&b.oldest_seq)));
    (filled, dropped)
}

/// Watches call sites across periodic checks and flags those whose
/// outstanding size grew at each of the last `min_streak` checks.
#[derive(Debug, Clone)]
pub struct LeakWatch<const SITES: usize> {
    sites: [(CallSite, usize, u32); SITES],
    len: usize,
}

impl<const SITES: usize> Default for LeakWatch<SITES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SITES: usize> LeakWatch<SITES> {
    /// A watch that has seen no check yet.
    pub const fn new() -> Self {
        LeakWatch {
            sites: [(CallSite::Unknown, 0, 0); SITES],
            len: 0,
        }
    }

    /// Feeds one check's summaries; calls `on_growth(summary, streak)` for
    /// each site that grew at `min_streak` or more consecutive checks.
    /// Sites absent from `summaries` are forgotten.
    pub fn observe(
        &mut self,
        summaries: &[SiteSummary],
        min_streak: u32,
        mut on_growth: impl FnMut(&SiteSummary, u32),
    ) {
        let mut next = [(CallSite::Unknown, 0, 0); SITES];
        let mut next_len = 0;
        for summary in summaries.iter().take(SITES) {
            let previous = self.sites[..self.len]
                .iter()
                .find(|(site, _, _)| *site == summary.site);
            let streak = match previous {
                Some(&(_, size, streak)) if summary.size > size => streak + 1,
                Some(_) => 0,
                None => 0,
            };
            next[next_len] = (summary.site, summary.size, streak);
            next_len += 1;
            if streak >= min_streak {
                on_growth(summary, streak);
            }
        }
        self.sites = next;
        self.len = next_len;
    }
}
