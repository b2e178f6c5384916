//! Lock-order validation in the spirit of Linux's lockdep.
//!
//! Compiled in only with `debug_assertions` (and never under `cfg(loom)`,
//! whose model must see only the lock protocols); elsewhere every type here
//! is empty and every call does nothing.
//!
//! Locks are grouped into *classes* by name: every [`Lock`](crate::Lock)
//! built with the same name, like every lock Linux initialises at one
//! site, is one class. Validation reasons about classes, not instances, so
//! one run that takes `a` then `b` and another that takes `b` then `a` are
//! reported even if the two runs never overlapped, and even if they used
//! different instances.
//!
//! On every acquisition the current hart checks:
//!
//! - **Order.** Taking class `B` while holding class `A` records the edge
//!   `A -> B` in a process-wide graph. An edge that closes a cycle is a
//!   potential deadlock (two harts each holding what the other waits for)
//!   and panics, naming this hart's held locks and the recorded path back.
//!   Taking a class this hart already holds (another instance) panics too.
//!   A successful `try_lock` is recorded as held but not checked: it
//!   cannot wait, so it cannot close a deadlock.
//! - **Interrupts.** A class taken in an interrupt handler must never be
//!   held with interrupts enabled: an interrupt arriving on that hart would
//!   spin forever on a lock its own hart holds. Seeing both, in either
//!   order, panics.
//!
//! The machine tells the validator about itself through three defaulted
//! [`Arch`] methods: [`Arch::lockdep`] (the hart's [`LockdepHart`];
//! `None` switches validation off), [`Arch::in_interrupt`] and
//! [`Arch::irqs_enabled`]. Locks that are not a [`Lock`](crate::Lock) take
//! part through a [`LockClass`].
//!
//! After a report a hart stops validating, so the panic path's own locking
//! (printing the message takes the console lock) cannot report again.

use core::fmt;

use crate::Arch;

#[cfg(all(debug_assertions, not(loom)))]
mod validate;

/// Whether validation is compiled into this build (`debug_assertions` on,
/// not a loom build).
pub const ENABLED: bool = cfg!(all(debug_assertions, not(loom)));

/// The set of locks a lock belongs to for validation, keyed by name.
///
/// Every [`Lock`](crate::Lock) has one. Code with its own locking protocol
/// (a hand-rolled lock) keeps one in a `static` next to its lock and
/// reports its acquisitions and releases here, so its lock takes part in
/// the same graph:
///
/// ```
/// # use ksync::lockdep::LockClass;
/// # fn example<A: ksync::Arch>() {
/// static CLASS: LockClass = LockClass::new("console");
/// CLASS.acquire::<A>(); // before waiting for the lock
/// // ... take the lock, use it, release it ...
/// CLASS.release::<A>();
/// # }
/// ```
pub struct LockClass {
    name: &'static str,
    /// The class's slot in the process-wide table, so the lookup by name
    /// happens once per lock: 0 = not looked up yet, `i + 1` = slot `i`.
    #[cfg(all(debug_assertions, not(loom)))]
    slot: core::sync::atomic::AtomicU8,
}

impl LockClass {
    /// A class named `name`. Classes with equal names are the same class.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            #[cfg(all(debug_assertions, not(loom)))]
            slot: core::sync::atomic::AtomicU8::new(0),
        }
    }

    /// The name given at construction.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Records that the current hart is about to wait for a lock of this
    /// class, checking both rules. Call it before waiting, so an
    /// inversion is reported instead of hanging, and once interrupts are in
    /// the state they will have while the lock is held (masked first, for
    /// a lock that masks them). Do not call it for a re-entry the lock
    /// itself permits without waiting.
    ///
    /// # Panics
    /// With validation compiled in, on a lock-order inversion, on taking a
    /// class this hart already holds, or on an interrupt-rule violation.
    #[inline]
    pub fn acquire<A: Arch>(&self) {
        self.acquired::<A>(false, false);
    }

    /// Records that the current hart has just taken a lock of this class
    /// with a try that succeeded: held from now on, without the order
    /// check.
    ///
    /// # Panics
    /// With validation compiled in, if the class is also taken in
    /// interrupt handlers and interrupts are enabled now.
    #[inline]
    pub fn try_acquired<A: Arch>(&self) {
        self.acquired::<A>(true, false);
    }

    /// Records that the current hart released a lock of this class. Locks
    /// may be released in any order.
    #[inline]
    pub fn release<A: Arch>(&self) {
        #[cfg(all(debug_assertions, not(loom)))]
        validate::release::<A>(self);
    }

    /// The bookkeeping behind [`acquire`](Self::acquire) and
    /// [`try_acquired`](Self::try_acquired); `masks_irqs` says the lock is
    /// held with interrupts masked whatever the Arch reports.
    #[inline]
    pub(crate) fn acquired<A: Arch>(&self, _is_try: bool, _masks_irqs: bool) {
        #[cfg(all(debug_assertions, not(loom)))]
        validate::acquire::<A>(self, _is_try, _masks_irqs);
    }
}

impl fmt::Debug for LockClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LockClass").field(&self.name).finish()
    }
}

/// One hart's validation state: the stack of lock classes it holds.
///
/// The kernel keeps one per hart (next to its [`IrqNesting`](crate::IrqNesting))
/// and returns it from [`Arch::lockdep`]. Only its own hart touches it, with
/// interrupts masked; the fields are atomics only so it can live in a
/// `static`. Empty when validation is compiled out.
#[non_exhaustive]
pub struct LockdepHart {
    #[cfg(all(debug_assertions, not(loom)))]
    state: validate::HartState,
}

impl LockdepHart {
    /// A hart holding no locks.
    pub const fn new() -> Self {
        Self {
            #[cfg(all(debug_assertions, not(loom)))]
            state: validate::HartState::new(),
        }
    }

    /// How many locks this hart holds as far as validation knows (0 when
    /// compiled out, and frozen once validation stopped on this hart). A
    /// kernel can assert it is 0 where no lock may be held, such as on
    /// return to user mode.
    pub fn depth(&self) -> usize {
        #[cfg(all(debug_assertions, not(loom)))]
        return self.state.depth();
        #[cfg(not(all(debug_assertions, not(loom))))]
        0
    }
}

impl Default for LockdepHart {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LockdepHart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockdepHart")
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}
