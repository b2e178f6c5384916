//! In-kernel tests of the boot arguments: every key refuses an empty
//! value, and the values given parse as before.

use super::*;
use crate::ktest::prelude::*;

/// `key=` for every known key, spelt out because `parse` wants a
/// `'static` line; the first test checks none is missing.
const EMPTY_VALUES: &[&str] = &[
    "log=",
    "printk_ratelimit=",
    "printk_ratelimit_burst=",
    "timer_hz=",
    "pagealloc=",
    "alloc=",
    "cmds=",
    "memdebug=",
    "memdebug.track=",
    "memdebug.leakwatch=",
    "memdebug.kfence=",
    "fail_page_alloc=",
    "fail_page_alloc.filter=",
    "failslab=",
    "failslab.filter=",
    "badmem=",
    "stress=",
    "stress.seed=",
    "stress.free=",
    "ktest.filter=",
    "ktest.crash=",
    "ktest.harts=",
    "ktest.mem=",
];

ktest! {
    fn an_empty_value_stops_the_boot_for_every_key() {
        for (key, _) in KNOWN_ARGS {
            kassert!(
                EMPTY_VALUES.iter().any(|arg| arg.strip_suffix('=') == Some(*key)),
                "`{key}=` is not checked"
            );
        }
        let every_key = EMPTY_VALUES.iter().map(|arg| (*arg, arg.trim_end_matches('=')));
        for (arg, key) in every_key.chain([(r#"alloc="""#, "alloc"), ("log=info log=", "log")]) {
            let Err(error) = parse(arg) else {
                return Err(crate::ktest::Failure::new(format_args!("`{arg}` accepted")));
            };
            let text = alloc::format!("{error}");
            let start = alloc::format!("boot argument `{key}=` has an empty value; expected ");
            kassert!(text.starts_with(&start) && text.len() > start.len(), "`{arg}`: {text}");
        }
        Ok(())
    }
}

ktest! {
    fn flags_and_given_values_parse_as_before() {
        let args = parse("quiet alloc=tlsf memdebug=off log=warn")
            .map_err(|e| crate::ktest::Failure::new(format_args!("refused: {e}")))?;
        kassert_eq!(args.heap, crate::memory::heap::HeapKind::Tlsf);
        kassert_eq!(args.log.default, Level::Warn);
        kassert!(args.memdebug.flags.is_empty());
        kassert_eq!(args.timer_hz, DEFAULT_TIMER_HZ);
        let Err(error) = parse("memdebug") else {
            return Err(crate::ktest::Failure::new(format_args!("`memdebug` accepted")));
        };
        kassert!(alloc::format!("{error}").starts_with("boot argument `memdebug` needs a value; expected off, all"), "{error}");
        let Err(error) = parse("timer_hz=20000") else {
            return Err(crate::ktest::Failure::new(format_args!("`timer_hz=20000` accepted")));
        };
        kassert_eq!(alloc::format!("{error}").as_str(), "boot argument `timer_hz=20000`: expected a rate in Hz from 0 (off) to 10000");
        let args = parse("log=warn,pages:trace printk_ratelimit=0")
            .map_err(|e| crate::ktest::Failure::new(format_args!("refused: {e}")))?;
        kassert_eq!(args.log.level_of("pages"), Level::Trace);
        kassert_eq!(args.ratelimit_seconds, 0);
        kassert_eq!(args.ratelimit_burst, crate::memdiag::ratelimit::DEFAULT_BURST);
        let Err(error) = parse("log=info,pagez:debug") else {
            return Err(crate::ktest::Failure::new(format_args!("an unknown log target was accepted")));
        };
        kassert!(alloc::format!("{error}").starts_with("boot argument `log=info,pagez:debug`: `pagez` is not a log target; the targets are rvos, args"), "{error}");
        Ok(())
    }
}
