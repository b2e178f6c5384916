//! Model check of the lock protocols with loom: every interleaving (and
//! every weak-memory outcome loom models) of a few harts taking the lock
//! must keep the critical section exclusive and ordered. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p rvos-ksync --test loom --release`.

#![cfg(loom)]

use std::cell::Cell;

use ksync::{Arch, IrqNesting, Lock, RawLock};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

const MAX_HARTS: usize = 8;
static NESTING: [IrqNesting; MAX_HARTS] = [const { IrqNesting::new() }; MAX_HARTS];

loom::thread_local! {
    static HART: Cell<usize> = Cell::new(0);
}

/// Loom threads as harts; hart 0 is the model's main thread.
struct LoomArch;

impl Arch for LoomArch {
    fn hart_id() -> usize {
        HART.with(Cell::get)
    }
    fn irq_save_disable() -> usize {
        0
    }
    fn irq_restore(_saved: usize) {}
    fn irq_nesting() -> &'static IrqNesting {
        &NESTING[Self::hart_id()]
    }
}

/// `harts` threads (plus main) each increment a loom-tracked cell under
/// the lock, with `lock`, then (if `also_try_lock`) with `try_lock` when it
/// succeeds.
/// Loom reports a data race if two critical sections can overlap or are
/// not ordered by the lock's release/acquire.
fn check<R, M>(harts: usize, preemption_bound: usize, also_try_lock: bool)
where
    R: RawLock + Send + Sync + 'static,
    M: ksync::IrqMode + 'static,
{
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    // Waiters spin; each look at the lock is a branch loom must track.
    builder.max_branches = 100_000;
    builder.check(move || {
        let lock = Arc::new(Lock::<R, UnsafeCell<usize>, LoomArch, M>::new(
            "model",
            UnsafeCell::new(0),
        ));
        let workers: Vec<_> = (1..=harts)
            .map(|hart| {
                let lock = Arc::clone(&lock);
                thread::spawn(move || {
                    HART.with(|id| id.set(hart));
                    // SAFETY: the guard is held for the access; loom
                    // reports it if the lock fails to make that exclusive.
                    lock.lock().with_mut(|value| unsafe { *value += 1 });
                    if !also_try_lock {
                        return;
                    }
                    if let Some(guard) = lock.try_lock() {
                        // SAFETY: as above, under the `try_lock` guard.
                        guard.with_mut(|value| unsafe { *value += 10 });
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        // SAFETY: all workers joined and the guard is held.
        let total = lock.lock().with(|value| unsafe { *value });
        assert!(
            total >= harts && (total - harts).is_multiple_of(10),
            "lost update: {total}"
        );
        let successful_tries = (total - harts) / 10;
        assert!(successful_tries <= harts);
        assert!(!lock.is_locked());
    });
}

#[test]
fn spin_lock_is_exclusive() {
    check::<ksync::RawSpin, ksync::IrqUntouched>(2, 3, true);
}

#[test]
fn ticket_lock_is_exclusive() {
    check::<ksync::RawTicket, ksync::IrqUntouched>(2, 3, true);
}

#[test]
fn irq_ticket_lock_is_exclusive() {
    check::<ksync::RawTicket, ksync::IrqSave>(2, 3, true);
}

#[test]
fn three_harts_on_a_ticket_lock() {
    check::<ksync::RawTicket, ksync::IrqUntouched>(3, 1, false);
}
