//! Human-readable byte counts for the boot log ("128 MiB", "1.5 KiB"), and
//! the right-alignment helpers that `Size` and the monitor's columns share.

use core::fmt;

/// Formats a byte count with a binary unit and at most one decimal.
#[derive(Clone, Copy, Debug)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut unit = 0;
        let mut scale = 1u64;
        while unit + 1 < UNITS.len() && self.0 >= scale * 1024 {
            scale *= 1024;
            unit += 1;
        }
        let whole = self.0 / scale;
        let tenths = (self.0 % scale) * 10 / scale;
        let text_len = if tenths == 0 { 0 } else { 2 };
        pad_to_width(f, digits(whole) + text_len + 1 + UNITS[unit].len())?;
        if tenths == 0 {
            write!(f, "{whole} {}", UNITS[unit])
        } else {
            write!(f, "{whole}.{tenths} {}", UNITS[unit])
        }
    }
}

/// Writes the spaces that right-align `text_len` characters in `f`'s
/// width (none without one): for `Display`s that write their text in
/// pieces, without allocating.
pub fn pad_to_width(f: &mut fmt::Formatter<'_>, text_len: usize) -> fmt::Result {
    for _ in text_len..f.width().unwrap_or(0) {
        f.write_str(" ")?;
    }
    Ok(())
}

/// Decimal digits of `n`.
pub fn digits(mut n: u64) -> usize {
    let mut count = 1;
    while n >= 10 {
        n /= 10;
        count += 1;
    }
    count
}
