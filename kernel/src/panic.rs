//! The panic handler: prints message, location and hart, fails the running
//! in-kernel test by name, and powers off with `FailureCode::Panic`.

use crate::arch::{hart, trap::HartDisplay};
use crate::power::{self, FailureCode};
use core::sync::atomic::{AtomicBool, Ordering};

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::AcqRel) {
        // A panic while reporting a panic: say so without formatting more.
        crate::println!("\nPANIC while panicking; giving up");
        power::fail(FailureCode::Panic);
    }
    let hart = HartDisplay(hart::current_id());
    let message = info.message();
    match info.location() {
        Some(location) => {
            crate::println!("\nPANIC on hart {hart} at {location}: {message}");
            crate::ktest::abort_running_test(format_args!("panicked at {location}: {message}"));
        }
        None => {
            crate::println!("\nPANIC on hart {hart}: {message}");
            crate::ktest::abort_running_test(format_args!("panicked: {message}"));
        }
    }
    power::fail(FailureCode::Panic)
}
