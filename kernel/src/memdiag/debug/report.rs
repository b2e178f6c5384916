//! Where every memdebug report goes once no allocator lock is held: the
//! capture buffer (when a test armed it) and the log, rate-limited.

use super::capture;
use super::ratelimit::RateLimit;
use memdebug::Report;

/// The log's budget for the layers' reports (the counters stay exact).
static REPORT_LIMIT: RateLimit = RateLimit::new();

/// Hands a report to the capture buffer (when a test armed it) and to the
/// log (rate-limited). Never called with an allocator lock held.
pub fn publish(report: &Report) {
    capture::record(report);
    match REPORT_LIMIT.admit() {
        Some(0) => log::error!(target: "memdebug", "{report}"),
        Some(suppressed) => log::error!(
            target: "memdebug",
            "{report}\n  ({suppressed} earlier reports suppressed)"
        ),
        None => {}
    }
}
