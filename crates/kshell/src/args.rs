//! Words and numbers on a command line, with errors that say what was
//! wrong and what would have been accepted.

use core::fmt;

/// Why an argument was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// A required argument is missing.
    Missing(&'static str),
    /// The word is not a number (or overflows 64 bits).
    NotANumber(&'a str),
    /// The word is a number outside `min..=max`.
    OutOfRange { word: &'a str, min: u64, max: u64 },
    /// The word is not what the command accepts there; `expected` names
    /// what it does accept ("off, error, warn, info, debug or trace").
    Invalid {
        word: &'a str,
        expected: &'static str,
    },
    /// More words than the command takes.
    Unexpected(&'a str),
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Missing(what) => write!(f, "missing <{what}>"),
            ArgError::NotANumber(word) => write!(f, "`{word}` is not a number"),
            ArgError::OutOfRange { word, min, max } if min == max => {
                write!(f, "`{word}` is out of range: expected {min}")
            }
            ArgError::OutOfRange {
                word,
                min,
                max: u64::MAX,
            } => {
                write!(f, "`{word}` is out of range: expected {min} or more")
            }
            ArgError::OutOfRange { word, min, max } => {
                write!(f, "`{word}` is out of range: expected {min} to {max}")
            }
            ArgError::Invalid { word, expected } => write!(f, "`{word}`: expected {expected}"),
            ArgError::Unexpected(word) => write!(f, "unexpected argument `{word}`"),
        }
    }
}

/// Parses a number: decimal, `0x` hex or `0b` binary, `_` separators, and
/// an optional binary-unit suffix `K`, `M`, `G` (x1024^n).
pub fn parse_number(word: &str) -> Result<u64, ArgError<'_>> {
    let bad = ArgError::NotANumber(word);
    let (digits, scale) = match word.as_bytes().last() {
        Some(b'k' | b'K') => (&word[..word.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&word[..word.len() - 1], 1 << 20),
        Some(b'g' | b'G') if !word.starts_with("0x") => (&word[..word.len() - 1], 1 << 30),
        _ => (word, 1),
    };
    let (radix, digits) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, hex)
    } else if let Some(bin) = digits.strip_prefix("0b") {
        (2, bin)
    } else {
        (10, digits)
    };
    if digits.is_empty() || digits.starts_with('_') {
        return Err(bad);
    }
    let mut value: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let digit = c.to_digit(radix).ok_or(bad)?;
        value = value
            .checked_mul(radix as u64)
            .and_then(|v| v.checked_add(digit as u64))
            .ok_or(bad)?;
    }
    value.checked_mul(scale).ok_or(bad)
}

/// `word` as a number in `range`.
pub fn in_range(word: &str, range: core::ops::RangeInclusive<u64>) -> Result<u64, ArgError<'_>> {
    let value = parse_number(word)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ArgError::OutOfRange {
            word,
            min: *range.start(),
            max: *range.end(),
        })
    }
}

/// The words after the command name.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    words: core::str::SplitAsciiWhitespace<'a>,
}

impl<'a> Args<'a> {
    pub fn new(text: &'a str) -> Self {
        Args {
            words: text.split_ascii_whitespace(),
        }
    }

    /// The next word, if any.
    pub fn next_word(&mut self) -> Option<&'a str> {
        self.words.next()
    }

    /// The next word, required.
    pub fn word(&mut self, what: &'static str) -> Result<&'a str, ArgError<'a>> {
        self.next_word().ok_or(ArgError::Missing(what))
    }

    /// The next word as a number, required.
    pub fn number(&mut self, what: &'static str) -> Result<u64, ArgError<'a>> {
        parse_number(self.word(what)?)
    }

    /// The next word as a number if present, else `default`.
    pub fn number_or(&mut self, default: u64) -> Result<u64, ArgError<'a>> {
        self.next_word().map_or(Ok(default), parse_number)
    }

    /// The next word as a number in `range`, required.
    pub fn number_in(
        &mut self,
        what: &'static str,
        range: core::ops::RangeInclusive<u64>,
    ) -> Result<u64, ArgError<'a>> {
        let word = self.word(what)?;
        in_range(word, range)
    }

    /// The next word as a number in `range` if present, else `default`.
    pub fn number_in_or(
        &mut self,
        default: u64,
        range: core::ops::RangeInclusive<u64>,
    ) -> Result<u64, ArgError<'a>> {
        self.next_word()
            .map_or(Ok(default), |word| in_range(word, range))
    }

    /// The next word, which must be one of `choices` if present (`expected`
    /// lists them for the error).
    pub fn choice(
        &mut self,
        choices: &[&str],
        expected: &'static str,
    ) -> Result<Option<&'a str>, ArgError<'a>> {
        match self.next_word() {
            None => Ok(None),
            Some(word) if choices.contains(&word) => Ok(Some(word)),
            Some(word) => Err(ArgError::Invalid { word, expected }),
        }
    }

    /// Fails if words remain.
    pub fn end(&mut self) -> Result<(), ArgError<'a>> {
        self.next_word()
            .map_or(Ok(()), |word| Err(ArgError::Unexpected(word)))
    }
}
