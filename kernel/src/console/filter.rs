//! Which log records reach the console: a default level and per-target
//! levels, set by `log=` at boot (`log=warn,heap:debug,pages:trace`) and by
//! the monitor's `log` command.
//!
//! A target is a name in a record's module path (`rvos::memory::pages`
//! has `rvos`, `memory` and `pages`) or an explicit `target:` of the
//! record; the log line shows the last one. The most specific name with a
//! level of its own decides, so `memory:debug,pages:warn` quiets the page
//! allocator inside a verbose memory core. The names are a fixed table
//! ([`TARGETS`]): a typo in `log=` stops the boot instead of silently
//! filtering nothing.
//!
//! `log::max_level()` is the most verbose of all levels, so a disabled
//! `debug!`/`trace!` costs its call site one relaxed load and a branch;
//! only records that pass it are looked up here.

use bootargs::{Level, LogSpec};
use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};
use log::LevelFilter;

/// Declares [`TARGETS`] and [`TARGETS_HELP`] (the monitor's `help log`)
/// from one list, so the two cannot disagree.
macro_rules! targets {
    ($(($name:literal, $what:literal)),* $(,)?) => {
        /// Every target name the kernel logs under, with what it covers.
        pub const TARGETS: &[(&str, &str)] = &[$(($name, $what)),*];
        /// The levels and the targets, for `help log`.
        #[cfg_attr(feature = "ktest", expect(dead_code, reason = "the monitor's only"))]
        pub const TARGETS_HELP: &str = concat!(
            "levels, least verbose first: off error warn info debug trace\n",
            "`log warn` sets the default; `log pages:trace` one target (and what is below it)\n",
            "`log ratelimit 5 10`: at most 10 memory reports per 5 s (0 s: no limit)\n",
            "boot: log=warn,pages:trace printk_ratelimit=5 printk_ratelimit_burst=10\n",
            "targets:",
            $("\n  ", $name, ": ", $what),*
        );
    };
}

targets![
    ("rvos", "the whole kernel; alone: the boot sequence"),
    ("args", "boot arguments as parsed"),
    (
        "layout",
        "physical layout: image sections, RAM, reservations, free ranges"
    ),
    ("memory", "the memory core (pages, heap, paging, stacks)"),
    (
        "pages",
        "page allocator; trace: every page allocation and free"
    ),
    (
        "heap",
        "kernel heap: slab grow/shrink, pool growth/return; trace: cache refills and flushes"
    ),
    (
        "paging",
        "kernel page table: mappings, map/unmap, TLB shootdowns"
    ),
    ("smp", "hart bring-up"),
    ("plic", "interrupt routing through the PLIC"),
    (
        "memdiag",
        "the memory diagnostics (memdebug to ratelimit below)"
    ),
    (
        "memdebug",
        "memdebug= layers' reports (double free, overflow, ...)"
    ),
    ("oom", "out-of-memory reports"),
    ("kfence", "guard-page sampling reports"),
    ("leak", "the leak watch"),
    ("badmem", "pages taken out of service"),
    ("inject", "fault injection"),
    ("ratelimit", "how many reports the rate limit suppressed"),
    ("shell", "the monitor"),
    ("ksync", "lock debugging and lock-order validation"),
];

/// A target without a level of its own.
const INHERIT: u8 = u8::MAX;

static DEFAULT: AtomicU8 = AtomicU8::new(LevelFilter::Info as u8);
static LEVELS: [AtomicU8; TARGETS.len()] = [const { AtomicU8::new(INHERIT) }; TARGETS.len()];

fn filter(level: Level) -> LevelFilter {
    match level {
        Level::Off => LevelFilter::Off,
        Level::Error => LevelFilter::Error,
        Level::Warn => LevelFilter::Warn,
        Level::Info => LevelFilter::Info,
        Level::Debug => LevelFilter::Debug,
        Level::Trace => LevelFilter::Trace,
    }
}

fn from_u8(value: u8) -> LevelFilter {
    LevelFilter::iter()
        .nth(usize::from(value))
        .unwrap_or(LevelFilter::Trace)
}

fn index_of(name: &str) -> Option<usize> {
    TARGETS.iter().position(|(known, _)| *known == name)
}

