//! A waiter stuck behind a lock logs the lock's name and the holder's hart
//! (debug builds only). Own test binary: it installs the global logger.

#![cfg(debug_assertions)]

mod common;

use std::sync::Mutex;
use std::thread;

use common::HostArch;
use ksync::{Arch, IrqNesting, TicketLock};

/// Reports after a few spins so the test does not wait long.
struct QuickReportArch;

impl Arch for QuickReportArch {
    fn hart_id() -> usize {
        HostArch::hart_id()
    }
    fn irq_save_disable() -> usize {
        HostArch::irq_save_disable()
    }
    fn irq_restore(saved: usize) {
        HostArch::irq_restore(saved)
    }
    fn irq_nesting() -> &'static IrqNesting {
        HostArch::irq_nesting()
    }
    fn relax() {
        HostArch::relax()
    }
    const SPIN_REPORT_INTERVAL: u64 = 100;
}

struct CapturingLogger(Mutex<Vec<String>>);

impl log::Log for CapturingLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{}: {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

static LOGGER: CapturingLogger = CapturingLogger(Mutex::new(Vec::new()));

#[test]
fn long_wait_reports_lock_name_and_holder() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let lock = TicketLock::<(), QuickReportArch>::new("slow-holder", ());
    let holder_hart = QuickReportArch::hart_id();
    let guard = lock.lock();
    thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let _guard = lock.lock();
            QuickReportArch::hart_id()
        });
        let expected_prefix = "WARN: lock `slow-holder`: hart ".to_string();
        let expected_holder = format!("held by hart {holder_hart}; 1 waiter(s)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no report: {:?}",
                LOGGER.0.lock().unwrap()
            );
            let reported =
                LOGGER.0.lock().unwrap().iter().any(|line| {
                    line.starts_with(&expected_prefix) && line.contains(&expected_holder)
                });
            if reported {
                break;
            }
            thread::yield_now();
        }
        drop(guard);
        let waiter_hart = waiter.join().unwrap();
        let lines = LOGGER.0.lock().unwrap();
        assert!(
            lines[0].contains(&format!("hart {waiter_hart} has spun 100 times")),
            "{lines:?}"
        );
    });
}
