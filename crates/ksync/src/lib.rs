//! Spinlocks for a multi-hart kernel, host-testable: a test-and-test-and-set
//! [`SpinLock`], a fair FIFO [`TicketLock`], their interrupt-masking
//! flavours, and a one-time initialisation cell ([`Once`], [`Lazy`]).
//!
//! Nothing here knows about RISC-V: the hart id and interrupt masking come
//! from an [`Arch`] implementation the kernel supplies (host tests supply
//! one built on threads). See `docs/spinlock.md` for the design.
//!
//! With `debug_assertions` on, every lock records its holder's hart, so
//! re-acquiring a lock the same hart holds panics with the lock's name
//! instead of hanging, and a waiter that spins absurdly long logs (through
//! the `log` crate) which hart holds the lock. The [`lockdep`] validator
//! checks every acquisition against the lock order and interrupt rules seen
//! so far, so a deadlock that needs an unlucky interleaving is reported on
//! a run that merely takes the locks in both orders.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
mod debug;
mod lock;
pub mod lockdep;
mod once;
mod raw;
mod shim;

pub use arch::{Arch, IrqGuard, IrqNesting, irq_save};
pub use lock::{IrqMode, IrqSave, IrqUntouched, Lock, LockGuard};
pub use once::{Lazy, Once};
pub use raw::{RawLock, RawSpin, RawTicket};

/// Test-and-test-and-set lock; interrupts are left alone.
pub type SpinLock<T, A> = Lock<RawSpin, T, A, IrqUntouched>;
/// FIFO ticket lock; interrupts are left alone.
pub type TicketLock<T, A> = Lock<RawTicket, T, A, IrqUntouched>;
/// [`SpinLock`] that masks interrupts on the current hart while held.
pub type IrqSpinLock<T, A> = Lock<RawSpin, T, A, IrqSave>;
/// [`TicketLock`] that masks interrupts on the current hart while held.
pub type IrqTicketLock<T, A> = Lock<RawTicket, T, A, IrqSave>;
