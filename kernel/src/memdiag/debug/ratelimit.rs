//! Linux's `ratelimit` for the memory reports: at most [`BURST`] reports
//! per [`INTERVAL_SECONDS`] reach the log, and the first one logged after
//! a quiet spell says how many were suppressed. A workload that expects
//! failures (fault injection, `stress` near exhaustion) would otherwise
//! flood the console; the counters behind each report stay exact.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Reports logged per window, and the window's length.
pub const BURST: usize = 10;
pub const INTERVAL_SECONDS: u64 = 5;

/// One stream of reports sharing a budget.
pub struct RateLimit {
    /// Start (timebase ticks) of the current window.
    window_start: AtomicU64,
    /// Reports admitted in it.
    in_window: AtomicUsize,
    /// Reports suppressed since the last one admitted.
    suppressed: AtomicUsize,
}

impl RateLimit {
    pub const fn new() -> Self {
        Self {
            window_start: AtomicU64::new(0),
            in_window: AtomicUsize::new(0),
            suppressed: AtomicUsize::new(0),
        }
    }

    /// `Some(n)` if this report may be logged, `n` being how many were
    /// suppressed before it; `None` if it is suppressed (and counted).
    /// Races between harts only blur the window's edge.
    pub fn admit(&self) -> Option<usize> {
        let now = crate::arch::cpu::ticks();
        let window = crate::platform::get().timebase_hz * INTERVAL_SECONDS;
        let start = self.window_start.load(Ordering::Relaxed);
        if now.wrapping_sub(start) >= window {
            self.window_start.store(now, Ordering::Relaxed);
            self.in_window.store(0, Ordering::Relaxed);
        }
        if self.in_window.fetch_add(1, Ordering::Relaxed) < BURST {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}
