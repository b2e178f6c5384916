//! Ending the machine with a status the host can read: through the
//! `sifive,test` device when the device tree has one, else the SBI reset
//! call (which loses the failure status under QEMU's firmware).

use crate::arch::{cpu, sbi};
use crate::drivers::sifive_test::SifiveTest;
use crate::sync::BootCell;

/// Non-zero exit statuses; `cargo xtask test` checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum FailureCode {
    /// At least one in-kernel test failed.
    #[cfg_attr(
        not(feature = "ktest"),
        expect(dead_code, reason = "only the test build runs tests")
    )]
    TestsFailed = 1,
    /// A panic.
    Panic = 2,
    /// An exception or interrupt nobody handles.
    FatalTrap = 3,
    /// The device tree or the memory layout cannot be used.
    Platform = 4,
    /// A boot argument is malformed or has a bad value.
    BootArgs = 5,
    /// A command of the monitor's `cmds=` list failed.
    #[cfg_attr(
        feature = "ktest",
        expect(dead_code, reason = "the test build has no shell")
    )]
    CommandsFailed = 6,
}

static FINISHER: BootCell<SifiveTest> = BootCell::new();

/// Registers the exit device found in the device tree.
pub fn init(device: SifiveTest) {
    FINISHER.set(device);
}

/// Powers off with status 0.
pub fn succeed() -> ! {
    if let Some(device) = FINISHER.get() {
        device.pass();
    }
    sbi::system_off(false);
    cpu::halt()
}

/// Powers off with the failure status `code`.
pub fn fail(code: FailureCode) -> ! {
    if let Some(device) = FINISHER.get() {
        device.fail(code as u16);
    }
    sbi::system_off(true);
    cpu::halt()
}
