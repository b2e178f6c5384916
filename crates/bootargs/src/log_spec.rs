//! `log=`: the log level, optionally per target, in the spirit of Linux's
//! `loglevel=` and dynamic debug's per-module control:
//!
//! ```text
//!   log=debug                   every target at debug
//!   log=pages:trace             pages at trace, the rest at the default (info)
//!   log=warn,heap:debug,pages:trace
//! ```
//!
//! A spec is a comma list of items: a bare level sets the default (once),
//! `target:level` sets one target. A target is the name a log line shows
//! after its level (`INFO  pages: ...`); which names exist is the kernel's
//! business, so this parser only checks their spelling. Parsing borrows
//! from the text and never allocates.

use core::fmt;
use core::str::FromStr;

/// The six levels, least verbose first, as the `log` crate orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Off,
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A word that is none of the six level names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotALevel;

impl FromStr for Level {
    type Err = NotALevel;

    /// The level names, in any case (`LOG=DEBUG` works as `log=debug`).
    fn from_str(word: &str) -> Result<Self, NotALevel> {
        Level::ALL
            .into_iter()
            .find(|level| level.name().eq_ignore_ascii_case(word))
            .ok_or(NotALevel)
    }
}

/// Targets one spec can name.
pub const MAX_TARGETS: usize = 8;

/// Why a spec was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSpecError<'a> {
    /// `word` is not a level (alone, or after `target:`).
    BadLevel(&'a str),
    /// A target name that is empty or not `[A-Za-z0-9_]`.
    BadTarget(&'a str),
    /// An empty item (`log=info,` or `log=,x:debug`).
    EmptyItem,
    /// Two bare levels.
    TwoDefaults,
    /// More than [`MAX_TARGETS`] targets.
    TooManyTargets,
}

impl fmt::Display for LogSpecError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLevel(word) => write!(
                f,
                "`{word}` is not a level (off, error, warn, info, debug, trace)"
            ),
            Self::BadTarget(word) => {
                write!(f, "`{word}` is not a target name (letters, digits and _)")
            }
            Self::EmptyItem => f.write_str("empty item in the comma list"),
            Self::TwoDefaults => f.write_str("two default levels (one bare level at most)"),
            Self::TooManyTargets => write!(f, "more than {MAX_TARGETS} targets"),
        }
    }
}

/// A parsed `log=`: the default level and the targets' own levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSpec<'a> {
    pub default: Level,
    targets: [(&'a str, Level); MAX_TARGETS],
    count: usize,
}

impl<'a> LogSpec<'a> {
    /// Every target at `default`.
    pub const fn new(default: Level) -> Self {
        Self {
            default,
            targets: [("", Level::Off); MAX_TARGETS],
            count: 0,
        }
    }

    /// Parses `text`; without a bare level the default is `default`. A
    /// target named twice keeps its last level, as a repeated boot
    /// argument does.
    pub fn parse(text: &'a str, default: Level) -> Result<Self, LogSpecError<'a>> {
        let mut spec = Self::new(default);
        let mut default_given = false;
        for item in text.split(',') {
            if item.is_empty() {
                return Err(LogSpecError::EmptyItem);
            }
            match item.split_once(':') {
                None => {
                    if default_given {
                        return Err(LogSpecError::TwoDefaults);
                    }
                    spec.default = item.parse().map_err(|_| LogSpecError::BadLevel(item))?;
                    default_given = true;
                }
                Some((target, level)) => {
                    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_';
                    if target.is_empty() || !target.chars().all(valid) {
                        return Err(LogSpecError::BadTarget(target));
                    }
                    let level = level.parse().map_err(|_| LogSpecError::BadLevel(level))?;
                    spec.set(target, level)?;
                }
            }
        }
        Ok(spec)
    }

    fn set(&mut self, target: &'a str, level: Level) -> Result<(), LogSpecError<'a>> {
        if let Some(entry) = self.targets[..self.count]
            .iter_mut()
            .find(|(name, _)| *name == target)
        {
            entry.1 = level;
            return Ok(());
        }
        let slot = self
            .targets
            .get_mut(self.count)
            .ok_or(LogSpecError::TooManyTargets)?;
        *slot = (target, level);
        self.count += 1;
        Ok(())
    }

    /// The targets named, with their levels, in the order given.
    pub fn targets(&self) -> &[(&'a str, Level)] {
        &self.targets[..self.count]
    }

    /// The level of `target`: its own, else the default.
    pub fn level_of(&self, target: &str) -> Level {
        self.targets()
            .iter()
            .find(|(name, _)| *name == target)
            .map_or(self.default, |(_, level)| *level)
    }

    /// The most verbose level anything may log at.
    pub fn max(&self) -> Level {
        self.targets()
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, Level::max)
    }
}

impl fmt::Display for LogSpec<'_> {
    /// The spec in the syntax it is parsed from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.default)?;
        for (target, level) in self.targets() {
            write!(f, ",{target}:{level}")?;
        }
        Ok(())
    }
}
