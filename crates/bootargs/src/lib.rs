//! The kernel command line (`/chosen/bootargs`, QEMU `-append`) as a list of
//! arguments: `key=value` pairs and bare `flag`s separated by whitespace,
//! with double-quoted values for spaces (`cmds="meminfo; shutdown"`).
//!
//! Parsing borrows from the line and never allocates, so it runs before the
//! kernel has a heap. When a key repeats, the last occurrence wins, as on
//! Linux.
//!
//! The grammar keeps `key=` as an empty value, but the lookups of a value
//! ([`BootArgs::value`], [`BootArgs::parse`]) refuse it: no key takes an
//! empty value, and reading it as "absent" or "off" would let a typo boot
//! with a setting other than the one asked for.
//!
//! [`LogSpec`] parses the value of `log=`: a level, optionally per target.

#![no_std]

#[cfg(test)]
extern crate std;

use core::convert::Infallible;
use core::fmt;
use core::str::FromStr;

mod log_spec;
pub use log_spec::{Level, LogSpec, LogSpecError, MAX_TARGETS, NotALevel};

/// One argument: `key` alone is a flag (`value == None`); `key=` gives an
/// empty value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arg<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
}

/// A syntax error, with the byte offset into the line where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntaxError {
    /// A `"` that opens a value is never closed.
    UnterminatedQuote { offset: usize },
    /// An argument that starts with `=`.
    EmptyKey { offset: usize },
    /// A `"` in a key, or in a value that did not start with one.
    StrayQuote { offset: usize },
    /// A closing `"` followed by something other than whitespace.
    TrailingAfterQuote { offset: usize },
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnterminatedQuote { offset } => write!(f, "unterminated quote at byte {offset}"),
            Self::EmptyKey { offset } => write!(f, "argument without a name at byte {offset}"),
            Self::StrayQuote { offset } => write!(f, "unexpected '\"' at byte {offset}"),
            Self::TrailingAfterQuote { offset } => {
                write!(f, "text after a closing quote at byte {offset}")
            }
        }
    }
}

/// Why a typed lookup failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgError<'a, E> {
    Syntax(SyntaxError),
    /// `key` was given as a bare flag but needs a value.
    MissingValue {
        key: &'a str,
    },
    /// `key=` or `key=""`.
    EmptyValue {
        key: &'a str,
    },
    /// `key=value` where `value` does not parse.
    BadValue {
        key: &'a str,
        value: &'a str,
        error: E,
    },
}

impl<E: fmt::Display> fmt::Display for ArgError<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(error) => write!(f, "bad boot arguments: {error}"),
            Self::MissingValue { key } => write!(f, "boot argument `{key}` needs a value"),
            Self::EmptyValue { key } => write!(f, "boot argument `{key}=` has an empty value"),
            Self::BadValue { key, value, error } => {
                write!(f, "boot argument `{key}={value}`: {error}")
            }
        }
    }
}

impl<'a> ArgError<'a, Infallible> {
    /// The same error as one of a lookup whose values fail with `E`.
    pub fn widen<E>(self) -> ArgError<'a, E> {
        match self {
            Self::Syntax(error) => ArgError::Syntax(error),
            Self::MissingValue { key } => ArgError::MissingValue { key },
            Self::EmptyValue { key } => ArgError::EmptyValue { key },
            Self::BadValue { error, .. } => match error {},
        }
    }
}

/// A borrowed command line.
#[derive(Clone, Copy, Debug)]
pub struct BootArgs<'a> {
    line: &'a str,
}

impl<'a> BootArgs<'a> {
    pub const fn new(line: &'a str) -> Self {
        Self { line }
    }

