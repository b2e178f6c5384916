//! Expected faults: a test states the exception it expects (scause class,
//! faulting address range, and the diagnosis the page-fault path would
//! print), runs the faulting code under `arch::fault_catch::catch_fault`,
//! and passes only if the fault happened and every part matches.

use super::{Failure, TestResult};
use crate::arch::fault_catch::catch_fault;
use crate::arch::trap::TrapCause;
use crate::memdiag::fault_report;
use core::fmt::{self, Write};
use core::ops::Range;

/// The fault a test expects.
pub struct ExpectedFault<'a> {
    pub cause: TrapCause,
    /// stval must lie here.
    pub address: Range<usize>,
    /// The page-fault diagnosis must read exactly this (None for causes
    /// that are not page faults).
    pub diagnosis: Option<&'a str>,
}

/// A diagnosis rendered without the heap.
struct Text {
    bytes: [u8; 128],
    len: usize,
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let take = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

impl Text {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("<invalid utf-8>")
    }
}

/// Runs `f`, which must take exactly the `expected` fault.
#[track_caller]
#[allow(clippy::result_large_err, reason = "signature of every test")]
pub fn expect_fault(expected: ExpectedFault<'_>, f: impl FnOnce()) -> TestResult {
    let Some(caught) = catch_fault(f) else {
        return Err(Failure::new(format_args!(
            "expected {} at {:#x?}, but the code ran without a fault",
            expected.cause, expected.address
        )));
    };
    let cause = TrapCause::from_scause(caught.scause);
    if cause != expected.cause {
        return Err(Failure::new(format_args!(
            "expected {}, got {cause} at {:#x} (sepc {:#x})",
            expected.cause, caught.stval, caught.sepc
        )));
    }
    if !expected.address.contains(&caught.stval) {
        return Err(Failure::new(format_args!(
            "{cause} at {:#x}, expected an address in {:#x?}",
            caught.stval, expected.address
        )));
    }
    if let Some(want) = expected.diagnosis {
        let Some(access) = cause.page_fault_access() else {
            return Err(Failure::new(format_args!(
                "{cause} has no page-fault diagnosis to compare with {want:?}"
            )));
        };
        let mut text = Text {
            bytes: [0; 128],
            len: 0,
        };
        let _ = write!(text, "{}", fault_report::diagnose(caught.stval, access));
        if text.as_str() != want {
            return Err(Failure::new(format_args!(
                "{cause} at {:#x}: diagnosis {:?}, expected {want:?}",
                caught.stval,
                text.as_str()
            )));
        }
    }
    Ok(())
}
