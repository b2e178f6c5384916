//! The in-kernel test framework.
//!
//! Tests are registered with [`ktest!`] next to the code they test; each
//! expands (only in the `ktest` build) to a [`KernelTest`] record in the
//! `.ktest_array` linker section, which the linker script brackets with
//! `__ktest_start`/`__ktest_end`. The test build boots normally up to the
//! memory layout, then [`run`] executes every record and prints
//!
//! ```text
//! test arch::riscv64::trap::tests::trap_vector_is_installed_in_direct_mode ... ok
//! test memory::layout::tests::... ... FAILED
//!     kernel/src/memory/layout/tests.rs:12: `a` == `b` failed: left 1, right 2
//! 12 passed, 1 failed
//! ```
//!
//! and exits 0 only if every test passed. A test that panics or takes a
//! fatal trap is reported as failed by name with the reason, then the run
//! stops (the remaining tests are counted as skipped). A test that expects
//! a fault states it with [`fault::expect_fault`]: the trap handler resumes
//! at a recovery point armed on the hart, and the test compares scause,
//! address and diagnosis.

#[cfg(feature = "ktest")]
mod assert;
#[cfg(feature = "ktest")]
pub mod fault;
#[cfg(feature = "ktest")]
mod runner;

#[cfg(feature = "ktest")]
pub use assert::{Failure, TestResult};
#[cfg(feature = "ktest")]
pub use runner::{
    Crash, KernelTest, TestArgs, abort_running_test, args as test_args, run, strip_crate,
};

/// Outside the test build no test is ever running: nothing to report.
#[cfg(not(feature = "ktest"))]
pub fn abort_running_test(_reason: core::fmt::Arguments<'_>) {}

/// What every test module imports.
#[cfg(feature = "ktest")]
pub mod prelude {
    pub use super::fault::{ExpectedFault, expect_fault};
    pub use super::{another_hart, wait_until};
    pub use crate::{kassert, kassert_eq, ktest};
}

/// The slot of an online hart other than the caller's (the next in
/// slot order), for a test that parks something on another hart; `None`
/// on a machine with one hart.
#[cfg(feature = "ktest")]
pub fn another_hart() -> Option<usize> {
    let me = crate::arch::hart::current().slot();
    crate::arch::hart::online()
        .map(|hart| hart.slot())
        .find(|&slot| slot != me)
}

/// Spins until `done()` holds or `seconds` have passed; returns whether it
/// held ([`cpu::spin_until`](crate::arch::cpu::spin_until) in seconds).
/// For a test waiting on another hart or an interrupt: such an event is
/// normally due within milliseconds, but each hart is a QEMU host thread,
/// and a CI run once saw an idle hart take no timer tick in 30 ms. Waiting
/// for the event itself, with a bound of seconds, keeps an event that
/// never comes a failure without making a slow host one.
#[cfg(feature = "ktest")]
pub fn wait_until(seconds: u64, done: impl FnMut() -> bool) -> bool {
    crate::arch::cpu::spin_until(seconds * crate::platform::get().timebase_hz, done)
}

/// Registers a kernel test: `ktest! { fn name() { ...; Ok(()) } }`. The body
/// returns [`TestResult`]; use `kassert!`/`kassert_eq!` for checks.
#[macro_export]
macro_rules! ktest {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        #[cfg(feature = "ktest")]
        const _: () = {
            $(#[$meta])*
            #[allow(clippy::result_large_err, reason = "the failure text lives in the Err; tests have stack to spare")]
            fn $name() -> $crate::ktest::TestResult $body

            // The section is the registry the runner walks; registering a
            // test is safe even where a module denies unsafe code.
            #[allow(unsafe_code)]
            #[unsafe(link_section = ".ktest_array")]
            #[used]
            static ENTRY: $crate::ktest::KernelTest = $crate::ktest::KernelTest {
                name: $crate::ktest::strip_crate(concat!(module_path!(), "::", stringify!($name))),
                run: $name,
            };
        };
    };
}