    pub const fn as_str(&self) -> &'a str {
        self.line
    }

    /// The arguments in order; a syntax error ends the iteration after it is
    /// yielded.
    pub fn iter(&self) -> Args<'a> {
        Args {
            line: self.line,
            pos: 0,
            failed: false,
        }
    }

    /// The first syntax error of the line, if any.
    pub fn validate(&self) -> Result<(), SyntaxError> {
        self.iter().try_for_each(|arg| arg.map(drop))
    }

    /// The last occurrence of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Arg<'a>>, SyntaxError> {
        let mut found = None;
        for arg in self.iter() {
            let arg = arg?;
            if arg.key == key {
                found = Some(arg);
            }
        }
        Ok(found)
    }

    /// True if `key` appears, as a flag or with a value.
    pub fn has(&self, key: &str) -> Result<bool, SyntaxError> {
        Ok(self.get(key)?.is_some())
    }

    /// The value of `key`; `Ok(None)` if absent. A bare flag or an empty
    /// value is an error: every lookup of a value goes through here.
    pub fn value(&self, key: &str) -> Result<Option<&'a str>, ArgError<'a, Infallible>> {
        let Some(arg) = self.get(key).map_err(ArgError::Syntax)? else {
            return Ok(None);
        };
        match arg.value {
            None => Err(ArgError::MissingValue { key: arg.key }),
            Some("") => Err(ArgError::EmptyValue { key: arg.key }),
            Some(value) => Ok(Some(value)),
        }
    }

    /// The value of `key` parsed as `T`; `Ok(None)` if absent.
    pub fn parse<T: FromStr>(&self, key: &'a str) -> Result<Option<T>, ArgError<'a, T::Err>> {
        let Some(value) = self.value(key).map_err(ArgError::widen)? else {
            return Ok(None);
        };
        value
            .parse()
            .map(Some)
            .map_err(|error| ArgError::BadValue { key, value, error })
    }
}

/// Iterator over the arguments of a [`BootArgs`].
#[derive(Clone, Debug)]
pub struct Args<'a> {
    line: &'a str,
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for Args<'a> {
    type Item = Result<Arg<'a>, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = self.next_arg()?;
        self.failed = result.is_err();
        Some(result)
    }
}

impl<'a> Args<'a> {
    fn next_arg(&mut self) -> Option<Result<Arg<'a>, SyntaxError>> {
        let bytes = self.line.as_bytes();
        while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        if self.pos == bytes.len() {
            return None;
        }
        let start = self.pos;
        let token_end = |from: usize| {
            bytes[from..]
                .iter()
                .position(u8::is_ascii_whitespace)
                .map_or(bytes.len(), |n| from + n)
        };
        let key_end = bytes[start..]
            .iter()
            .position(|&b| b == b'=' || b.is_ascii_whitespace())
            .map_or(bytes.len(), |n| start + n);
        if let Some(quote) = bytes[start..key_end].iter().position(|&b| b == b'"') {
            return Some(Err(SyntaxError::StrayQuote {
                offset: start + quote,
            }));
        }
        if key_end == start {
            return Some(Err(SyntaxError::EmptyKey { offset: start }));
        }
        let key = &self.line[start..key_end];
        if key_end == bytes.len() || bytes[key_end] != b'=' {
            self.pos = key_end;
            return Some(Ok(Arg { key, value: None }));
        }
        let value_start = key_end + 1;
        if bytes.get(value_start) == Some(&b'"') {
            let Some(len) = bytes[value_start + 1..].iter().position(|&b| b == b'"') else {
                return Some(Err(SyntaxError::UnterminatedQuote {
                    offset: value_start,
                }));
            };
            let close = value_start + 1 + len;
            if close + 1 < bytes.len() && !bytes[close + 1].is_ascii_whitespace() {
                return Some(Err(SyntaxError::TrailingAfterQuote { offset: close + 1 }));
            }
            self.pos = close + 1;
            return Some(Ok(Arg {
                key,
                value: Some(&self.line[value_start + 1..close]),
            }));
        }
        let value_end = token_end(value_start);
        if let Some(quote) = bytes[value_start..value_end]
            .iter()
            .position(|&b| b == b'"')
        {
            return Some(Err(SyntaxError::StrayQuote {
                offset: value_start + quote,
            }));
        }
        self.pos = value_end;
        Some(Ok(Arg {
            key,
            value: Some(&self.line[value_start..value_end]),
        }))
    }
}

#[cfg(test)]
mod log_spec_tests;
#[cfg(test)]
mod tests;
