//! Where every memdebug report goes once no allocator lock is held: the
//! capture buffer (when a test armed it) and the log, under the reports'
//! shared rate limit (`memdiag::ratelimit`; the counters stay exact).

use super::capture;
use crate::memdiag::ratelimit;
use memdebug::Report;

/// Hands a report to the capture buffer (when a test armed it) and to the
/// log (rate-limited). Never called with an allocator lock held.
pub fn publish(report: &Report) {
    capture::record(report);
    if ratelimit::admit() {
        log::error!(target: super::MEMDEBUG, "{report}");
    }
}
