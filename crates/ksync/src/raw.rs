//! The two lock protocols, without data, guards or debug bookkeeping:
//! test-and-test-and-set ([`RawSpin`]) and tickets ([`RawTicket`]).

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::shim::{AtomicBool, AtomicUsize, const_unless_loom, spin_loop};

/// A mutual-exclusion protocol over atomics.
///
/// # Safety
/// Implementors must guarantee mutual exclusion: between a successful
/// [`lock`](Self::lock) or [`try_lock`](Self::try_lock) and the matching
/// [`unlock`](Self::unlock), no other acquisition succeeds, and everything
/// written before `unlock` happens-before everything after the next
/// acquisition ([`Lock`](crate::Lock) hands out `&mut T` on that basis).
pub unsafe trait RawLock: Sized {
    /// The unlocked state, for `const` construction.
    #[cfg(not(loom))]
    const UNLOCKED: Self;

    /// The unlocked state (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    fn unlocked() -> Self;

    /// Spins until the lock is taken, calling `on_spin` once per failed
    /// look at the lock (the debug checks count and report through it).
    fn lock(&self, on_spin: impl FnMut());

    /// Takes the lock if it is free right now.
    fn try_lock(&self) -> bool;

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller must hold the lock (acquired by this protocol and not yet
    /// released).
    unsafe fn unlock(&self);

    /// Whether someone holds the lock (a snapshot, for diagnostics).
    fn is_locked(&self) -> bool;

    /// How many contexts wait for the lock (0 where the protocol cannot
    /// tell), for diagnostics.
    fn waiters(&self) -> usize;
}

/// Test-and-test-and-set: waiters spin on a plain load, which stays in
/// their cache, and only attempt the write when the lock looks free.
/// Cheap when uncontended, but not fair.
#[derive(Debug)]
pub struct RawSpin {
    locked: AtomicBool,
}

impl Default for RawSpin {
    fn default() -> Self {
        Self::new()
    }
}

impl RawSpin {
    const_unless_loom! {
        /// An unlocked lock.
        pub fn new() -> Self {
            Self { locked: AtomicBool::new(false) }
        }
    }
}

// SAFETY: `locked` goes false -> true only through a successful
// compare-exchange, so one acquirer at a time; the Release store in
// `unlock` pairs with the Acquire exchange of the next acquirer.
unsafe impl RawLock for RawSpin {
    #[cfg(not(loom))]
    const UNLOCKED: Self = Self::new();

    #[cfg(loom)]
    fn unlocked() -> Self {
        Self::new()
    }

    fn lock(&self, mut on_spin: impl FnMut()) {
        loop {
            if self
                .locked
                .compare_exchange_weak(false, true, Acquire, Relaxed)
                .is_ok()
            {
                return;
            }
            while self.locked.load(Relaxed) {
                on_spin();
                spin_loop();
            }
        }
    }

    fn try_lock(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
    }

    unsafe fn unlock(&self) {
        self.locked.store(false, Release);
    }

    fn is_locked(&self) -> bool {
        self.locked.load(Relaxed)
    }

    fn waiters(&self) -> usize {
        0
    }
}

/// Ticket lock: each acquirer draws a ticket and waits until it is being
/// served, so the lock is granted in arrival order and no hart starves.
///
/// `now_serving <= next_ticket` always (modulo wrap-around); the holder is
/// the owner of ticket `now_serving`, and `next_ticket - now_serving` is the
/// holder plus the waiters.
#[derive(Debug)]
pub struct RawTicket {
    next_ticket: AtomicUsize,
    now_serving: AtomicUsize,
}

impl Default for RawTicket {
    fn default() -> Self {
        Self::new()
    }
}

impl RawTicket {
    const_unless_loom! {
        /// An unlocked lock.
        pub fn new() -> Self {
            Self { next_ticket: AtomicUsize::new(0), now_serving: AtomicUsize::new(0) }
        }
    }
}

// SAFETY: each ticket is handed out once (fetch_add) and `now_serving`
// names exactly one ticket, so one holder at a time; the holder's Release
// store to `now_serving` pairs with the next holder's Acquire load.
unsafe impl RawLock for RawTicket {
    #[cfg(not(loom))]
    const UNLOCKED: Self = Self::new();

    #[cfg(loom)]
    fn unlocked() -> Self {
        Self::new()
    }

    fn lock(&self, mut on_spin: impl FnMut()) {
        let ticket = self.next_ticket.fetch_add(1, Relaxed);
        while self.now_serving.load(Acquire) != ticket {
            on_spin();
            spin_loop();
        }
    }

    fn try_lock(&self) -> bool {
        // `now_serving` only grows, so if it read `s` and `next_ticket` is
        // still `s` when the exchange lands, no ticket is outstanding: the
        // lock is free and the ticket we take is the one being served. The
        // Acquire load pairs with the previous holder's release.
        let serving = self.now_serving.load(Acquire);
        self.next_ticket
            .compare_exchange(serving, serving.wrapping_add(1), Acquire, Relaxed)
            .is_ok()
    }

    unsafe fn unlock(&self) {
        // Only the holder writes `now_serving`, so load-then-store is not a
        // race.
        let serving = self.now_serving.load(Relaxed);
        self.now_serving.store(serving.wrapping_add(1), Release);
    }

    fn is_locked(&self) -> bool {
        self.next_ticket.load(Relaxed) != self.now_serving.load(Relaxed)
    }

    fn waiters(&self) -> usize {
        let issued = self.next_ticket.load(Relaxed);
        issued
            .wrapping_sub(self.now_serving.load(Relaxed))
            .saturating_sub(1)
    }
}
