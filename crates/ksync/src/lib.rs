//! Spinlocks for a multi-hart kernel, host-testable: a test-and-test-and-set
//! [`SpinLock`], a fair FIFO [`TicketLock`], their interrupt-masking
//! flavours, and a one-time initialisation cell ([`Once`], [`Lazy`]).
//!
//! Nothing here knows about RISC-V: the hart id and interrupt masking come
//! from an [`Arch`] implementation the kernel supplies (host tests supply
//! one built on threads). The design note, with the protocols and the
//! validator's data structures drawn out, is [`design`].
//!
//! With `debug_assertions` on, every lock records its holder's hart, so
//! re-acquiring a lock the same hart holds panics with the lock's name
//! instead of hanging, and a waiter that spins absurdly long logs (through
//! the `log` crate) which hart holds the lock. The [`lockdep`] validator
//! checks every acquisition against the lock order and interrupt rules seen
//! so far, so a deadlock that needs an unlucky interleaving is reported on
//! a run that merely takes the locks in both orders.
//!
//! # A sample `Arch`
//!
//! A kernel implements [`Arch`] once, with its hart-id register and its
//! interrupt-enable bit. On a host, threads can play harts and a
//! thread-local flag the interrupt-enable bit; this one is a complete
//! implementation to copy into tests:
//!
//! ```
//! use std::cell::Cell;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! use ksync::{Arch, IrqNesting, IrqSpinLock, SpinLock, TicketLock};
//!
//! /// Threads as harts; "interrupts enabled" is a per-thread flag.
//! struct HostArch;
//!
//! const MAX_HARTS: usize = 64;
//! /// One masking-depth record per hart, indexed by hart id.
//! static NESTING: [IrqNesting; MAX_HARTS] = [const { IrqNesting::new() }; MAX_HARTS];
//! static NEXT_HART: AtomicUsize = AtomicUsize::new(0);
//!
//! thread_local! {
//!     static HART: usize = {
//!         let hart = NEXT_HART.fetch_add(1, Ordering::Relaxed);
//!         assert!(hart < MAX_HARTS, "more threads than MAX_HARTS");
//!         hart
//!     };
//!     static IRQS_ON: Cell<bool> = const { Cell::new(true) };
//! }
//!
//! impl Arch for HostArch {
//!     fn hart_id() -> usize {
//!         HART.with(|hart| *hart)
//!     }
//!     fn irq_save_disable() -> usize {
//!         IRQS_ON.with(|on| usize::from(on.replace(false)))
//!     }
//!     fn irq_restore(saved: usize) {
//!         IRQS_ON.with(|on| on.set(saved != 0));
//!     }
//!     fn irq_nesting() -> &'static IrqNesting {
//!         &NESTING[Self::hart_id()]
//!     }
//!     // More threads than cores: let a descheduled holder run.
//!     fn relax() {
//!         std::thread::yield_now();
//!     }
//! }
//!
//! // Locks are `const`-constructible, so they can be statics.
//! static TOTAL: TicketLock<u64, HostArch> = TicketLock::new("total", 0);
//!
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             for _ in 0..100 {
//!                 *TOTAL.lock() += 1;
//!             }
//!         });
//!     }
//! });
//! assert_eq!(*TOTAL.lock(), 400);
//!
//! // An `Irq*` lock masks this hart's interrupts while held.
//! let shared = IrqSpinLock::<Vec<u8>, HostArch>::new("shared-with-handler", Vec::new());
//! {
//!     let mut guard = shared.lock();
//!     guard.push(1);
//!     assert!(!IRQS_ON.with(Cell::get));
//!     assert_eq!(HostArch::irq_nesting().depth(), 1);
//! }
//! assert!(IRQS_ON.with(Cell::get));
//!
//! // `try_lock` fails, rather than waits, while the lock is held.
//! let plain = SpinLock::<(), HostArch>::new("plain", ());
//! let held = plain.lock();
//! assert!(plain.is_locked() && plain.try_lock().is_none());
//! drop(held);
//! assert!(plain.try_lock().is_some());
//! ```
//!
//! # Feature flags
//!
//! - `lock_api` (off by default): [`lock_api::RawMutex`] for [`RawSpin`]
//!   and [`RawTicket`], an interrupt-masking raw lock generic over the
//!   [`Arch`], and `lock_api::Mutex` aliases; see the `lock_api` module
//!   (present with the feature).
//!
//! [`lock_api::RawMutex`]: https://docs.rs/lock_api/0.4/lock_api/trait.RawMutex.html

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod arch;
mod debug;
mod lock;
#[cfg(all(feature = "lock_api", not(loom)))]
pub mod lock_api;
pub mod lockdep;
mod once;
mod raw;
mod shim;

pub use arch::{Arch, IrqGuard, IrqNesting, irq_save};
pub use lock::{IrqMode, IrqSave, IrqUntouched, Lock, LockGuard};
pub use once::{Lazy, Once};
pub use raw::{RawLock, RawSpin, RawTicket};

/// Test-and-test-and-set lock; interrupts are left alone.
///
/// Cheap when uncontended; not fair: a hart can take it repeatedly while
/// another waits. Pick [`TicketLock`] for contended locks.
pub type SpinLock<T, A> = Lock<RawSpin, T, A, IrqUntouched>;
/// FIFO ticket lock; interrupts are left alone.
///
/// Waiters are served in arrival order, so none starves;
/// [`waiters`](Lock::waiters) tells how many are queued.
pub type TicketLock<T, A> = Lock<RawTicket, T, A, IrqUntouched>;
/// [`SpinLock`] that masks interrupts on the current hart while held.
pub type IrqSpinLock<T, A> = Lock<RawSpin, T, A, IrqSave>;
/// [`TicketLock`] that masks interrupts on the current hart while held.
pub type IrqTicketLock<T, A> = Lock<RawTicket, T, A, IrqSave>;

/// The design note: the lock types, the [`Arch`] hooks, the two protocols,
/// interrupt-masking nesting, the debug checks, the [`lockdep`] validator's
/// rules and data structures, and how the crate is tested.
pub mod design {
    #![doc = include_str!("../docs/spinlock.md")]
}

/// The README's examples, compiled and run as doctests (its `lock_api`
/// example needs the feature).
#[cfg(all(doctest, feature = "lock_api"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
