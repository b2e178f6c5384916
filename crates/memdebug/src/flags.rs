//! Which checks a debug layer performs, and the `memdebug=` boot-argument
//! syntax that selects them.

use core::fmt;

bitflags::bitflags! {
    /// The checks a debug layer performs. The empty set makes the layer a
    /// pass-through that costs one predictable branch per operation.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct DebugFlags: u32 {
        /// Fill freed blocks with a poison pattern, keep them in a quarantine
        /// and check the pattern when they leave it (write after free).
        const POISON = 1 << 0;
        /// Fill new blocks with an alloc-poison pattern (uninitialised reads
        /// stand out).
        const ALLOC_POISON = 1 << 1;
        /// Surround byte-allocator objects with red zones checked on free and
        /// by `validate` (overflow and underflow).
        const REDZONE = 1 << 2;
        /// Record call site, time and sequence number of each allocation (and
        /// of the free that ends it).
        const TRACK = 1 << 3;
        /// Periodic leak watch over the tracked call sites (needs `TRACK`).
        const LEAKCHECK = 1 << 4;
    }
}

/// The names accepted by [`DebugFlags::parse`], in display order.
const NAMES: [(&str, DebugFlags); 5] = [
    ("poison", DebugFlags::POISON),
    ("allocpoison", DebugFlags::ALLOC_POISON),
    ("redzone", DebugFlags::REDZONE),
    ("track", DebugFlags::TRACK),
    ("leakcheck", DebugFlags::LEAKCHECK),
];

/// A `memdebug=` value that could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownFlag<'a>(pub &'a str);

impl fmt::Display for UnknownFlag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown memdebug flag `{}` (expected off, all, or a comma list of \
             poison, allocpoison, redzone, track, leakcheck)",
            self.0
        )
    }
}

impl DebugFlags {
    /// Parses `off`, `all`, or a comma-separated list of flag names
    /// (`poison,redzone,track,leakcheck`). `leakcheck` implies `track`.
    pub fn parse(text: &str) -> Result<DebugFlags, UnknownFlag<'_>> {
        let mut flags = DebugFlags::empty();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            flags |= match word {
                "off" | "none" => DebugFlags::empty(),
                "all" | "on" => DebugFlags::all(),
                _ => NAMES
                    .iter()
                    .find(|(name, _)| *name == word)
                    .map(|(_, flag)| *flag)
                    .ok_or(UnknownFlag(word))?,
            };
        }
        if flags.contains(DebugFlags::LEAKCHECK) {
            flags |= DebugFlags::TRACK;
        }
        Ok(flags)
    }
}

impl fmt::Display for DebugFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("off");
        }
        let mut first = true;
        for (name, flag) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn parses_lists_and_keywords() {
        assert_eq!(DebugFlags::parse("off"), Ok(DebugFlags::empty()));
        assert_eq!(DebugFlags::parse(""), Ok(DebugFlags::empty()));
        assert_eq!(DebugFlags::parse("all"), Ok(DebugFlags::all()));
        assert_eq!(
            DebugFlags::parse("poison, redzone"),
            Ok(DebugFlags::POISON | DebugFlags::REDZONE)
        );
        assert_eq!(
            DebugFlags::parse("leakcheck"),
            Ok(DebugFlags::LEAKCHECK | DebugFlags::TRACK)
        );
    }

    #[test]
    fn rejects_unknown_words_by_name() {
        let err = DebugFlags::parse("poison,redzoen").unwrap_err();
        assert_eq!(err, UnknownFlag("redzoen"));
        assert!(err.to_string().contains("`redzoen`"));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "off",
            "poison,redzone",
            "poison,allocpoison,redzone,track,leakcheck",
        ] {
            let flags = DebugFlags::parse(text).unwrap();
            assert_eq!(flags.to_string(), text);
        }
    }
}
