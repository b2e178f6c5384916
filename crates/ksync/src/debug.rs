//! Debug-build bookkeeping: which hart holds a lock, and the spin counter
//! that reports a waiter stuck behind it. Compiled to nothing without
//! `debug_assertions`.

#[cfg(debug_assertions)]
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::Arch;

/// `holder` value meaning "no hart holds the lock".
#[cfg(debug_assertions)]
const NO_HOLDER: usize = usize::MAX;

/// Records the hart that holds a lock.
///
/// Only the holder writes its own id, and it clears it before releasing,
/// so if a hart reads its own id here it really holds the lock: that is
/// what makes the re-entry check free of false positives even though the
/// field is read without the lock.
#[derive(Debug)]
pub(crate) struct HolderTracker {
    #[cfg(debug_assertions)]
    holder: AtomicUsize,
}

impl HolderTracker {
    pub(crate) const fn new() -> Self {
        Self {
            #[cfg(debug_assertions)]
            holder: AtomicUsize::new(NO_HOLDER),
        }
    }

    /// Panics if the current hart already holds the lock named `name`:
    /// waiting would never end.
    #[inline]
    pub(crate) fn assert_not_held_by_me<A: Arch>(&self, _name: &str) {
        #[cfg(debug_assertions)]
        {
            let me = A::hart_id();
            if self.holder.load(Ordering::Relaxed) == me {
                panic!(
                    "deadlock: hart {me} tries to acquire lock `{_name}` which it already holds"
                );
            }
        }
    }

    #[inline]
    pub(crate) fn set_me<A: Arch>(&self) {
        #[cfg(debug_assertions)]
        self.holder.store(A::hart_id(), Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn clear(&self) {
        #[cfg(debug_assertions)]
        self.holder.store(NO_HOLDER, Ordering::Relaxed);
    }

    /// The holder's hart id, if the lock is held and debug checks are on.
    pub(crate) fn holder(&self) -> Option<usize> {
        #[cfg(debug_assertions)]
        {
            let holder = self.holder.load(Ordering::Relaxed);
            if holder != NO_HOLDER {
                return Some(holder);
            }
        }
        None
    }
}

/// Counts a waiter's spins and logs a warning every
/// [`Arch::SPIN_REPORT_INTERVAL`] of them.
pub(crate) struct SpinWatch<'a> {
    #[cfg(debug_assertions)]
    spins: u64,
    #[cfg(debug_assertions)]
    name: &'a str,
    #[cfg(debug_assertions)]
    tracker: &'a HolderTracker,
    #[cfg(not(debug_assertions))]
    _borrow: core::marker::PhantomData<&'a ()>,
}

impl<'a> SpinWatch<'a> {
    pub(crate) fn new(_name: &'a str, _tracker: &'a HolderTracker) -> Self {
        Self {
            #[cfg(debug_assertions)]
            spins: 0,
            #[cfg(debug_assertions)]
            name: _name,
            #[cfg(debug_assertions)]
            tracker: _tracker,
            #[cfg(not(debug_assertions))]
            _borrow: core::marker::PhantomData,
        }
    }

    #[inline]
    pub(crate) fn spun<A: Arch>(&mut self, _waiters: impl FnOnce() -> usize) {
        #[cfg(debug_assertions)]
        {
            self.spins += 1;
            if self.spins.is_multiple_of(A::SPIN_REPORT_INTERVAL) {
                let holder = self.tracker.holder();
                log::warn!(
                    "lock `{}`: hart {} has spun {} times waiting; held by hart {}; {} waiter(s)",
                    self.name,
                    A::hart_id(),
                    self.spins,
                    DisplayHart(holder),
                    _waiters(),
                );
            }
        }
    }
}

/// Prints a hart id, or `?` when the holder is unknown (it may have just
/// released the lock, or not yet recorded itself).
#[cfg(debug_assertions)]
struct DisplayHart(Option<usize>);

#[cfg(debug_assertions)]
impl core::fmt::Display for DisplayHart {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(hart) => write!(f, "{hart}"),
            None => f.write_str("?"),
        }
    }
}
