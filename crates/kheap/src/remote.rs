//! Asking the other CPUs to drain and waiting for their answers: the part
//! of a drain both cache kinds (objects, pages) share. See `drain.rs` for
//! the request protocol.

use crate::cpu::Cpu;
use crate::drain::DrainRequests;

/// What a drain of every CPU did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Objects (or page blocks) this CPU gave back.
    pub objects_here: usize,
    /// Other CPUs asked to drain.
    pub cpus_asked: usize,
    /// How many of them answered in time.
    pub cpus_answered: usize,
}

/// A drain of every CPU: `drain_here` empties this CPU's caches; then
/// every other CPU for which `requests` gives a request record (CPUs with
/// something parked) is asked to drain and kicked ([`Cpu::kick`]) and, if
/// `wait`, waited for up to [`Cpu::DRAIN_PATIENCE`], `serve_own` answering
/// requests to this CPU meanwhile (so two CPUs draining at once answer
/// each other).
pub(crate) fn drain_everywhere<'a, A: Cpu, const CPUS: usize>(
    drain_here: impl FnOnce() -> usize,
    requests: impl Fn(usize) -> Option<&'a DrainRequests>,
    wait: bool,
    serve_own: impl Fn(),
) -> DrainReport {
    let saved = A::irq_save_disable();
    let me = A::cpu_index();
    A::irq_restore(saved);
    let mut report = DrainReport {
        objects_here: drain_here(),
        ..DrainReport::default()
    };
    let mut tickets = [0usize; CPUS];
    for (index, ticket) in tickets.iter_mut().enumerate() {
        if index == me {
            continue;
        }
        if let Some(cpu) = requests(index) {
            *ticket = cpu.ask();
            report.cpus_asked += 1;
            A::kick(index);
        }
    }
    let answered = || {
        tickets
            .iter()
            .enumerate()
            .filter(|&(index, &ticket)| {
                ticket != 0 && requests(index).is_none_or(|cpu| cpu.is_answered(ticket))
            })
            .count()
    };
    let start = A::now();
    loop {
        report.cpus_answered = answered();
        if !wait
            || report.cpus_answered == report.cpus_asked
            || A::now().wrapping_sub(start) >= A::DRAIN_PATIENCE
        {
            return report;
        }
        serve_own();
        A::relax();
        core::hint::spin_loop();
    }
}
