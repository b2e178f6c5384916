//! The kernel's boot arguments (`/chosen/bootargs`, i.e. QEMU `-append`):
//! which keys exist, their defaults, and what a bad value does (a precise
//! diagnostic and a failed boot, never a silent default).

use crate::memdiag::badmem::BootBadPages;
use bootargs::{ArgError, BootArgs};
use core::fmt;
use faultinject::FaultConfig;
use log::LevelFilter;

/// Every key the kernel understands, with its one-line help.
pub const KNOWN_ARGS: &[(&str, &str)] = &[
    (
        "log",
        "log level: off, error, warn, info (default), debug, trace",
    ),
    (
        "timer_hz",
        "timer interrupts per second on every hart (default 100, 0 = off)",
    ),
    ("pagealloc", "page allocator: buddy (default) or bitmap"),
    (
        "alloc",
        "kernel heap: slab (default: slab classes over TLSF), tlsf or buddy",
    ),
    (
        "cmds",
        "monitor: run this `;`-separated command list, then power off",
    ),
    (
        "memdebug",
        "memory debugging: off (default), all, or a comma list of poison, allocpoison, \
         redzone, track, leakcheck",
    ),
    (
        "memdebug.track",
        "with memdebug=track: record call sites of byte allocations of at least this many \
         bytes (default 256; 0 in the test build)",
    ),
    (
        "memdebug.leakwatch",
        "with memdebug=leakcheck: boot-hart timer ticks between two leak checks (default 100)",
    ),
    (
        "memdebug.kfence",
        "with memdebug on: every N-th byte allocation up to a page sits against an unmapped \
         guard page (default 0 = none)",
    ),
    (
        "fail_page_alloc",
        "fault injection in the page allocator: <interval>,<probability%>,<space>,<times>[,<min_order>] (Linux syntax)",
    ),
    (
        "fail_page_alloc.filter",
        "fail only page requests whose requester name contains this (heap, pagetable, pages)",
    ),
    (
        "failslab",
        "fault injection in the kernel heap's small blocks, same syntax as fail_page_alloc",
    ),
    (
        "failslab.filter",
        "fail only heap requests whose cache name contains this (kmalloc-64, tlsf, buddy)",
    ),
    (
        "badmem",
        "physical pages to take out of service at boot: 0x84000000,0x84001000 (at most 16)",
    ),
    (
        "stress",
        "test build: run the stress workload on every hart for this many seconds instead of the tests",
    ),
    (
        "stress.seed",
        "the stress workload's base seed, decimal or 0x-hex (default 0x57e55eed; xtask: SEED=)",
    ),
    (
        "stress.free",
        "test build: hold all but this many free pages during the stress run (near exhaustion)",
    ),
    (
        "ktest.filter",
        "test build: run only tests whose name contains the text",
    ),
    (
        "ktest.crash",
        "test build: run one deliberately crashing test (panic|trap|oom|rodata|lockorder)",
    ),
    (
        "ktest.harts",
        "test build: hart count QEMU was given (-smp)",
    ),
    ("ktest.mem", "test build: RAM bytes QEMU was given (-m)"),
];

/// The parsed arguments.
#[derive(Clone, Copy, Debug)]
pub struct KernelArgs {
    pub log: LevelFilter,
    pub timer_hz: u32,
    pub page_allocator: crate::memory::pages::PageAllocatorKind,
    pub heap: crate::memory::heap::HeapKind,
    /// `cmds=`: the monitor runs these commands instead of prompting.
    #[cfg_attr(
        feature = "ktest",
        expect(dead_code, reason = "the test build has no shell")
    )]
    pub cmds: Option<&'static str>,
    pub memdebug: crate::memdiag::debug::DebugArgs,
    /// `fail_page_alloc=` (with `fail_page_alloc.filter=`).
    pub fail_page_alloc: Option<FaultConfig>,
    /// `failslab=` (with `failslab.filter=`).
    pub failslab: Option<FaultConfig>,
    pub badmem: BootBadPages,
    /// `stress=SECONDS` (test build).
    #[cfg(feature = "ktest")]
    pub stress_seconds: Option<u64>,
    /// `stress.seed=` (test build).
    #[cfg(feature = "ktest")]
    pub stress_seed: Option<u64>,
    /// `stress.free=PAGES` (test build).
    #[cfg(feature = "ktest")]
    pub stress_free_pages: Option<usize>,
    #[cfg(feature = "ktest")]
    pub test: crate::ktest::TestArgs,
}

/// A boot argument the kernel refuses.
pub struct BadArgs(ArgErrorText);

