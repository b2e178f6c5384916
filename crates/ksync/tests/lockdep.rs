//! Lock validation: consistent use passes, inversions (of two locks or
//! through a longer cycle), recursion on a class and interrupt-rule
//! violations panic with messages naming the locks involved; `try_lock`
//! and hand-rolled locks (through `LockClass`) take part.
//!
//! The class graph is process-wide, so every test uses its own lock names.
//! A report switches validation off on its hart, so a test that expects one
//! provokes it on a fresh thread (a fresh hart).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use common::{HostArch, lockdep_hart, scaled};
use ksync::lockdep::{self, LockClass};
use ksync::{Arch, IrqSpinLock, SpinLock, TicketLock};

#[cfg(debug_assertions)]
use common::{set_in_interrupt, set_irq_enabled};

/// The locks a hart holds according to the validator (0 when compiled
/// out).
fn depth() -> usize {
    lockdep_hart().depth()
}

/// Runs `body` on a fresh hart, expecting it to panic; returns that hart's
/// id and the panic message.
#[cfg(debug_assertions)]
fn report_of(body: impl FnOnce() + Send) -> (usize, String) {
    let hart = AtomicUsize::new(usize::MAX);
    let payload = thread::scope(|scope| {
        scope
            .spawn(|| {
                hart.store(HostArch::hart_id(), Ordering::Relaxed);
                body();
            })
            .join()
    })
    .expect_err("expected a lockdep report");
    let message = match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    };
    (hart.into_inner(), message)
}

/// Runs `body` on a fresh hart, which must finish without a report.
fn on_fresh_hart(body: impl FnOnce() + Send) {
    thread::scope(|scope| scope.spawn(body).join()).expect("no report expected");
}

