//! [`lock_api`](lock_api_crate) 0.4 integration (cargo feature
//! `lock_api`): ksync's lock protocols as [`RawMutex`] implementations,
//! so `lock_api::Mutex<R, T>` and everything written against `lock_api`
//! (as `spin` and `parking_lot` are) can run on them.
//!
//! - [`RawSpin`] and [`RawTicket`] implement [`RawMutex`] as they are. They
//!   know no [`Arch`], so they record no holder: re-locking on the holding
//!   hart deadlocks, as with `spin`. Their guards are `Send` (the protocols
//!   are plain atomics, any hart may release).
//! - [`RawIrq<R, A>`](RawIrq) wraps either protocol with an [`Arch`]: it
//!   masks interrupts on the current hart before it starts waiting and
//!   restores them after releasing, like the crate's own
//!   [`IrqSpinLock`](crate::IrqSpinLock). The state to restore is not kept
//!   in the lock but in the hart's [`IrqNesting`](crate::IrqNesting), shared
//!   with [`irq_save`](crate::irq_save) and the `Irq*` locks: a copy kept
//!   per lock would turn interrupts back on when an outer lock is released
//!   before an inner one, while the per-hart depth restores them only when
//!   the hart's last masking section ends, in any release order. Its
//!   guards are `!Send`: the masking belongs to the hart that locked.
//!   With `debug_assertions` it keeps the holder check (re-locking on the
//!   holding hart panics instead of hanging) and the long-spin report of
//!   the crate's locks; it does not take part in [`lockdep`](crate::lockdep),
//!   since `RawMutex::INIT` gives it no name to be a class by.
//!
//! ```
//! use ksync::lock_api::SpinMutex;
//!
//! static COUNTER: SpinMutex<u64> = SpinMutex::new(0);
//!
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             for _ in 0..100 {
//!                 *COUNTER.lock() += 1;
//!             }
//!         });
//!     }
//! });
//! assert_eq!(*COUNTER.lock(), 400);
//! assert!(COUNTER.try_lock().is_some());
//! ```
//!
//! The interrupt-masking flavour, with a single-hart [`Arch`] whose
//! "interrupts" are a flag:
//!
//! ```
//! use core::sync::atomic::{AtomicBool, Ordering};
//! use ksync::lock_api::IrqTicketMutex;
//! use ksync::{Arch, IrqNesting};
//!
//! static IRQS_ON: AtomicBool = AtomicBool::new(true);
//! static NESTING: IrqNesting = IrqNesting::new();
//!
//! struct OneHart;
//! impl Arch for OneHart {
//!     fn hart_id() -> usize { 0 }
//!     fn irq_save_disable() -> usize { IRQS_ON.swap(false, Ordering::Relaxed) as usize }
//!     fn irq_restore(saved: usize) { IRQS_ON.store(saved != 0, Ordering::Relaxed) }
//!     fn irq_nesting() -> &'static IrqNesting { &NESTING }
//! }
//!
//! let outer: IrqTicketMutex<u32, OneHart> = IrqTicketMutex::new(1);
//! let inner: IrqTicketMutex<u32, OneHart> = IrqTicketMutex::new(2);
//! let a = outer.lock();
//! let b = inner.lock();
//! assert!(!IRQS_ON.load(Ordering::Relaxed));
//! drop(a); // released out of order: interrupts stay masked for `inner`
//! assert!(!IRQS_ON.load(Ordering::Relaxed));
//! assert_eq!(*b, 2);
//! drop(b);
//! assert!(IRQS_ON.load(Ordering::Relaxed));
//! ```

use core::fmt;
use core::marker::PhantomData;

use lock_api_crate::{GuardNoSend, GuardSend, RawMutex};

use crate::arch::{Arch, enter_masked, exit_masked};
use crate::debug::{HolderTracker, SpinWatch};
use crate::raw::{RawLock, RawSpin, RawTicket};

/// The name [`RawIrq`]'s debug diagnostics give a lock.
const NAME: &str = "<lock_api RawIrq>";

/// Implements [`RawMutex`] for a protocol that needs no [`Arch`].
macro_rules! plain_raw_mutex {
    ($raw:ty) => {
        // SAFETY: `RawLock`'s contract is `RawMutex`'s: one holder at a
        // time, and a release happens-before the next acquisition. The
        // protocol is plain atomics, so releasing from another thread than
        // the acquirer is sound (`GuardSend`).
        unsafe impl RawMutex for $raw {
            #[allow(clippy::declare_interior_mutable_const)]
            const INIT: Self = <$raw>::new();
            type GuardMarker = GuardSend;

            fn lock(&self) {
                RawLock::lock(self, || {});
            }

            fn try_lock(&self) -> bool {
                RawLock::try_lock(self)
            }

            unsafe fn unlock(&self) {
                // SAFETY: `RawMutex::unlock`'s caller holds the lock.
                unsafe { RawLock::unlock(self) }
            }

            fn is_locked(&self) -> bool {
                RawLock::is_locked(self)
            }
        }
    };
}

plain_raw_mutex!(RawSpin);
plain_raw_mutex!(RawTicket);

/// The protocol `R` with interrupts masked on the current hart while it is
/// held or waited for, through the machine hooks `A`; see the
/// [module docs](self).
pub struct RawIrq<R, A> {
    raw: R,
    holder: HolderTracker,
    _arch: PhantomData<fn() -> A>,
}

impl<R: RawLock, A: Arch> RawIrq<R, A> {
    /// An unlocked lock (the same as [`RawMutex::INIT`]).
    pub const fn new() -> Self {
        Self {
            raw: R::UNLOCKED,
            holder: HolderTracker::new(),
            _arch: PhantomData,
        }
    }

    /// The hart holding the lock, when debug checks are on and someone
    /// holds it.
    pub fn holder(&self) -> Option<usize> {
        self.holder.holder()
    }
}

impl<R: RawLock, A: Arch> Default for RawIrq<R, A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: RawLock + fmt::Debug, A> fmt::Debug for RawIrq<R, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawIrq")
            .field("raw", &self.raw)
            .field("holder", &self.holder.holder())
            .finish()
    }
}