enum ArgErrorText {
    Syntax(bootargs::SyntaxError),
    Value {
        key: &'static str,
        value: &'static str,
        expected: &'static str,
    },
    MissingValue {
        key: &'static str,
        expected: &'static str,
    },
    EmptyValue {
        key: &'static str,
        expected: &'static str,
    },
}

impl fmt::Display for BadArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ArgErrorText::Syntax(error) => write!(f, "bad boot arguments: {error}"),
            ArgErrorText::Value {
                key,
                value,
                expected,
            } => {
                write!(f, "boot argument `{key}={value}`: expected {expected}")
            }
            ArgErrorText::MissingValue { key, expected } => {
                write!(
                    f,
                    "boot argument `{key}` needs a value; expected {expected}"
                )
            }
            ArgErrorText::EmptyValue { key, expected } => {
                write!(
                    f,
                    "boot argument `{key}=` has an empty value; expected {expected}"
                )
            }
        }
    }
}

/// The value of `key`, `Ok(None)` if absent. Every value is read here, so
/// a bare `key` or an empty `key=` is refused alike for every key, with
/// `expected` saying what the key takes.
fn value_of(
    args: &BootArgs<'static>,
    key: &'static str,
    expected: &'static str,
) -> Result<Option<&'static str>, BadArgs> {
    args.value(key).map_err(|error| {
        BadArgs(match error {
            ArgError::Syntax(error) => ArgErrorText::Syntax(error),
            ArgError::MissingValue { .. } => ArgErrorText::MissingValue { key, expected },
            ArgError::EmptyValue { .. } => ArgErrorText::EmptyValue { key, expected },
            ArgError::BadValue { error, .. } => match error {},
        })
    })
}

/// The value of `key` converted by `convert`, whose `None` means the value
/// is not one of `expected`.
fn parsed<T>(
    args: &BootArgs<'static>,
    key: &'static str,
    expected: &'static str,
    convert: impl FnOnce(&'static str) -> Option<T>,
) -> Result<Option<T>, BadArgs> {
    let Some(value) = value_of(args, key, expected)? else {
        return Ok(None);
    };
    convert(value).map(Some).ok_or(BadArgs(ArgErrorText::Value {
        key,
        value,
        expected,
    }))
}

/// The value of `key` through the type's `FromStr` (a number, or a value
/// picked from a fixed set of names).
fn typed<T: core::str::FromStr>(
    args: &BootArgs<'static>,
    key: &'static str,
    expected: &'static str,
) -> Result<Option<T>, BadArgs> {
    parsed(args, key, expected, |value| value.parse().ok())
}

/// The tick rate without `timer_hz=`.
pub const DEFAULT_TIMER_HZ: u32 = 100;
/// Faster ticks would leave the harts little time for anything else.
pub const MAX_TIMER_HZ: u32 = 10_000;

/// Parses `line`; unknown keys are left for [`unknown_keys`] to report.
pub fn parse(line: &'static str) -> Result<KernelArgs, BadArgs> {
    let args = BootArgs::new(line);
    args.validate()
        .map_err(|error| BadArgs(ArgErrorText::Syntax(error)))?;
    Ok(KernelArgs {
        log: typed(&args, "log", "off, error, warn, info, debug or trace")?
            .unwrap_or(LevelFilter::Info),
        timer_hz: parsed(
            &args,
            "timer_hz",
            "a rate in Hz from 0 (off) to 10000",
            |value| value.parse().ok().filter(|&hz| hz <= MAX_TIMER_HZ),
        )?
        .unwrap_or(DEFAULT_TIMER_HZ),
        page_allocator: typed(&args, "pagealloc", "buddy or bitmap")?.unwrap_or_default(),
        heap: typed(&args, "alloc", "slab, tlsf or buddy")?.unwrap_or_default(),
        cmds: value_of(&args, "cmds", "a `;`-separated list of monitor commands")?,
        memdebug: memdebug_args(&args)?,
        fail_page_alloc: fault_config(&args, "fail_page_alloc", "fail_page_alloc.filter")?,
        failslab: fault_config(&args, "failslab", "failslab.filter")?,
        badmem: badmem(&args)?,
        #[cfg(feature = "ktest")]
        stress_seconds: typed(&args, "stress", "a duration in whole seconds")?,
        #[cfg(feature = "ktest")]
        stress_seed: seed(&args, "stress.seed")?,
        #[cfg(feature = "ktest")]
        stress_free_pages: typed(&args, "stress.free", "a number of pages")?,
        #[cfg(feature = "ktest")]
        test: test_args(&args)?,
    })
}

/// `memdebug=` (the crate's flag syntax) and its companions.
fn memdebug_args(args: &BootArgs<'static>) -> Result<crate::memdiag::debug::DebugArgs, BadArgs> {
    let mut debug = crate::memdiag::debug::DebugArgs::default();
    if let Some(flags) = parsed(
        args,
        "memdebug",
        "off, all, or a comma list of poison, allocpoison, redzone, track, leakcheck",
        |value| memdebug::DebugFlags::parse(value).ok(),
    )? {
        debug.flags = flags;
    }
    if let Some(bytes) = typed::<usize>(args, "memdebug.track", "a size in bytes")? {
        debug.track_threshold = bytes;
    }
    if let Some(ticks) = typed::<u32>(args, "memdebug.leakwatch", "a number of timer ticks")? {
        debug.leak_period_ticks = ticks;
    }
    if let Some(interval) = typed::<usize>(args, "memdebug.kfence", "a sampling interval")? {
        debug.kfence_interval = interval;
    }
    Ok(debug)
}

/// A seed: decimal or `0x` hexadecimal.
#[cfg(feature = "ktest")]
fn seed(args: &BootArgs<'static>, key: &'static str) -> Result<Option<u64>, BadArgs> {
    parsed(
        args,
        key,
        "a seed, decimal or 0x-hex",
        |value| match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => value.parse().ok(),
        },
    )
}

