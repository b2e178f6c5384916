//! The kernel's boot arguments (`/chosen/bootargs`, i.e. QEMU `-append`):
//! which keys exist, their defaults, and what a bad value does (a precise
//! diagnostic and a failed boot, never a silent default).

use crate::memdiag::badmem::BootBadPages;
use bootargs::{ArgError, BootArgs, Level, LogSpec};
use core::fmt;
use faultinject::FaultConfig;

mod known;
pub use known::KNOWN_ARGS;

/// The parsed arguments.
#[derive(Clone, Copy, Debug)]
pub struct KernelArgs {
    /// `log=`: the default level and the targets' own.
    pub log: LogSpec<'static>,
    /// `printk_ratelimit=` (seconds, 0 = no limit) and
    /// `printk_ratelimit_burst=`: the memory reports' rate limit.
    pub ratelimit_seconds: u64,
    pub ratelimit_burst: u32,
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
    /// `log=` that does not parse, or names a target the kernel has not.
    Log {
        value: &'static str,
        error: bootargs::LogSpecError<'static>,
    },
    LogTarget {
        value: &'static str,
        target: &'static str,
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
            ArgErrorText::Log { value, error } => {
                write!(f, "boot argument `log={value}`: {error}")
            }
            ArgErrorText::LogTarget { value, target } => write!(
                f,
                "boot argument `log={value}`: {}",
                crate::console::filter::UnknownTarget(target)
            ),
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
        log: log_spec(&args)?,
        ratelimit_seconds: typed(
            &args,
            "printk_ratelimit",
            "seconds per rate-limit window (0 = no limit)",
        )?
        .unwrap_or(crate::memdiag::ratelimit::DEFAULT_INTERVAL_SECONDS),
        ratelimit_burst: typed(
            &args,
            "printk_ratelimit_burst",
            "a number of reports per window",
        )?
        .unwrap_or(crate::memdiag::ratelimit::DEFAULT_BURST),
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

/// `log=`: a level, or levels per target (`warn,pages:trace`); the
/// targets must be ones the kernel logs under.
fn log_spec(args: &BootArgs<'static>) -> Result<LogSpec<'static>, BadArgs> {
    let expected = "a level (off, error, warn, info, debug, trace) and/or target:level items";
    let Some(value) = value_of(args, "log", expected)? else {
        return Ok(LogSpec::new(Level::Info));
    };
    let spec = LogSpec::parse(value, Level::Info)
        .map_err(|error| BadArgs(ArgErrorText::Log { value, error }))?;
    crate::console::filter::check(&spec).map_err(|unknown| {
        BadArgs(ArgErrorText::LogTarget {
            value,
            target: unknown.0,
        })
    })?;
    Ok(spec)
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

/// Logs (at debug) every argument of `line` the kernel took, and the
/// values in force of the main knobs, once logging runs: what a boot
/// argument did is then visible without reading the code.
pub fn log_parsed(line: &'static str, args: &KernelArgs) {
    for arg in BootArgs::new(line).iter().filter_map(Result::ok) {
        if let Some((_, help)) = KNOWN_ARGS.iter().find(|(key, _)| *key == arg.key) {
            let value = arg.value.unwrap_or("");
            match value.contains(char::is_whitespace) {
                true => log::debug!("parsed {}=\"{value}\"; {help}", arg.key),
                false => log::debug!("parsed {}={value}; {help}", arg.key),
            }
        }
    }
    log::debug!(
        "in force: log={} timer_hz={} pagealloc={} alloc={} memdebug={} \
         printk_ratelimit={} printk_ratelimit_burst={}",
        args.log,
        args.timer_hz,
        args.page_allocator.name(),
        args.heap.name(),
        args.memdebug.flags,
        args.ratelimit_seconds,
        args.ratelimit_burst
    );
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
mod tests;
