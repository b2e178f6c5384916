//! One rate limit for every memory report (out of memory, refused frees
//! and the other memdebug reports), as Linux's `___ratelimit`: at most
//! `burst` reports per `interval` seconds reach the log; the first call of
//! a new window, and the monitor after each command, log how many were
//! suppressed. Defaults are Linux's `DEFAULT_RATELIMIT_BURST` (10) and
//! `DEFAULT_RATELIMIT_INTERVAL` (5 s); `printk_ratelimit=` (seconds, 0 =
//! no limit) and `printk_ratelimit_burst=` change them at boot.
//!
//! Only the log is limited: every report is still counted where it is
//! made (the OOM count, memdebug's counters, the capture buffer), and the
//! limit's own totals ([`totals`]) add up to every report offered.
//!
//! The state is one interrupt-masking spinlock, a leaf: nothing is taken
//! or printed while it is held, and no allocator lock is held by callers.

use crate::sync::IrqSpinLock;

pub const DEFAULT_INTERVAL_SECONDS: u64 = 5;
pub const DEFAULT_BURST: u32 = 10;

struct State {
    interval_seconds: u64,
    burst: u32,
    /// Start of the current window (timebase ticks), 0 before the first.
    begin: u64,
    /// Reports admitted in the current window.
    printed: u32,
    /// Reports suppressed and not yet announced.
    missed: u64,
    logged: u64,
    suppressed: u64,
}

static STATE: IrqSpinLock<State> = IrqSpinLock::new(
    "report ratelimit",
    State {
        interval_seconds: DEFAULT_INTERVAL_SECONDS,
        burst: DEFAULT_BURST,
        begin: 0,
        printed: 0,
        missed: 0,
        logged: 0,
        suppressed: 0,
    },
);

/// `printk_ratelimit=` and `printk_ratelimit_burst=`; a new window
/// starts with the next report.
pub fn configure(interval_seconds: u64, burst: u32) {
    let mut state = STATE.lock();
    state.interval_seconds = interval_seconds;
    state.burst = burst;
    state.begin = 0;
}

/// Whether a report may be logged now. A call that opens a new window
/// first logs how many reports the last one suppressed.
pub fn admit() -> bool {
    let now = crate::arch::cpu::ticks();
    let window = crate::platform::get().timebase_hz;
    let (admitted, announce) = {
        let mut state = STATE.lock();
        if state.interval_seconds == 0 {
            state.logged += 1;
            (true, 0)
        } else {
            let mut announce = 0;
            if state.begin == 0 || now.wrapping_sub(state.begin) >= window * state.interval_seconds
            {
                announce = core::mem::take(&mut state.missed);
                state.begin = now.max(1);
                state.printed = 0;
            }
            let admitted = state.printed < state.burst;
            if admitted {
                state.printed += 1;
                state.logged += 1;
            } else {
                state.missed += 1;
                state.suppressed += 1;
            }
            (admitted, announce)
        }
    };
    announce_suppressed(announce);
    admitted
}

/// Logs how many reports were suppressed since the last announcement, if
/// any (the monitor calls this after each command, so a burst of failures
/// is summed up where it happened).
pub fn flush() {
    let missed = core::mem::take(&mut STATE.lock().missed);
    announce_suppressed(missed);
}

fn announce_suppressed(missed: u64) {
    if missed > 0 {
        log::warn!("{missed} reports suppressed");
    }
}

/// The limit and what it let through: `(interval_seconds, burst, logged,
/// suppressed)` since boot.
pub fn totals() -> (u64, u32, u64, u64) {
    let state = STATE.lock();
    (
        state.interval_seconds,
        state.burst,
        state.logged,
        state.suppressed,
    )
}

#[cfg(feature = "ktest")]
mod tests {
    use super::*;
    use crate::ktest::prelude::*;

    ktest! {
        fn a_burst_per_window_is_logged_and_every_report_counted() {
            let (interval, burst, logged, suppressed) = totals();
            configure(3600, 3);
            let admitted = (0..20).filter(|_| admit()).count();
            let (_, _, logged_now, suppressed_now) = totals();
            flush();
            let missed = STATE.lock().missed;
            configure(0, burst);
            let unlimited = (0..20).all(|_| admit());
            configure(interval, burst);
            kassert_eq!(admitted, 3);
            kassert_eq!(logged_now - logged, 3);
            kassert_eq!(suppressed_now - suppressed, 17);
            kassert_eq!(missed, 0);
            kassert!(unlimited, "printk_ratelimit=0 still suppressed a report");
            Ok(())
        }
    }
}
