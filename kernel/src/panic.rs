//! The panic handler: prints message, location and hart, fails the running
//! in-kernel test by name, and powers off with `FailureCode::Panic`. For
//! Rust's "memory allocation of N bytes failed" it adds the allocator
//! diagnosis (`memory::global`).

use crate::arch::{hart, trap::HartDisplay};
use crate::power::{self, FailureCode};
use core::fmt::Write;
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
    let mut prefix = Prefix::default();
    let _ = write!(prefix, "{message}");
    let alloc_failure = prefix.text().starts_with(ALLOC_FAILURE_PREFIX);
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
    if alloc_failure {
        crate::memory::global::print_failure_diagnosis();
    }
    power::fail(FailureCode::Panic)
}

/// How Rust's default alloc error handler words its panic.
const ALLOC_FAILURE_PREFIX: &str = "memory allocation of";

/// The first bytes of a formatted message, without allocating.
#[derive(Default)]
struct Prefix {
    bytes: [u8; 24],
    len: usize,
}

impl Prefix {
    fn text(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for Prefix {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let take = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}
