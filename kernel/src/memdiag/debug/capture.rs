//! The capture hook: a test arms it, provokes a bug, and reads back the
//! [`Report`]s the layers produced on its hart (the values themselves, not
//! the console text), to check every field.
//!
//! The buffer is fixed (the sink runs under an allocator lock and must not
//! allocate); reports beyond its size are counted, not kept.

use crate::sync::IrqTicketLock;
use memdebug::Report;

/// Reports one capture keeps.
pub const CAPACITY: usize = 8;

/// What a capture collected.
#[derive(Clone, Copy)]
pub struct Captured {
    reports: [Option<Report>; CAPACITY],
    len: usize,
    /// Reports that did not fit.
    pub dropped: usize,
}

#[cfg_attr(
    not(feature = "ktest"),
    expect(
        dead_code,
        reason = "API for kernel code; the in-kernel tests are its only user so far"
    )
)]
impl Captured {
    const EMPTY: Captured = Captured {
        reports: [None; CAPACITY],
        len: 0,
        dropped: 0,
    };

    /// The reports, oldest first.
    pub fn reports(&self) -> impl Iterator<Item = &Report> {
        self.reports[..self.len].iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The only report, if exactly one was captured.
    pub fn single(&self) -> Option<&Report> {
        (self.len == 1 && self.dropped == 0)
            .then(|| self.reports[0].as_ref())
            .flatten()
    }
}

struct State {
    /// The hart slot whose reports are captured, if armed.
    armed: Option<usize>,
    captured: Captured,
}

static STATE: IrqTicketLock<State> = IrqTicketLock::new(
    "memdebug-capture",
    State {
        armed: None,
        captured: Captured::EMPTY,
    },
);

fn this_slot() -> Option<usize> {
    crate::arch::hart::try_current().map(|hart| hart.slot())
}

/// Called by the report sink for every report.
pub(super) fn record(report: &Report) {
    let mut state = STATE.lock();
    if state.armed.is_none() || state.armed != this_slot() {
        return;
    }
    let captured = &mut state.captured;
    if captured.len < CAPACITY {
        captured.reports[captured.len] = Some(*report);
        captured.len += 1;
    } else {
        captured.dropped += 1;
    }
}

/// Runs `f` and returns its result with the reports raised on this hart
/// meanwhile. Captures do not nest (an inner one would end the outer).
#[cfg_attr(
    not(feature = "ktest"),
    expect(
        dead_code,
        reason = "API for kernel code; the in-kernel tests are its only user so far"
    )
)]
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Captured) {
    {
        let mut state = STATE.lock();
        state.armed = this_slot();
        state.captured = Captured::EMPTY;
    }
    let result = f();
    let mut state = STATE.lock();
    state.armed = None;
    (result, state.captured)
}
