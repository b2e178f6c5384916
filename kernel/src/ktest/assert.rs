//! Test outcomes and the assertion macros: a failed check returns a
//! [`Failure`] holding the formatted reason and the source location, so the
//! run continues with the next test (no heap needed: the message is kept in
//! a fixed buffer and truncated if longer).

use core::fmt::{self, Write};
use core::panic::Location;

pub type TestResult = Result<(), Failure>;

const MESSAGE_CAPACITY: usize = 384;

/// Why a test failed.
pub struct Failure {
    message: [u8; MESSAGE_CAPACITY],
    len: usize,
    truncated: bool,
    location: &'static Location<'static>,
}

impl Failure {
    #[track_caller]
    pub fn new(reason: fmt::Arguments<'_>) -> Self {
        let mut failure = Self {
            message: [0; MESSAGE_CAPACITY],
            len: 0,
            truncated: false,
            location: Location::caller(),
        };
        let _ = failure.write_fmt(reason);
        failure
    }

    fn text(&self) -> &str {
        // `write_str` only stores whole characters, so this never fails.
        core::str::from_utf8(&self.message[..self.len]).unwrap_or("<invalid utf-8>")
    }
}

impl Write for Failure {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            let mut buf = [0; 4];
            let encoded = ch.encode_utf8(&mut buf).as_bytes();
            if self.len + encoded.len() > MESSAGE_CAPACITY {
                self.truncated = true;
                return Ok(());
            }
            self.message[self.len..self.len + encoded.len()].copy_from_slice(encoded);
            self.len += encoded.len();
        }
        Ok(())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.location.file(),
            self.location.line(),
            self.text()
        )?;
        if self.truncated {
            f.write_str(" [...]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Fails the test unless the condition holds.
#[macro_export]
macro_rules! kassert {
    ($cond:expr $(,)?) => {
        if !$cond {
            return Err($crate::ktest::Failure::new(format_args!("assertion failed: {}", stringify!($cond))));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::ktest::Failure::new(format_args!(
                "assertion failed: {}: {}",
                stringify!($cond),
                format_args!($($fmt)+)
            )));
        }
    };
}

/// Fails the test unless the two values are equal, showing both.
#[macro_export]
macro_rules! kassert_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left, right) => {
                if !(*left == *right) {
                    return Err($crate::ktest::Failure::new(format_args!(
                        "`{}` == `{}` failed: left {:x?}, right {:x?}",
                        stringify!($left),
                        stringify!($right),
                        left,
                        right,
                    )));
                }
            }
        }
    };
    ($left:expr, $right:expr, $($fmt:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if !(*left == *right) {
                    return Err($crate::ktest::Failure::new(format_args!(
                        "`{}` == `{}` failed: left {:x?}, right {:x?} ({})",
                        stringify!($left),
                        stringify!($right),
                        left,
                        right,
                        format_args!($($fmt)+)
                    )));
                }
            }
        }
    };
}
