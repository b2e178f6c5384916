//! The kernel's boot arguments (`/chosen/bootargs`, i.e. QEMU `-append`):
//! which keys exist, their defaults, and what a bad value does (a precise
//! diagnostic and a failed boot, never a silent default).

use crate::memory::badmem::BootBadPages;
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
        "ktest.filter",
        "test build: run only tests whose name contains the text",
    ),
    (
        "ktest.crash",
        "test build: run one deliberately crashing test (panic|trap|oom|rodata)",
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
    pub memdebug: crate::memory::debug::DebugArgs,
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
            ArgErrorText::MissingValue { key } => write!(f, "boot argument `{key}` needs a value"),
        }
    }
}

fn typed<T: core::str::FromStr>(
    args: &BootArgs<'static>,
    key: &'static str,
    expected: &'static str,
) -> Result<Option<T>, BadArgs> {
    args.parse::<T>(key).map_err(|error| {
        BadArgs(match error {
            ArgError::Syntax(error) => ArgErrorText::Syntax(error),
            ArgError::MissingValue { key } => ArgErrorText::MissingValue { key },
            ArgError::BadValue { key, value, .. } => ArgErrorText::Value {
                key,
                value,
                expected,
            },
        })
    })
}

/// The tick rate without `timer_hz=`.
pub const DEFAULT_TIMER_HZ: u32 = 100;
/// Faster ticks would leave the harts little time for anything else.
pub const MAX_TIMER_HZ: u32 = 10_000;

/// A value picked from a fixed set of names (the type's `FromStr`).
fn choice<T: core::str::FromStr>(
    args: &BootArgs<'static>,
    key: &'static str,
    expected: &'static str,
) -> Result<Option<T>, BadArgs> {
    match args
        .get(key)
        .map_err(|e| BadArgs(ArgErrorText::Syntax(e)))?
    {
        None => Ok(None),
        Some(arg) => match arg.value {
            None => Err(BadArgs(ArgErrorText::MissingValue { key: arg.key })),
            Some(value) => value.parse().map(Some).map_err(|_| {
                BadArgs(ArgErrorText::Value {
                    key: arg.key,
                    value,
                    expected,
                })
            }),
        },
    }
}

/// Parses `line`; unknown keys are left for [`unknown_keys`] to report.
pub fn parse(line: &'static str) -> Result<KernelArgs, BadArgs> {
    let args = BootArgs::new(line);
    args.validate()
        .map_err(|error| BadArgs(ArgErrorText::Syntax(error)))?;
    let log = typed::<LevelFilter>(&args, "log", "off, error, warn, info, debug or trace")?;
    let timer_hz = typed::<u32>(&args, "timer_hz", "a rate in Hz (0 = off)")?;
    if timer_hz.is_some_and(|hz| hz > MAX_TIMER_HZ) {
        return Err(BadArgs(ArgErrorText::Value {
            key: "timer_hz",
            value: args
                .get("timer_hz")
                .ok()
                .flatten()
                .and_then(|a| a.value)
                .unwrap_or(""),
            expected: "at most 10000 Hz",
        }));
    }
    Ok(KernelArgs {
        log: log.unwrap_or(LevelFilter::Info),
        timer_hz: timer_hz.unwrap_or(DEFAULT_TIMER_HZ),
        page_allocator: choice(&args, "pagealloc", "buddy or bitmap")?.unwrap_or_default(),
        heap: choice(&args, "alloc", "slab, tlsf or buddy")?.unwrap_or_default(),
        cmds: value_of(&args, "cmds")?,
        memdebug: memdebug_args(&args)?,
        fail_page_alloc: fault_config(&args, "fail_page_alloc", "fail_page_alloc.filter")?,
        failslab: fault_config(&args, "failslab", "failslab.filter")?,
        badmem: badmem(&args)?,
        #[cfg(feature = "ktest")]
        stress_seconds: typed(&args, "stress", "a duration in whole seconds")?,
        #[cfg(feature = "ktest")]
        stress_seed: seed(&args, "stress.seed")?,
        #[cfg(feature = "ktest")]
        test: test_args(&args)?,
    })
}

