//! System commands: `harts`, `log [level]`, `uptime`, `shutdown`.

use super::Monitor;
use crate::arch::{hart, timer};
use crate::console::filter;
use crate::drivers::plic;
use crate::memory::size::{digits, pad_to_width};
use crate::memory::stacks;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use kshell::{ArgError, Args, CommandError};

/// A stack's deepest use and size in bytes, shown as `used/sizeK`,
/// right-aligned to the column width (without allocating: the monitor must
/// work on a full heap).
struct DeepestUse(usize, usize);

impl core::fmt::Display for DeepestUse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (used, size) = (self.0.div_ceil(1024) as u64, self.1 as u64 / 1024);
        pad_to_width(f, digits(used) + digits(size) + 2)?;
        write!(f, "{used}/{size}K")
    }
}

/// `harts`
pub fn harts<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    let me = hart::current().hart_id();
    let plic = plic::get();
    writeln!(
        out,
        "hart slot state   timer-ticks  {:<37}  {:>8}  {:>12}  plic-ctx",
        "stack", "deepest", "trap-deepest"
    )?;
    for block in hart::HARTS.iter().filter(|h| h.stack().end != 0) {
        let context = plic
            .and_then(|p| p.contexts().iter().find(|(id, _)| *id == block.hart_id()))
            .map(|(_, context)| *context);
        let stack = block.stack();
        write!(
            out,
            "{:>4} {:>4} {:<7} {:>11}  {:#x}-{:#x}  {:>8}  {:>12}  ",
            block.hart_id(),
            block.slot(),
            if block.is_online() {
                "online"
            } else {
                "offline"
            },
            block.timer_ticks.load(Ordering::Relaxed),
            stack.start,
            stack.end,
            DeepestUse(stacks::stack_depth(block), stack.len()),
            DeepestUse(stacks::trap_stack_depth(block), block.trap_stack().len()),
        )?;
        match context {
            Some(context) => write!(out, "{context:>4}")?,
            None => write!(out, "   -")?,
        }
        writeln!(
            out,
            "{}",
            if block.hart_id() == me {
                "  (shell)"
            } else {
                ""
            }
        )?;
    }
    writeln!(
        out,
        "deepest: most of each stack ever in use since boot, in KiB (rounded up) of its size"
    )?;
    let (received, overruns) = crate::input::counters();
    writeln!(
        out,
        "timer {} ticks/s per hart; serial input: {received} bytes received, {overruns} dropped",
        crate::platform::get()
            .timebase_hz
            .checked_div(timer::interval())
            .unwrap_or(0)
    )?;
    if let Some(plic) = plic {
        write!(out, "PLIC: {} sources", plic.sources())?;
        for source in 1..=plic.sources() {
            let count = plic::count(source);
            if count > 0 {
                write!(out, "; irq {source}: {count} interrupts")?;
            }
        }
        writeln!(out, "; {} spurious", plic::spurious())?;
    }
    Ok(())
}

/// `log [<level> | <target>:<level> | ratelimit <seconds> <burst>]`:
/// shows the levels and the reports' rate limit, or sets the default
/// level, one target's, or the rate limit (as Linux's
/// `kernel.printk_ratelimit` sysctls do at run time).
pub fn log_level<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    const EXPECTED: &str = "off, error, warn, info, debug, trace, <target>:<level> or ratelimit \
                            (`help log` lists the targets)";
    match args.next_word() {
        None => {}
        Some("ratelimit") => {
            let seconds = args.number_in("seconds", 0..=3600)?;
            let burst = args.number_in("burst", 1..=u64::from(u32::MAX))? as u32;
            args.end()?;
            crate::memdiag::ratelimit::configure(seconds, burst);
        }
        Some(word) => {
            args.end()?;
            let invalid = ArgError::Invalid {
                word,
                expected: EXPECTED,
            };
            match word.split_once(':') {
                None => filter::set_default(word.parse().map_err(|_| invalid)?),
                Some((target, level)) => {
                    let level = level.parse().map_err(|_| invalid)?;
                    filter::set_target(target, level).map_err(|_| ArgError::Invalid {
                        word: target,
                        expected: "a log target (`help log` lists them)",
                    })?;
                }
            }
            log::info!("log level set to {} from the shell", filter::Current);
        }
    }
    writeln!(out, "log level: {}", filter::Current)?;
    let (seconds, burst, logged, suppressed) = crate::memdiag::ratelimit::totals();
    match seconds {
        0 => write!(out, "reports: no rate limit (printk_ratelimit=0)")?,
        _ => write!(
            out,
            "reports: at most {burst} per {seconds} s (printk_ratelimit={seconds} \
             printk_ratelimit_burst={burst})"
        )?,
    }
    writeln!(out, "; {logged} logged, {suppressed} suppressed since boot")?;
    Ok(())
}

/// `uptime`
pub fn uptime<'a>(
    _: &mut Monitor,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    let (secs, micros) = crate::console::uptime().unwrap_or((0, 0));
    writeln!(
        out,
        "up {}:{:02}:{:02}.{:03} ({secs}.{micros:06} s), {} harts online",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        micros / 1000,
        crate::arch::smp::online_count()
    )?;
    Ok(())
}

/// `shutdown`: the loop powers off after the command returns.
pub fn shutdown<'a>(
    monitor: &mut Monitor,
    args: &mut Args<'a>,
    _: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    args.end()?;
    monitor.shutdown = true;
    Ok(())
}
