//! Asking another CPU to empty its caches. A CPU's magazines are written
//! only by that CPU (that is what keeps the fast path free of locks and
//! read-modify-writes), so another CPU cannot take objects out of them: it
//! asks, and the owner answers at its next chance (the kernel interrupts
//! it with an IPI; it also answers on its own slow path and while it waits
//! for answers itself).
//!
//! ```text
//!   asker:  ticket = asked.fetch_add(1) + 1; kick(cpu); wait for answered >= ticket
//!   owner:  seen = asked (acquire); empty the caches; answered = seen (release)
//! ```
//!
//! Everything the owner emptied before it stored `answered` is visible to
//! an asker that reads `answered >= ticket`. Several askers at once each
//! get their own ticket; one answer covers every ticket up to the one the
//! owner saw.

use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use crate::shim::{AtomicUsize, const_unless_loom};

/// One CPU's drain requests: tickets asked by others, the last answered.
pub struct DrainRequests {
    asked: AtomicUsize,
    answered: AtomicUsize,
}

impl DrainRequests {
    const_unless_loom! {
        /// No request asked or answered.
        pub fn new() -> Self {
            Self {
                asked: AtomicUsize::new(0),
                answered: AtomicUsize::new(0),
            }
        }
    }

    /// Asks the owner to drain (any CPU); the ticket to wait for.
    pub fn ask(&self) -> usize {
        self.asked.fetch_add(1, AcqRel) + 1
    }

    /// Whether the request with `ticket` has been answered.
    pub fn is_answered(&self, ticket: usize) -> bool {
        self.answered.load(Acquire) >= ticket
    }

    /// The newest request not answered yet (owner only).
    #[inline]
    pub fn pending(&self) -> Option<usize> {
        let asked = self.asked.load(Acquire);
        (asked != self.answered.load(Relaxed)).then_some(asked)
    }

    /// Every request up to `ticket` is done (owner only, after draining).
    pub fn answer(&self, ticket: usize) {
        self.answered.store(ticket, Release);
    }
}
