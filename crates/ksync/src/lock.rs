//! [`Lock`]: a named value behind a [`RawLock`] protocol, with RAII guards,
//! optional interrupt masking and the debug checks.

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use crate::arch::{Arch, IrqGuard, irq_save};
use crate::debug::{HolderTracker, SpinWatch};
use crate::lockdep::LockClass;
use crate::raw::RawLock;
use crate::shim::const_unless_loom;

/// Whether holding a lock masks interrupts on the holding hart.
pub trait IrqMode {
    /// What the guard keeps while the lock is held.
    type Token<A: Arch>;

    /// Whether the lock is held with interrupts masked, so lock validation
    /// need not ask the [`Arch`].
    const MASKS_IRQS: bool;

    /// Called before trying to take the lock.
    fn enter<A: Arch>() -> Self::Token<A>;
}

/// Interrupts are left as they are. Only for locks that no interrupt
/// handler takes.
#[derive(Debug)]
pub struct IrqUntouched;

/// Interrupts are masked on the hart from before it starts waiting until
/// after it releases, restoring the outermost saved state (see
/// [`irq_save`]). Needed for every lock an interrupt handler also takes.
#[derive(Debug)]
pub struct IrqSave;

impl IrqMode for IrqUntouched {
    type Token<A: Arch> = ();
    const MASKS_IRQS: bool = false;
    fn enter<A: Arch>() {}
}

impl IrqMode for IrqSave {
    type Token<A: Arch> = IrqGuard<A>;
    const MASKS_IRQS: bool = true;
    fn enter<A: Arch>() -> IrqGuard<A> {
        irq_save::<A>()
    }
}

