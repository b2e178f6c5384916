//! The validator's fixed capacities: a hart holding more locks than its
//! stack records stops validating, and classes beyond the table's capacity
//! go unvalidated; each says so once through `log`. Own test binary: it
//! fills the process-wide class table and installs the global logger.

#![cfg(debug_assertions)]

mod common;

use std::sync::Mutex;
use std::thread;

use common::{HostArch, lockdep_hart};
use ksync::SpinLock;

struct CapturingLogger(Mutex<Vec<String>>);

impl log::Log for CapturingLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.0.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

static LOGGER: CapturingLogger = CapturingLogger(Mutex::new(Vec::new()));

fn logged() -> Vec<String> {
    LOGGER.0.lock().unwrap().clone()
}

/// Locks of `count` new classes; the table keeps their leaked names.
fn locks(prefix: &str, count: usize) -> Vec<SpinLock<(), HostArch>> {
    (0..count)
        .map(|i| SpinLock::new(String::leak(format!("{prefix}-{i}")), ()))
        .collect()
}

/// One test: the steps share the class table, so they run in this order.
#[test]
fn capacities_are_reported_once_and_then_skipped() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);

    // 33 nested locks: one more than a hart's held stack.
    let deep = locks("deep", 33);
    thread::scope(|scope| {
        scope.spawn(|| {
            let guards: Vec<_> = deep.iter().map(|lock| lock.lock()).collect();
            assert_eq!(lockdep_hart().depth(), 32);
            drop(guards);
            // Validation stopped on this hart, so its record froze.
            assert_eq!(lockdep_hart().depth(), 32);
            // Nor is an inversion reported here any more.
            let _last = deep[32].lock();
            let _first = deep[0].lock();
        });
    });
    let hart_line = logged();
    assert_eq!(hart_line.len(), 1, "{hart_line:?}");
    assert!(
        hart_line[0].starts_with("lockdep: hart ")
            && hart_line[0].ends_with(
                " holds more than 32 locks (taking `deep-32`); validation is off on this hart from now on"
            ),
        "{hart_line:?}"
    );

    // 33 classes so far; 31 more fill the table of 64.
    let fill = locks("fill", 31);
    thread::scope(|scope| {
        scope.spawn(|| fill.iter().for_each(|lock| drop(lock.lock())));
    });
    assert_eq!(logged().len(), 1);

    // Literal names: the table keeps no pointer to an untracked class's
    // name, so a leaked one would be a leak to Miri.
    let over: [SpinLock<(), HostArch>; 2] =
        [SpinLock::new("over-0", ()), SpinLock::new("over-1", ())];
    thread::scope(|scope| {
        scope.spawn(|| {
            // Untracked: neither recorded as held nor checked.
            let _a = over[0].lock();
            let _b = over[1].lock();
            assert_eq!(lockdep_hart().depth(), 0);
        });
    });
    thread::scope(|scope| {
        scope.spawn(|| {
            let _b = over[1].lock();
            let _a = over[0].lock();
        });
    });
    let lines = logged();
    assert_eq!(lines.len(), 2, "warned once only: {lines:?}");
    assert!(
        lines[1].starts_with("lockdep: class table full (64 classes): `over-0`")
            && lines[1].ends_with(" and every later new class go unvalidated"),
        "{lines:?}"
    );

    // The classes in the table are still validated.
    thread::scope(|scope| {
        scope.spawn(|| {
            let _a = fill[0].lock();
            let _b = fill[1].lock();
        });
    });
    let inverted = thread::scope(|scope| {
        scope
            .spawn(|| {
                let _b = fill[1].lock();
                let _a = fill[0].lock();
            })
            .join()
    });
    let message = inverted.expect_err("inversion of tracked classes");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("takes `fill-0` while holding `fill-1`"),
        "{message}"
    );
}
