//! Model check of the two cross-CPU protocols with loom: a magazine that
//! its owner pushes and pops while another CPU looks for an object in it
//! (the exact double-free check), and drain requests that an owner answers
//! after emptying its caches. Every interleaving and every weak-memory
//! outcome loom models must keep the assertions. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p rvos-kheap --test loom --release`.

#![cfg(loom)]

use std::ptr::{self, NonNull};

use kheap::MAGAZINE_SLOTS;
use kheap::model::{DrainRequests, Magazine};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::Ordering::{Acquire, Release};
use loom::thread;

/// Object `k` (a distinct, non-null address; never dereferenced).
fn object(k: usize) -> NonNull<u8> {
    NonNull::new(ptr::without_provenance_mut(k * 64)).unwrap()
}

fn model(preemption_bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    // Waiters spin; each look is a branch loom must track.
    builder.max_branches = 100_000;
    builder.check(f);
}

/// Spins until `flag` is set, with an acquire load.
fn wait_for(flag: &AtomicBool) {
    while !flag.load(Acquire) {
        thread::yield_now();
    }
}

/// One magazine, its owner (this thread, running `own`) and a looker
/// (another thread) that waits until the owner calls `signal` (a release
/// store the looker acquires) and then runs `look`.
fn owner_and_looker(preemption_bound: usize, look: fn(&Magazine), own: fn(&Magazine, &dyn Fn())) {
    model(preemption_bound, move || {
        let magazine = Arc::new(Magazine::new());
        let signalled = Arc::new(AtomicBool::new(false));
        let looker = {
            let (magazine, signalled) = (Arc::clone(&magazine), Arc::clone(&signalled));
            thread::spawn(move || {
                wait_for(&signalled);
                look(&magazine);
            })
        };
        own(&magazine, &|| signalled.store(true, Release));
        looker.join().unwrap();
    });
}

/// The owner pushes A, publishes that, pushes B and pops one (B: the
/// magazine is a stack), then reuses the slot B had. A stays parked the
/// whole time, so a CPU that learned of its push must find it, whatever
/// the owner does to the slots above it meanwhile.
#[test]
fn a_looker_finds_an_object_parked_before_it_looked_while_the_owner_pushes_and_pops() {
    owner_and_looker(
        3,
        |magazine| assert!(magazine.contains(object(1)), "A is parked"),
        |magazine, signal| {
            magazine.push(object(1));
            signal();
            magazine.push(object(2));
            assert_eq!(magazine.pop(), Some(object(2)));
            magazine.push(object(3));
            assert_eq!(magazine.len(), 2);
        },
    );
}

/// The owner pushes A and B, then pops both and says so. A looker that
/// learned A was pushed finds it, unless it learned A was popped too:
/// then it must not find it.
#[test]
fn a_looker_finds_a_parked_object_until_it_learns_the_owner_took_it() {
    model(3, || {
        let magazine = Arc::new(Magazine::new());
        let pushed = Arc::new(AtomicBool::new(false));
        let popped = Arc::new(AtomicBool::new(false));
        let looker = {
            let (magazine, pushed, popped) = (
                Arc::clone(&magazine),
                Arc::clone(&pushed),
                Arc::clone(&popped),
            );
            thread::spawn(move || {
                wait_for(&pushed);
                let taken = popped.load(Acquire);
                let found = magazine.contains(object(1));
                if taken {
                    assert!(!found, "A was handed out: not parked any more");
                }
                // Not told it was taken: A may still be parked or not.
            })
        };
        magazine.push(object(1));
        pushed.store(true, Release);
        magazine.push(object(2));
        assert_eq!(magazine.pop(), Some(object(2)));
        assert_eq!(magazine.pop(), Some(object(1)));
        popped.store(true, Release);
        looker.join().unwrap();
    });
}

/// Push X, pop X (handed out again), publish, then push Y into the slot X
/// had: a looker that learned of the pop never reports X, even while Y
/// lands in X's slot (the pop nulled the slot, so a `len` covering it
/// again shows the null or Y, never X).
#[test]
fn a_looker_never_reports_an_object_handed_out_before_it_looked_when_its_slot_is_reused() {
    owner_and_looker(
        3,
        |magazine| assert!(!magazine.contains(object(1)), "X was handed out"),
        |magazine, signal| {
            magazine.push(object(1));
            assert_eq!(magazine.pop(), Some(object(1)));
            signal();
            magazine.push(object(2));
            assert_eq!(magazine.pop(), Some(object(2)));
            magazine.push(object(3));
        },
    );
}

