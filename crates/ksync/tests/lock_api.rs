//! The `lock_api` integration with real threads: `lock_api::Mutex` over
//! ksync's raw locks excludes under contention, and the interrupt-masking
//! raw lock masks while held and nests with ksync's own masking sections.
//! Run with `--features lock_api` (or `--all-features`).

#![cfg(all(feature = "lock_api", not(loom)))]

mod common;

use std::thread;

use common::{HostArch, irq_enabled, scaled, set_irq_enabled};
use ksync::lock_api::{
    IrqSpinMutex, IrqTicketMutex, RawIrqSpin, RawIrqTicket, SpinMutex, SpinMutexGuard, TicketMutex,
};
use ksync::{Arch, IrqSpinLock, irq_save};
use lock_api_crate::{Mutex, RawMutex};

const THREADS: usize = 4;

/// Every thread increments a plain pair under the mutex; a torn pair or a
/// lost update shows the mutex let two holders in.
fn hammer<R: RawMutex + Sync>(mutex: &Mutex<R, (u64, u64)>, check_masked: bool) {
    let iterations = scaled(5_000, 40);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                set_irq_enabled(true);
                for _ in 0..iterations {
                    let mut pair = mutex.lock();
                    if check_masked {
                        assert!(!irq_enabled(), "interrupts on while the lock is held");
                    }
                    assert_eq!(pair.0, pair.1, "two holders inside the critical section");
                    pair.0 += 1;
                    std::hint::black_box(&mut *pair);
                    pair.1 += 1;
                    drop(pair);
                    if check_masked {
                        assert!(irq_enabled(), "interrupts not restored on release");
                    }
                }
            });
        }
    });
    let total = (THREADS * iterations) as u64;
    assert_eq!(*mutex.lock(), (total, total));
    assert!(!mutex.is_locked());
}

#[test]
fn spin_mutex_counts_exactly_under_contention() {
    hammer(&SpinMutex::new((0, 0)), false);
}

#[test]
fn ticket_mutex_counts_exactly_under_contention() {
    hammer(&TicketMutex::new((0, 0)), false);
}

#[test]
fn irq_mutexes_count_exactly_and_mask_while_held() {
    hammer(&IrqSpinMutex::<_, HostArch>::new((0, 0)), true);
    hammer(&IrqTicketMutex::<_, HostArch>::new((0, 0)), true);
}

static STATIC_SPIN: SpinMutex<u32> = SpinMutex::new(0);
static STATIC_IRQ: IrqTicketMutex<[u8; 2], HostArch> = IrqTicketMutex::new([0; 2]);

#[test]
fn mutexes_work_as_statics() {
    *STATIC_SPIN.lock() += 3;
    STATIC_IRQ.lock()[1] = 9;
    assert_eq!(*STATIC_SPIN.lock(), 3);
    assert_eq!(*STATIC_IRQ.lock(), [0, 9]);
}

#[test]
fn irq_mutex_nests_with_ksync_sections_in_any_release_order() {
    set_irq_enabled(true);
    let mutex = IrqSpinMutex::<(), HostArch>::new(());
    let lock = IrqSpinLock::<(), HostArch>::new("lock-api-nesting", ());
    let section = irq_save::<HostArch>();
    let guard = mutex.lock();
    let ksync_guard = lock.lock();
    assert_eq!(HostArch::irq_nesting().depth(), 3);
    drop(section);
    drop(guard);
    assert!(!irq_enabled(), "restored while a lock is still held");
    drop(ksync_guard);
    assert!(irq_enabled());
    assert_eq!(HostArch::irq_nesting().depth(), 0);
}

#[test]
fn irq_mutex_keeps_interrupts_off_if_they_were_off() {
    set_irq_enabled(false);
    let mutex = IrqTicketMutex::<(), HostArch>::new(());
    drop(mutex.lock());
    assert!(
        !irq_enabled(),
        "releasing enabled interrupts the caller had off"
    );
    set_irq_enabled(true);
}

#[test]
fn failed_try_lock_restores_interrupts() {
    let spin = IrqSpinMutex::<(), HostArch>::new(());
    let ticket = IrqTicketMutex::<(), HostArch>::new(());
    let _held = (spin.lock(), ticket.lock());
    thread::scope(|scope| {
        scope.spawn(|| {
            set_irq_enabled(true);
            assert!(spin.try_lock().is_none());
            assert!(ticket.try_lock().is_none());
            assert!(irq_enabled());
            assert_eq!(HostArch::irq_nesting().depth(), 0);
        });
    });
}

#[test]
fn successful_try_lock_masks_until_release() {
    set_irq_enabled(true);
    let mutex = IrqTicketMutex::<u8, HostArch>::new(5);
    let guard = mutex.try_lock().expect("free");
    assert_eq!(*guard, 5);
    assert!(!irq_enabled());
    drop(guard);
    assert!(irq_enabled());
}

#[test]
fn plain_guards_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<SpinMutexGuard<'static, u8>>();
    // A guard taken on one thread may be released on another.
    let mutex = SpinMutex::new(1);
    let guard = mutex.lock();
    thread::scope(|scope| {
        scope.spawn(move || drop(guard));
    });
    assert!(!mutex.is_locked());
}

#[cfg(debug_assertions)]
#[test]
fn irq_raw_lock_records_its_holder() {
    let raw = RawIrqTicket::<HostArch>::INIT;
    assert_eq!(raw.holder(), None);
    raw.lock();
    assert_eq!(raw.holder(), Some(HostArch::hart_id()));
    // SAFETY: locked just above on this thread.
    unsafe { raw.unlock() };
    assert_eq!(raw.holder(), None);
    assert_eq!(HostArch::irq_nesting().depth(), 0);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "tries to acquire lock `<lock_api RawIrq>` which it already holds")]
fn relocking_an_irq_mutex_on_its_holder_panics() {
    let mutex = Mutex::<RawIrqSpin<HostArch>, ()>::new(());
    let _outer = mutex.lock();
    let _inner = mutex.lock();
}