/// `memdebug=` (the crate's flag syntax) and its companions.
fn memdebug_args(args: &BootArgs<'static>) -> Result<crate::memory::debug::DebugArgs, BadArgs> {
    let mut parsed = crate::memory::debug::DebugArgs::default();
    if let Some(arg) = args
        .get("memdebug")
        .map_err(|e| BadArgs(ArgErrorText::Syntax(e)))?
    {
        let value = arg
            .value
            .ok_or(BadArgs(ArgErrorText::MissingValue { key: arg.key }))?;
        parsed.flags = memdebug::DebugFlags::parse(value).map_err(|_| {
            BadArgs(ArgErrorText::Value {
                key: arg.key,
                value,
                expected: "off, all, or a comma list of poison, allocpoison, redzone, track, leakcheck",
            })
        })?;
    }
    if let Some(bytes) = typed::<usize>(args, "memdebug.track", "a size in bytes")? {
        parsed.track_threshold = bytes;
    }
    if let Some(ticks) = typed::<u32>(args, "memdebug.leakwatch", "a number of timer ticks")? {
        parsed.leak_period_ticks = ticks;
    }
    if let Some(interval) = typed::<usize>(args, "memdebug.kfence", "a sampling interval")? {
        parsed.kfence_interval = interval;
    }
    Ok(parsed)
}

/// The value of `key`, if given (a key without value is an error).
fn value_of(args: &BootArgs<'static>, key: &'static str) -> Result<Option<&'static str>, BadArgs> {
    match args
        .get(key)
        .map_err(|e| BadArgs(ArgErrorText::Syntax(e)))?
    {
        None => Ok(None),
        Some(arg) => arg
            .value
            .map(Some)
            .ok_or(BadArgs(ArgErrorText::MissingValue { key: arg.key })),
    }
}

/// A seed: decimal or `0x` hexadecimal.
#[cfg(feature = "ktest")]
fn seed(args: &BootArgs<'static>, key: &'static str) -> Result<Option<u64>, BadArgs> {
    let Some(value) = value_of(args, key)? else {
        return Ok(None);
    };
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    parsed.map(Some).map_err(|_| {
        BadArgs(ArgErrorText::Value {
            key,
            value,
            expected: "a seed, decimal or 0x-hex",
        })
    })
}

/// `fail_page_alloc=` / `failslab=` in Linux's fault-attr boot syntax,
/// plus the name filter from its `.filter` key.
fn fault_config(
    args: &BootArgs<'static>,
    key: &'static str,
    filter_key: &'static str,
) -> Result<Option<FaultConfig>, BadArgs> {
    let filter = value_of(args, filter_key)?;
    let Some(value) = value_of(args, key)? else {
        if let Some(value) = filter {
            return Err(BadArgs(ArgErrorText::Value {
                key: filter_key,
                value,
                expected: "to come with its fault-injection setting (fail_page_alloc= or failslab=)",
            }));
        }
        return Ok(None);
    };
    let config = FaultConfig::parse(value).map_err(|_| {
        BadArgs(ArgErrorText::Value {
            key,
            value,
            expected: "<interval>,<probability>,<space>,<times>[,<min_order>] as in Linux (e.g. 1,10,0,-1: 10% of calls, no limit)",
        })
    })?;
    Ok(Some(FaultConfig {
        filter: filter.unwrap_or(""),
        ..config
    }))
}

fn badmem(args: &BootArgs<'static>) -> Result<BootBadPages, BadArgs> {
    match value_of(args, "badmem")? {
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
    let crash = match args
        .get("ktest.crash")
        .map_err(|e| BadArgs(ArgErrorText::Syntax(e)))?
    {
        None => None,
        Some(arg) => match arg.value {
            Some("panic") => Some(Crash::Panic),
            Some("trap") => Some(Crash::Trap),
            Some("oom") => Some(Crash::Oom),
            Some("rodata") => Some(Crash::Rodata),
            Some(value) => {
                return Err(BadArgs(ArgErrorText::Value {
                    key: arg.key,
                    value,
                    expected: "panic, trap, oom or rodata",
                }));
            }
            None => return Err(BadArgs(ArgErrorText::MissingValue { key: arg.key })),
        },
    };
    Ok(crate::ktest::TestArgs {
        filter: args
            .get("ktest.filter")
            .ok()
            .flatten()
            .and_then(|arg| arg.value),
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