#[test]
fn consistent_order_from_several_threads_is_accepted() {
    let a = Arc::new(TicketLock::<u64, HostArch>::new("consistent-a", 0));
    let b = Arc::new(SpinLock::<u64, HostArch>::new("consistent-b", 0));
    let c = Arc::new(IrqSpinLock::<u64, HostArch>::new("consistent-c", 0));
    let unrelated = Arc::new(SpinLock::<u64, HostArch>::new("consistent-unrelated", 0));
    let rounds = scaled(2_000, 20);
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (a, b, c, unrelated) = (a.clone(), b.clone(), c.clone(), unrelated.clone());
            thread::spawn(move || {
                for round in 0..rounds {
                    let mut ga = a.lock();
                    let mut gb = b.lock();
                    *ga += 1;
                    // Guards dropped in every order; the order of taking
                    // stays a -> b -> c.
                    if (round + worker) % 2 == 0 {
                        drop(ga);
                        let mut gc = c.lock();
                        *gc += 1;
                        drop(gb);
                        drop(gc);
                    } else {
                        let mut gc = c.lock();
                        *gb += 1;
                        *gc += 1;
                        drop(gb);
                        drop(ga);
                        drop(gc);
                    }
                    *unrelated.lock() += 1;
                    assert_eq!(depth(), 0);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(*unrelated.lock(), 4 * rounds as u64);
}

#[test]
fn unrelated_locks_in_either_order_one_at_a_time_are_accepted() {
    let x = SpinLock::<(), HostArch>::new("alone-x", ());
    let y = SpinLock::<(), HostArch>::new("alone-y", ());
    for _ in 0..3 {
        drop(x.lock());
        drop(y.lock());
        drop(y.lock());
        drop(x.lock());
    }
    assert_eq!(depth(), 0);
}

#[cfg(debug_assertions)]
#[test]
fn out_of_order_release_removes_the_right_entry() {
    let a = SpinLock::<(), HostArch>::new("release-a", ());
    let b = TicketLock::<(), HostArch>::new("release-b", ());
    let c = SpinLock::<(), HostArch>::new("release-c", ());
    on_fresh_hart(|| {
        let ga = a.lock();
        let gb = b.lock();
        let gc = c.lock();
        assert_eq!(depth(), 3);
        drop(gb);
        assert_eq!(depth(), 2);
        drop(ga);
        assert_eq!(depth(), 1);
        // `c` is the one left: taking another class records `c` -> it.
        let d = SpinLock::<(), HostArch>::new("release-d", ());
        drop(d.lock());
        drop(gc);
        assert_eq!(depth(), 0);
    });
    // Had the release of `b` removed `c` instead, `b` -> `d` would have
    // been recorded and `d` then `c` would pass.
    let d = SpinLock::<(), HostArch>::new("release-d", ());
    let (_, message) = report_of(|| {
        let _gd = d.lock();
        let _gc = c.lock();
    });
    assert!(
        message.contains("takes `release-c` while holding `release-d`"),
        "{message}"
    );
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(
    expected = "takes `simple-a` while holding `simple-b`; the opposite order `simple-a` -> `simple-b` was recorded before"
)]
fn simple_inversion_on_one_hart_panics() {
    let a = SpinLock::<(), HostArch>::new("simple-a", ());
    let b = SpinLock::<(), HostArch>::new("simple-b", ());
    {
        let _ga = a.lock();
        let _gb = b.lock();
    }
    let _gb = b.lock();
    let _ga = a.lock();
}

#[cfg(debug_assertions)]
#[test]
fn inversion_names_both_locks_and_both_chains() {
    let first = TicketLock::<(), HostArch>::new("chain-first", ());
    let console = SpinLock::<(), HostArch>::new("chain-console", ());
    let heap = IrqSpinLock::<(), HostArch>::new("chain-heap", ());
    on_fresh_hart(|| {
        let _heap = heap.lock();
        let _console = console.lock();
    });
    let (hart, message) = report_of(|| {
        let _first = first.lock();
        let _console = console.lock();
        let _heap = heap.lock();
    });
    assert_eq!(
        message,
        format!(
            "lockdep: lock order inversion: hart {hart} takes `chain-heap` while holding `chain-console`; \
             the opposite order `chain-heap` -> `chain-console` was recorded before; \
             hart {hart} holds, oldest first: `chain-first`, `chain-console`"
        )
    );
    // The report came before waiting, and unwinding released the rest.
    assert!(!first.is_locked() && !console.is_locked() && !heap.is_locked());
    // The refused edge was not recorded: the original order still passes.
    on_fresh_hart(|| {
        let _heap = heap.lock();
        let _console = console.lock();
    });
}

#[cfg(debug_assertions)]
#[test]
fn a_longer_cycle_is_caught_with_its_path() {
    let a = SpinLock::<(), HostArch>::new("cycle-a", ());
    let b = SpinLock::<(), HostArch>::new("cycle-b", ());
    let c = SpinLock::<(), HostArch>::new("cycle-c", ());
    // Each edge from its own hart: no hart ever holds all three.
    on_fresh_hart(|| {
        let _a = a.lock();
        let _b = b.lock();
    });
    on_fresh_hart(|| {
        let _b = b.lock();
        let _c = c.lock();
    });
    let (hart, message) = report_of(|| {
        let _c = c.lock();
        let _a = a.lock();
    });
    assert_eq!(
        message,
        format!(
            "lockdep: lock order inversion: hart {hart} takes `cycle-a` while holding `cycle-c`; \
             the opposite order `cycle-a` -> `cycle-b` -> `cycle-c` was recorded before; \
             hart {hart} holds, oldest first: `cycle-c`"
        )
    );
}

#[cfg(debug_assertions)]
#[test]
fn two_instances_of_one_class_on_one_hart_are_recursion() {
    let left = SpinLock::<(), HostArch>::new("twin", ());
    let right = TicketLock::<(), HostArch>::new("twin", ());
    let (hart, message) = report_of(|| {
        let _left = left.lock();
        let _right = right.lock();
    });
    assert_eq!(
        message,
        format!(
            "lockdep: recursive locking: hart {hart} takes `twin` while it already holds a lock of that class \
             (a class is held at most once per hart); hart {hart} holds, oldest first: `twin`"
        )
    );
    // Re-entering the very same lock is still the holder check's report.
    let (hart, message) = report_of(|| {
        let _left = left.lock();
        let _again = left.lock();
    });
    assert_eq!(
        message,
        format!("deadlock: hart {hart} tries to acquire lock `twin` which it already holds")
    );
}

#[cfg(debug_assertions)]
#[test]
fn taken_in_a_handler_after_being_held_with_interrupts_on_panics() {
    let lock = SpinLock::<(), HostArch>::new("irq-late-handler", ());
    let process_hart = AtomicUsize::new(0);
    on_fresh_hart(|| {
        set_irq_enabled(true);
        process_hart.store(HostArch::hart_id(), Ordering::Relaxed);
        drop(lock.lock());
    });
    let (hart, message) = report_of(|| {
        set_in_interrupt(true);
        set_irq_enabled(false);
        drop(lock.lock());
    });
    let process_hart = process_hart.into_inner();
    assert_eq!(
        message,
        format!(
            "lockdep: interrupt-unsafe lock `irq-late-handler`: hart {hart} takes it in an interrupt handler, \
             but hart {process_hart} held it with interrupts enabled (while taking `irq-late-handler`); \
             an interrupt arriving there would spin forever on a lock its own hart holds"
        )
    );
}

#[cfg(debug_assertions)]
#[test]
fn held_with_interrupts_on_after_being_taken_in_a_handler_panics() {
    let lock = SpinLock::<(), HostArch>::new("irq-early-handler", ());
    let handler_hart = AtomicUsize::new(0);
    on_fresh_hart(|| {
        set_in_interrupt(true);
        set_irq_enabled(false);
        handler_hart.store(HostArch::hart_id(), Ordering::Relaxed);
        drop(lock.lock());
    });
    // Taken with interrupts masked outside a handler: still fine.
    on_fresh_hart(|| {
        set_irq_enabled(false);
        drop(lock.lock());
    });
    let (hart, message) = report_of(|| {
        set_irq_enabled(true);
        drop(lock.lock());
    });
    let handler_hart = handler_hart.into_inner();
    assert_eq!(
        message,
        format!(
            "lockdep: interrupt-unsafe lock `irq-early-handler`: hart {hart} holds it with interrupts enabled \
             (while taking `irq-early-handler`), but hart {handler_hart} took it in an interrupt handler; \
             an interrupt arriving now would spin forever on a lock its own hart holds"
        )
    );
}

#[cfg(debug_assertions)]
#[test]
fn a_held_lock_counts_as_held_with_interrupts_on_when_they_come_back() {
    let outer = SpinLock::<(), HostArch>::new("irq-held-outer", ());
    let inner = SpinLock::<(), HostArch>::new("irq-held-inner", ());
    on_fresh_hart(|| {
        set_in_interrupt(true);
        set_irq_enabled(false);
        drop(outer.lock());
    });
    let (hart, message) = report_of(|| {
        set_irq_enabled(false);
        let _outer = outer.lock();
        // Interrupts come back while `outer` is still held; the next
        // acquisition sees it.
        set_irq_enabled(true);
        let _inner = inner.lock();
    });
    assert!(
        message.starts_with(&format!(
            "lockdep: interrupt-unsafe lock `irq-held-outer`: hart {hart} holds it with interrupts enabled \
             (while taking `irq-held-inner`)"
        )),
        "{message}"
    );
}

#[cfg(debug_assertions)]
#[test]
fn interrupt_masking_locks_may_be_taken_in_handlers_and_outside() {
    let lock = IrqSpinLock::<(), HostArch>::new("irq-safe", ());
    on_fresh_hart(|| {
        set_in_interrupt(true);
        set_irq_enabled(false);
        drop(lock.lock());
    });
    on_fresh_hart(|| {
        set_irq_enabled(true);
        drop(lock.lock());
        assert!(common::irq_enabled());
    });
}

#[cfg(debug_assertions)]
#[test]
fn try_lock_is_not_order_checked_but_counts_as_held() {
    let a = SpinLock::<(), HostArch>::new("try-a", ());
    let b = SpinLock::<(), HostArch>::new("try-b", ());
    let c = SpinLock::<(), HostArch>::new("try-c", ());
    on_fresh_hart(|| {
        let _a = a.lock();
        let _b = b.lock();
    });
    on_fresh_hart(|| {
        let _b = b.lock();
        // The opposite of `a` -> `b`, but a try cannot wait: accepted.
        let _a = a.try_lock().expect("a is free");
        assert_eq!(depth(), 2);
        // Held: taking `c` records `a` -> `c` (past the try) and `b` -> `c`.
        let _c = c.lock();
        assert_eq!(depth(), 3);
    });
    assert_eq!(depth(), 0);
    let (_, message) = report_of(|| {
        let _c = c.lock();
        let _a = a.lock();
    });
    assert!(
        message
            .contains("takes `try-a` while holding `try-c`; the opposite order `try-a` -> `try-c`"),
        "{message}"
    );
    let (_, message) = report_of(|| {
        let _c = c.lock();
        let _b = b.lock();
    });
    assert!(
        message
            .contains("takes `try-b` while holding `try-c`; the opposite order `try-b` -> `try-c`"),
        "{message}"
    );
    // A failed try records nothing.
    on_fresh_hart(|| {
        let _b = b.lock();
        thread::scope(|scope| {
            scope.spawn(|| assert!(b.try_lock().is_none()));
        });
        assert_eq!(depth(), 1);
    });
}

/// A hand-rolled owner-CAS lock that masks interrupts, like the kernel's
/// console lock, reporting to the validator through a `LockClass`.
struct HandRolled {
    owner: AtomicUsize,
    class: LockClass,
}

const FREE: usize = usize::MAX;

impl HandRolled {
    const fn new(name: &'static str) -> Self {
        Self {
            owner: AtomicUsize::new(FREE),
            class: LockClass::new(name),
        }
    }

    fn lock(&self) -> HandRolledGuard<'_> {
        let _masked = ksync::irq_save::<HostArch>();
        self.class.acquire::<HostArch>();
        let me = HostArch::hart_id();
        while self
            .owner
            .compare_exchange_weak(FREE, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            thread::yield_now();
        }
        HandRolledGuard {
            lock: self,
            _masked,
        }
    }

    fn try_lock(&self) -> Option<HandRolledGuard<'_>> {
        let _masked = ksync::irq_save::<HostArch>();
        let me = HostArch::hart_id();
        self.owner
            .compare_exchange(FREE, me, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        self.class.try_acquired::<HostArch>();
        Some(HandRolledGuard {
            lock: self,
            _masked,
        })
    }
}

struct HandRolledGuard<'a> {
    lock: &'a HandRolled,
    _masked: ksync::IrqGuard<HostArch>,
}

impl Drop for HandRolledGuard<'_> {
    fn drop(&mut self) {
        self.lock.class.release::<HostArch>();
        self.lock.owner.store(FREE, Ordering::Release);
    }
}

