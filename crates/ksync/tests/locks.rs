//! Host tests of the lock types with real threads: exclusion under
//! contention, `try_lock`, ticket FIFO order, re-entry detection, statics.

mod common;

use std::sync::Arc;
use std::thread;

use common::{HostArch, scaled};
use ksync::{IrqSpinLock, IrqTicketLock, Lock, RawLock, SpinLock, TicketLock};

const THREADS: usize = 4;

/// Every thread increments a plain (non-atomic) pair under the lock; a
/// lost update or a torn pair shows up in the final count or the check.
fn hammer<R: RawLock + Send + Sync + 'static, M: ksync::IrqMode + 'static>(
    lock: Arc<Lock<R, (u64, u64), HostArch, M>>,
) {
    let iterations = scaled(20_000, 60);
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let lock = Arc::clone(&lock);
            thread::spawn(move || {
                for _ in 0..iterations {
                    let mut pair = lock.lock();
                    assert_eq!(pair.0, pair.1, "a writer was inside the critical section");
                    pair.0 += 1;
                    std::hint::black_box(&mut *pair);
                    pair.1 += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let total = (THREADS * iterations) as u64;
    assert_eq!(*lock.lock(), (total, total));
    assert!(!lock.is_locked());
}

#[test]
fn spin_lock_counts_exactly_under_contention() {
    hammer(Arc::new(SpinLock::<_, HostArch>::new(
        "spin-counter",
        (0, 0),
    )));
}

#[test]
fn ticket_lock_counts_exactly_under_contention() {
    hammer(Arc::new(TicketLock::<_, HostArch>::new(
        "ticket-counter",
        (0, 0),
    )));
}

#[test]
fn irq_locks_count_exactly_under_contention() {
    hammer(Arc::new(IrqSpinLock::<_, HostArch>::new(
        "irq-spin-counter",
        (0, 0),
    )));
    hammer(Arc::new(IrqTicketLock::<_, HostArch>::new(
        "irq-ticket-counter",
        (0, 0),
    )));
}

#[test]
fn try_lock_fails_while_held_and_succeeds_after() {
    let spin = SpinLock::<u32, HostArch>::new("try-spin", 1);
    let ticket = TicketLock::<u32, HostArch>::new("try-ticket", 2);
    let spin_guard = spin.lock();
    let ticket_guard = ticket.lock();
    thread::scope(|scope| {
        scope.spawn(|| {
            assert!(spin.try_lock().is_none());
            assert!(ticket.try_lock().is_none());
        });
    });
    drop((spin_guard, ticket_guard));
    assert_eq!(*spin.try_lock().expect("free spin lock"), 1);
    assert_eq!(*ticket.try_lock().expect("free ticket lock"), 2);
    // try_lock on a lock this hart holds reports "busy", not a panic.
    let _held = ticket.lock();
    assert!(ticket.try_lock().is_none());
}

/// Threads take tickets one after another (each starts only once the
/// previous one is queued); the lock must serve them in that order.
#[test]
fn ticket_lock_serves_waiters_in_arrival_order() {
    let waiters = scaled(8, 4);
    let lock = TicketLock::<Vec<usize>, HostArch>::new("fifo", Vec::new());
    let gate = lock.lock();
    thread::scope(|scope| {
        for arrival in 0..waiters {
            let lock = &lock;
            scope.spawn(move || lock.lock().push(arrival));
            while lock.waiters() != arrival + 1 {
                thread::yield_now();
            }
        }
        drop(gate);
    });
    assert_eq!(*lock.lock(), (0..waiters).collect::<Vec<_>>());
}

static STATIC_SPIN: SpinLock<u64, HostArch> = SpinLock::new("static-spin", 0);
static STATIC_TICKET: IrqTicketLock<[u8; 4], HostArch> =
    IrqTicketLock::new("static-ticket", [0; 4]);

#[test]
fn locks_work_as_statics() {
    *STATIC_SPIN.lock() += 5;
    STATIC_TICKET.lock()[3] = 7;
    assert_eq!(*STATIC_SPIN.lock(), 5);
    assert_eq!(STATIC_TICKET.lock()[3], 7);
    assert_eq!(STATIC_TICKET.name(), "static-ticket");
}

#[test]
fn into_inner_and_get_mut_bypass_the_lock() {
    let mut lock = SpinLock::<String, HostArch>::new("owned", "a".into());
    lock.get_mut().push('b');
    assert_eq!(lock.into_inner(), "ab");
}

#[cfg(debug_assertions)]
#[test]
fn holder_is_recorded_while_held() {
    let lock = TicketLock::<(), HostArch>::new("holder", ());
    assert_eq!(lock.holder(), None);
    let guard = lock.lock();
    assert_eq!(lock.holder(), Some(<HostArch as ksync::Arch>::hart_id()));
    drop(guard);
    assert_eq!(lock.holder(), None);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "tries to acquire lock `reentrant-spin` which it already holds")]
fn relocking_a_held_spin_lock_panics_with_its_name() {
    let lock = SpinLock::<(), HostArch>::new("reentrant-spin", ());
    let _outer = lock.lock();
    let _inner = lock.lock();
}

#[cfg(debug_assertions)]
#[test]
fn relocking_a_held_ticket_lock_names_the_lock_and_hart() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let lock = IrqTicketLock::<(), HostArch>::new("reentrant-ticket", ());
    let panicked = AtomicBool::new(false);
    thread::scope(|scope| {
        let result = scope
            .spawn(|| {
                let hart = <HostArch as ksync::Arch>::hart_id();
                let _outer = lock.lock();
                let message = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _inner = lock.lock();
                }))
                .expect_err("re-entry must panic");
                let message = message.downcast_ref::<String>().expect("formatted panic");
                assert_eq!(
                    *message,
                    format!("deadlock: hart {hart} tries to acquire lock `reentrant-ticket` which it already holds")
                );
                panicked.store(true, Ordering::Relaxed);
            })
            .join();
        result.unwrap();
    });
    assert!(panicked.load(Ordering::Relaxed));
    // The failed re-entry took no ticket: the lock is free again.
    assert!(!lock.is_locked());
    assert!(lock.try_lock().is_some());
}