// SAFETY: mutual exclusion and ordering are `R`'s (`RawLock` contract).
// The guard is `!Send` (`GuardNoSend`), so `unlock` runs on the hart that
// locked, which is the hart whose masking section it closes.
unsafe impl<R: RawLock, A: Arch> RawMutex for RawIrq<R, A> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self::new();
    type GuardMarker = GuardNoSend;

    /// Masks interrupts, then spins until the lock is free and takes it.
    ///
    /// # Panics
    /// With `debug_assertions`, if the current hart already holds it.
    fn lock(&self) {
        self.holder.assert_not_held_by_me::<A>(NAME);
        // Masked before waiting, so an interrupt handler on this hart can
        // never find the lock held by the code it interrupted.
        enter_masked::<A>();
        let mut watch = SpinWatch::new(NAME, &self.holder);
        RawLock::lock(&self.raw, || {
            watch.spun::<A>(|| self.raw.waiters());
            A::relax();
        });
        self.holder.set_me::<A>();
    }

    fn try_lock(&self) -> bool {
        enter_masked::<A>();
        if self.raw.try_lock() {
            self.holder.set_me::<A>();
            true
        } else {
            exit_masked::<A>();
            false
        }
    }

    /// Releases the lock, then closes this hart's masking section
    /// (interrupts come back if it was the hart's last one).
    unsafe fn unlock(&self) {
        self.holder.clear();
        // SAFETY: `RawMutex::unlock`'s caller holds the lock.
        unsafe { self.raw.unlock() };
        exit_masked::<A>();
    }

    fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }
}

/// [`RawSpin`] masking interrupts while held.
pub type RawIrqSpin<A> = RawIrq<RawSpin, A>;
/// [`RawTicket`] masking interrupts while held.
pub type RawIrqTicket<A> = RawIrq<RawTicket, A>;

/// `lock_api` mutex over [`RawSpin`].
pub type SpinMutex<T> = lock_api_crate::Mutex<RawSpin, T>;
/// Guard of a [`SpinMutex`].
pub type SpinMutexGuard<'a, T> = lock_api_crate::MutexGuard<'a, RawSpin, T>;
/// `lock_api` mutex over [`RawTicket`] (FIFO).
pub type TicketMutex<T> = lock_api_crate::Mutex<RawTicket, T>;
/// Guard of a [`TicketMutex`].
pub type TicketMutexGuard<'a, T> = lock_api_crate::MutexGuard<'a, RawTicket, T>;
/// `lock_api` mutex over [`RawIrqSpin`].
pub type IrqSpinMutex<T, A> = lock_api_crate::Mutex<RawIrqSpin<A>, T>;
/// Guard of an [`IrqSpinMutex`].
pub type IrqSpinMutexGuard<'a, T, A> = lock_api_crate::MutexGuard<'a, RawIrqSpin<A>, T>;
/// `lock_api` mutex over [`RawIrqTicket`] (FIFO).
pub type IrqTicketMutex<T, A> = lock_api_crate::Mutex<RawIrqTicket<A>, T>;
/// Guard of an [`IrqTicketMutex`].
pub type IrqTicketMutexGuard<'a, T, A> = lock_api_crate::MutexGuard<'a, RawIrqTicket<A>, T>;
