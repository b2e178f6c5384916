//! `Once` and `Lazy`: exactly one initialisation under a race, poisoning.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use common::scaled;
use ksync::{Lazy, Once};

#[test]
fn racing_callers_run_the_initialiser_once_and_see_its_value() {
    for _ in 0..scaled(50, 2) {
        let calls = AtomicUsize::new(0);
        let cell = Once::<Vec<u32>>::new();
        thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let value = cell.call_once(|| {
                        calls.fetch_add(1, Ordering::Relaxed);
                        vec![1, 2, 3]
                    });
                    assert_eq!(value, &[1, 2, 3]);
                });
            }
        });
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert!(cell.is_completed());
    }
}

#[test]
fn get_is_none_before_and_some_after() {
    let cell = Once::new();
    assert!(cell.get().is_none());
    assert_eq!(*cell.call_once(|| 7), 7);
    assert_eq!(cell.get(), Some(&7));
    assert_eq!(*cell.call_once(|| 8), 7);
}

#[test]
fn a_thread_that_saw_the_value_once_reads_it_unchecked_afterwards() {
    let cell = Once::<Vec<u32>>::new();
    thread::scope(|scope| {
        scope.spawn(|| cell.call_once(|| vec![4, 5, 6]));
        scope.spawn(|| {
            while cell.get().is_none() {
                thread::yield_now();
            }
            for _ in 0..scaled(100, 3) {
                // SAFETY: `get` returned `Some` earlier on this thread.
                assert_eq!(unsafe { cell.get_unchecked() }, &[4, 5, 6]);
            }
        });
    });
}

#[test]
fn a_panicking_initialiser_poisons_the_cell() {
    let cell = Once::<u8>::new();
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        *cell.call_once(|| panic!("boom"))
    }));
    assert!(first.is_err());
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *cell.call_once(|| 1)));
    let message = second.expect_err("poisoned cell must panic");
    assert_eq!(
        message.downcast_ref::<&str>(),
        Some(&"Once: the initialiser panicked")
    );
}

static TABLE: Lazy<Vec<u64>> = Lazy::new(|| (0..4).map(|i| i * i).collect());

#[test]
fn lazy_static_computes_on_first_use() {
    assert_eq!(TABLE[3], 9);
    assert_eq!(TABLE.len(), 4);
}