/// Push X and X', flush them (copied out, then cleared), publish, then
/// push Y and Y' into their slots: a looker that learned of the flush never
/// reports X' (the clear nulled the slots it forgot).
#[test]
fn a_looker_never_reports_an_object_flushed_before_it_looked_when_its_slot_is_reused() {
    owner_and_looker(
        2,
        |magazine| assert!(!magazine.contains(object(2)), "X' was flushed"),
        |magazine, signal| {
            magazine.push(object(1));
            magazine.push(object(2));
            let mut out = [object(9); MAGAZINE_SLOTS];
            assert_eq!(magazine.copy_out(&mut out), 2);
            magazine.clear();
            signal();
            magazine.push(object(3));
            magazine.push(object(4));
        },
    );
}

/// Push X, pop X, push Y into the same slot, publish: a looker that learned
/// of the push of Y finds Y and not X.
#[test]
fn a_looker_synchronised_after_a_slot_is_reused_sees_the_new_object_not_the_old() {
    owner_and_looker(
        3,
        |magazine| {
            assert!(!magazine.contains(object(1)), "X was handed out");
            assert!(magazine.contains(object(2)), "Y is parked");
        },
        |magazine, signal| {
            magazine.push(object(1));
            assert_eq!(magazine.pop(), Some(object(1)));
            magazine.push(object(2));
            signal();
        },
    );
}

/// The owner's caches: objects parked, in a loom cell, so that loom
/// reports a read by an asker that the answer does not order after the
/// owner's emptying.
struct Caches {
    parked: UnsafeCell<usize>,
}

// SAFETY: the cell is written by the owner only; askers read it after the
// drain protocol ordered them after that write (loom checks exactly that).
unsafe impl Sync for Caches {}

impl Caches {
    fn parked(objects: usize) -> Self {
        Self {
            parked: UnsafeCell::new(objects),
        }
    }

    /// An asker's look, once answered (or the owner's own).
    fn read(&self) -> usize {
        // SAFETY: the owner's own read, or an asker's after the answer,
        // which orders it after the owner's last write (loom reports it
        // otherwise).
        self.parked.with(|parked| unsafe { *parked })
    }
}

/// The owner's side (as `CachedHeap::drain` does): if a request is
/// pending, empties the caches when they hold anything, then answers it.
/// Whether it answered one.
fn serve(requests: &DrainRequests, caches: &Caches) -> bool {
    let Some(ticket) = requests.pending() else {
        return false;
    };
    if caches.read() != 0 {
        // SAFETY: only the owner writes the cell; no asker reads it before
        // the answer below.
        caches.parked.with_mut(|parked| unsafe { *parked = 0 });
    }
    requests.answer(ticket);
    true
}

/// An asker asks the owner to drain and waits for the answer, then reads
/// the caches: it must find them empty. The owner parks objects first,
/// then answers requests (emptying its caches while there is something in
/// them) until it has answered one.
#[test]
fn an_asker_sees_the_owners_caches_emptied_once_its_request_is_answered() {
    model(3, || {
        let requests = Arc::new(DrainRequests::new());
        let caches = Arc::new(Caches::parked(3));
        let owner = {
            let (requests, caches) = (Arc::clone(&requests), Arc::clone(&caches));
            thread::spawn(move || {
                while !serve(&requests, &caches) {
                    thread::yield_now();
                }
            })
        };
        let ticket = requests.ask();
        while !requests.is_answered(ticket) {
            thread::yield_now();
        }
        assert_eq!(
            caches.read(),
            0,
            "the caches were emptied before the answer"
        );
        owner.join().unwrap();
        assert!(requests.pending().is_none(), "every request answered");
    });
}

/// Two CPUs ask at once (each looks twice at most whether it was
/// answered, and if so must find the caches empty); the owner serves once
/// while they ask and once after: both are answered, by one answer or two.
#[test]
fn two_askers_at_once_are_both_answered_and_both_see_the_caches_emptied() {
    model(3, || {
        let requests = Arc::new(DrainRequests::new());
        let caches = Arc::new(Caches::parked(3));
        let askers: Vec<_> = (0..2)
            .map(|_| {
                let (requests, caches) = (Arc::clone(&requests), Arc::clone(&caches));
                thread::spawn(move || {
                    let ticket = requests.ask();
                    // A second look after letting the owner run (loom
                    // switches threads at a yield).
                    let answered = requests.is_answered(ticket) || {
                        thread::yield_now();
                        requests.is_answered(ticket)
                    };
                    if answered {
                        assert_eq!(
                            caches.read(),
                            0,
                            "the caches were emptied before the answer"
                        );
                    }
                    ticket
                })
            })
            .collect();
        // This thread is the owner.
        serve(&requests, &caches);
        let tickets: Vec<usize> = askers.into_iter().map(|a| a.join().unwrap()).collect();
        serve(&requests, &caches);
        let mut sorted = tickets.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2], "each asker has a ticket of its own");
        for ticket in tickets {
            assert!(requests.is_answered(ticket), "ticket {ticket} answered");
        }
        assert!(requests.pending().is_none(), "every request answered");
        assert_eq!(caches.read(), 0);
    });
}