/// A target name that is not in [`TARGETS`].
pub struct UnknownTarget<'a>(pub &'a str);

impl fmt::Display for UnknownTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a log target; the targets are", self.0)?;
        for (index, (name, _)) in TARGETS.iter().enumerate() {
            let sep = if index == 0 { " " } else { ", " };
            write!(f, "{sep}{name}")?;
        }
        Ok(())
    }
}

/// Checks every target `spec` names.
pub fn check<'a>(spec: &LogSpec<'a>) -> Result<(), UnknownTarget<'a>> {
    match spec
        .targets()
        .iter()
        .find(|(name, _)| index_of(name).is_none())
    {
        Some((name, _)) => Err(UnknownTarget(name)),
        None => Ok(()),
    }
}

/// Makes `spec` the filter (targets it does not name inherit its default).
/// Its targets were [`check`]ed.
pub fn apply(spec: &LogSpec<'_>) {
    DEFAULT.store(filter(spec.default) as u8, Ordering::Relaxed);
    for (index, level) in LEVELS.iter().enumerate() {
        let own = spec
            .targets()
            .iter()
            .find(|(name, _)| *name == TARGETS[index].0)
            .map_or(INHERIT, |(_, level)| filter(*level) as u8);
        level.store(own, Ordering::Relaxed);
    }
    publish_max();
}

/// Sets the default level, keeping the targets' own.
pub fn set_default(level: Level) {
    DEFAULT.store(filter(level) as u8, Ordering::Relaxed);
    publish_max();
}

/// Gives `name` a level of its own.
pub fn set_target(name: &str, level: Level) -> Result<(), UnknownTarget<'_>> {
    let index = index_of(name).ok_or(UnknownTarget(name))?;
    LEVELS[index].store(filter(level) as u8, Ordering::Relaxed);
    publish_max();
    Ok(())
}

/// `log::max_level()` := the most verbose level set anywhere.
fn publish_max() {
    let max = LEVELS
        .iter()
        .map(|level| level.load(Ordering::Relaxed))
        .filter(|&level| level != INHERIT)
        .fold(DEFAULT.load(Ordering::Relaxed), u8::max);
    log::set_max_level(from_u8(max));
}

/// The level that applies to records of `target` (a module path or an
/// explicit target): that of its most specific name with a level of its
/// own, else the default.
pub fn level_for(target: &str) -> LevelFilter {
    target
        .rsplit("::")
        .filter_map(index_of)
        .map(|index| LEVELS[index].load(Ordering::Relaxed))
        .find(|&level| level != INHERIT)
        .map_or_else(|| from_u8(DEFAULT.load(Ordering::Relaxed)), from_u8)
}

/// The filter in `log=` syntax (`info,pages:trace`).
pub struct Current;

impl fmt::Display for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |level: LevelFilter| match level {
            LevelFilter::Off => "off",
            LevelFilter::Error => "error",
            LevelFilter::Warn => "warn",
            LevelFilter::Info => "info",
            LevelFilter::Debug => "debug",
            LevelFilter::Trace => "trace",
        };
        f.write_str(name(from_u8(DEFAULT.load(Ordering::Relaxed))))?;
        for (index, level) in LEVELS.iter().enumerate() {
            let level = level.load(Ordering::Relaxed);
            if level != INHERIT {
                write!(f, ",{}:{}", TARGETS[index].0, name(from_u8(level)))?;
            }
        }
        Ok(())
    }
}

/// The levels as they are, for a test to put back.
#[cfg(feature = "ktest")]
pub fn snapshot() -> (u8, [u8; TARGETS.len()]) {
    (
        DEFAULT.load(Ordering::Relaxed),
        LEVELS.each_ref().map(|level| level.load(Ordering::Relaxed)),
    )
}

/// Puts back what [`snapshot`] took.
#[cfg(feature = "ktest")]
pub fn restore((default, levels): (u8, [u8; TARGETS.len()])) {
    DEFAULT.store(default, Ordering::Relaxed);
    for (level, saved) in LEVELS.iter().zip(levels) {
        level.store(saved, Ordering::Relaxed);
    }
    publish_max();
}

#[cfg(feature = "ktest")]
mod tests;