/// A value of type `T` protected by the protocol `R`, with the machine
/// hooks `A` and interrupt behaviour `M`. Use the aliases
/// ([`SpinLock`](crate::SpinLock), [`TicketLock`](crate::TicketLock),
/// [`IrqSpinLock`](crate::IrqSpinLock), [`IrqTicketLock`](crate::IrqTicketLock)).
pub struct Lock<R: RawLock, T: ?Sized, A: Arch, M: IrqMode> {
    raw: R,
    /// The name, and the lock's class for validation.
    class: LockClass,
    holder: HolderTracker,
    _hooks: PhantomData<fn() -> (A, M)>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `data` to one holder at a time
// (the `RawLock` contract), so sharing the lock between harts moves `T`
// between them, which needs `T: Send` but not `T: Sync`.
unsafe impl<R: RawLock + Sync, T: ?Sized + Send, A: Arch, M: IrqMode> Sync for Lock<R, T, A, M> {}
// SAFETY: owning the lock owns the `T`.
unsafe impl<R: RawLock + Send, T: ?Sized + Send, A: Arch, M: IrqMode> Send for Lock<R, T, A, M> {}

impl<R: RawLock, T, A: Arch, M: IrqMode> Lock<R, T, A, M> {
    const_unless_loom! {
        /// An unlocked lock named `name` holding `value`. The name appears
        /// in debug diagnostics and is the lock's validation class: locks
        /// with equal names are one class (see [`lockdep`](crate::lockdep)).
        pub fn new(name: &'static str, value: T) -> Self {
            Self {
                #[cfg(not(loom))]
                raw: R::UNLOCKED,
                #[cfg(loom)]
                raw: R::unlocked(),
                class: LockClass::new(name),
                holder: HolderTracker::new(),
                _hooks: PhantomData,
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<R: RawLock, T: ?Sized, A: Arch, M: IrqMode> Lock<R, T, A, M> {
    /// Waits until the lock is free, takes it and returns a guard giving
    /// access to the value; dropping the guard releases the lock.
    ///
    /// # Panics
    /// With `debug_assertions`, if the current hart already holds this
    /// lock (the wait would never end), or if taking it breaks a
    /// [`lockdep`](crate::lockdep) rule.
    pub fn lock(&self) -> LockGuard<'_, R, T, A, M> {
        self.holder.assert_not_held_by_me::<A>(self.name());
        let token = M::enter::<A>();
        // Before waiting, so an inversion is reported rather than hung on.
        self.class.acquired::<A>(false, M::MASKS_IRQS);
        let mut watch = SpinWatch::new(self.name(), &self.holder);
        self.raw.lock(|| {
            watch.spun::<A>(|| self.raw.waiters());
            A::relax();
        });
        self.holder.set_me::<A>();
        LockGuard {
            lock: self,
            _token: token,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock if it is free right now. A try cannot wait, so it is
    /// not checked against the lock order, but the lock counts as held for
    /// the acquisitions after it.
    ///
    /// # Panics
    /// With `debug_assertions`, if this lock's class is taken in interrupt
    /// handlers and this acquisition holds it with interrupts enabled.
    pub fn try_lock(&self) -> Option<LockGuard<'_, R, T, A, M>> {
        let token = M::enter::<A>();
        if !self.raw.try_lock() {
            return None;
        }
        self.holder.set_me::<A>();
        let guard = LockGuard {
            lock: self,
            _token: token,
            _not_send: PhantomData,
        };
        // With the guard built, a report's unwinding releases the lock.
        self.class.acquired::<A>(true, M::MASKS_IRQS);
        Some(guard)
    }

    /// The name given at construction.
    pub fn name(&self) -> &'static str {
        self.class.name()
    }

    /// Whether the lock is held right now (a snapshot, for diagnostics).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// How many contexts wait for the lock (always 0 for protocols that
    /// cannot tell, such as [`RawSpin`](crate::RawSpin)).
    pub fn waiters(&self) -> usize {
        self.raw.waiters()
    }

    /// The hart holding the lock, when debug checks are on and someone
    /// holds it.
    pub fn holder(&self) -> Option<usize> {
        self.holder.holder()
    }

    /// Access through `&mut self`, which already proves exclusivity.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// Named `<default>`, so every default-constructed lock is one validation
/// class: holding two of them at once is reported as recursion. Name locks
/// that nest.
impl<R: RawLock, T: Default, A: Arch, M: IrqMode> Default for Lock<R, T, A, M> {
    fn default() -> Self {
        Self::new("<default>", T::default())
    }
}

impl<R: RawLock, T: ?Sized, A: Arch, M: IrqMode> fmt::Debug for Lock<R, T, A, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("name", &self.name())
            .field("locked", &self.is_locked())
            .field("holder", &self.holder())
            .finish_non_exhaustive()
    }
}

/// Access to a locked value; releases the lock (then restores interrupts,
/// for [`IrqSave`] locks) when dropped. Not `Send`: a lock is released on
/// the hart that took it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, R: RawLock, T: ?Sized, A: Arch, M: IrqMode> {
    lock: &'a Lock<R, T, A, M>,
    // Dropped after `Drop::drop` released the lock, so interrupts come
    // back only once the lock is free.
    _token: M::Token<A>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, so sharing it is sharing `&T`.
unsafe impl<R: RawLock, T: ?Sized + Sync, A: Arch, M: IrqMode> Sync for LockGuard<'_, R, T, A, M> {}

impl<R: RawLock, T: ?Sized, A: Arch, M: IrqMode> Deref for LockGuard<'_, R, T, A, M> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its lock is held, so no other
        // reference to the data is live except through this guard.
        unsafe { &*self.lock.data.get() }
    }
}

impl<R: RawLock, T: ?Sized, A: Arch, M: IrqMode> DerefMut for LockGuard<'_, R, T, A, M> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<R: RawLock, T: ?Sized, A: Arch, M: IrqMode> Drop for LockGuard<'_, R, T, A, M> {
    fn drop(&mut self) {
        self.lock.holder.clear();
        self.lock.class.release::<A>();
        // SAFETY: the guard's existence proves this context holds the lock.
        unsafe { self.lock.raw.unlock() };
    }
}

impl<R: RawLock, T: ?Sized + fmt::Debug, A: Arch, M: IrqMode> fmt::Debug
    for LockGuard<'_, R, T, A, M>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