#[test]
fn lock_class_bookkeeping_balances() {
    static CONSOLE: HandRolled = HandRolled::new("hand-balance");
    let expected = usize::from(lockdep::ENABLED);
    on_fresh_hart(|| {
        let guard = CONSOLE.lock();
        assert_eq!(depth(), expected);
        drop(guard);
        let guard = CONSOLE.try_lock().expect("free");
        assert_eq!(depth(), expected);
        drop(guard);
        assert_eq!(depth(), 0);
    });
    assert_eq!(CONSOLE.class.name(), "hand-balance");
}

#[cfg(debug_assertions)]
#[test]
fn a_hand_rolled_lock_takes_part_in_the_graph() {
    static CONSOLE: HandRolled = HandRolled::new("hand-console");
    let heap = IrqSpinLock::<(), HostArch>::new("hand-heap", ());
    on_fresh_hart(|| {
        let _heap = heap.lock();
        let _console = CONSOLE.lock();
    });
    let (hart, message) = report_of(|| {
        let _console = CONSOLE.lock();
        let _heap = heap.lock();
    });
    assert!(
        message.starts_with(&format!(
            "lockdep: lock order inversion: hart {hart} takes `hand-heap` while holding `hand-console`; \
             the opposite order `hand-heap` -> `hand-console` was recorded before"
        )),
        "{message}"
    );
    // It masks interrupts, so taking it in a handler and outside is fine.
    on_fresh_hart(|| {
        set_in_interrupt(true);
        set_irq_enabled(false);
        drop(CONSOLE.lock());
    });
    on_fresh_hart(|| {
        set_irq_enabled(true);
        drop(CONSOLE.lock());
    });
}

#[cfg(not(debug_assertions))]
#[test]
fn release_builds_compile_validation_out() {
    const {
        assert!(!lockdep::ENABLED);
        assert!(size_of::<lockdep::LockdepHart>() == 0);
        assert!(size_of::<LockClass>() == size_of::<&str>());
    }
    // An inversion goes unnoticed.
    let a = SpinLock::<(), HostArch>::new("release-build-a", ());
    let b = SpinLock::<(), HostArch>::new("release-build-b", ());
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    let _b = b.lock();
    let _a = a.lock();
    assert_eq!(depth(), 0);
}