/// `fail_page_alloc=` / `failslab=` in Linux's fault-attr boot syntax,
/// plus the name filter from its `.filter` key.
fn fault_config(
    args: &BootArgs<'static>,
    key: &'static str,
    filter_key: &'static str,
) -> Result<Option<FaultConfig>, BadArgs> {
    let filter = value_of(
        args,
        filter_key,
        "text the requester or cache name must contain",
    )?;
    let config = parsed(
        args,
        key,
        "<interval>,<probability>,<space>,<times>[,<min_order>] as in Linux (e.g. 1,10,0,-1: 10% of calls, no limit)",
        |value| FaultConfig::parse(value).ok(),
    )?;
    match (config, filter) {
        (Some(config), filter) => Ok(Some(FaultConfig {
            filter: filter.unwrap_or(""),
            ..config
        })),
        (None, Some(value)) => Err(BadArgs(ArgErrorText::Value {
            key: filter_key,
            value,
            expected: "to come with its fault-injection setting (fail_page_alloc= or failslab=)",
        })),
        (None, None) => Ok(None),
    }
}

fn badmem(args: &BootArgs<'static>) -> Result<BootBadPages, BadArgs> {
    let expected = "comma-separated physical addresses (0x84000000,...), at most 16";
    match value_of(args, "badmem", expected)? {
        None => Ok(BootBadPages::default()),
        Some(value) => BootBadPages::parse(value).map_err(|expected| {
            BadArgs(ArgErrorText::Value {
                key: "badmem",
                value,
                expected,
            })
        }),
    }
}

#[cfg(feature = "ktest")]
fn test_args(args: &BootArgs<'static>) -> Result<crate::ktest::TestArgs, BadArgs> {
    use crate::ktest::Crash;
    let crash = parsed(
        args,
        "ktest.crash",
        "panic, trap, oom, rodata or lockorder",
        |value| match value {
            "panic" => Some(Crash::Panic),
            "trap" => Some(Crash::Trap),
            "oom" => Some(Crash::Oom),
            "rodata" => Some(Crash::Rodata),
            "lockorder" => Some(Crash::LockOrder),
            _ => None,
        },
    )?;
    Ok(crate::ktest::TestArgs {
        filter: value_of(args, "ktest.filter", "text a test name must contain")?,
        crash,
        expect_harts: typed(args, "ktest.harts", "a hart count")?,
        expect_mem: typed(args, "ktest.mem", "a byte count")?,
    })
}

/// Keys of `line` the kernel does not know, for a warning each.
pub fn unknown_keys(line: &'static str) -> impl Iterator<Item = &'static str> {
    BootArgs::new(line)
        .iter()
        .filter_map(Result::ok)
        .map(|arg| arg.key)
        .filter(|key| !KNOWN_ARGS.iter().any(|(known, _)| known == key))
}

#[cfg(feature = "ktest")]
mod tests {
    use super::*;
    use crate::ktest::prelude::*;

    /// `key=` for every known key, spelt out because `parse` wants a
    /// `'static` line; the first test checks none is missing.
    const EMPTY_VALUES: &[&str] = &[
        "log=",
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
            kassert_eq!(args.log, LevelFilter::Warn);
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
            Ok(())
        }
    }
}
