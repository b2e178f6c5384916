//! Who performed an operation: a source location (from `#[track_caller]`)
//! or a return address (from a frame-pointer walk, symbolised elsewhere).

use core::fmt;
use core::panic::Location;

/// The call site of an allocation or free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CallSite {
    /// Not recorded (tracking off, or the caller could not tell).
    #[default]
    Unknown,
    /// A source location captured with `#[track_caller]`.
    Source(&'static Location<'static>),
    /// A code address (the caller's return address); the kernel symbolises
    /// it when printing.
    Code(usize),
}

impl CallSite {
    /// The location of whoever called the `#[track_caller]` function that
    /// calls this.
    #[track_caller]
    pub fn caller() -> CallSite {
        CallSite::Source(Location::caller())
    }

    /// Whether anything was recorded.
    pub fn is_known(&self) -> bool {
        !matches!(self, CallSite::Unknown)
    }
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallSite::Unknown => f.write_str("<unknown>"),
            CallSite::Source(loc) => write!(f, "{}:{}:{}", loc.file(), loc.line(), loc.column()),
            CallSite::Code(pc) => write!(f, "pc {pc:#x}"),
        }
    }
}
