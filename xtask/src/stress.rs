//! `cargo xtask stress`: boots the test image with `stress=DURATION`, so
//! every hart runs the workload generator against the global and the page
//! allocator (cross-hart frees, timer-interrupt allocations, fault
//! injection) for that long, and passes only if the kernel says
//! `stress: PASS` and exits 0. The test command's `stress` step runs a
//! short version.

use crate::config::{Config, Mode};
use crate::kernel::{self, Flavour};
use crate::{process, qemu, setup};
use std::time::Duration;

/// Seconds without `DURATION=`.
pub const DEFAULT_SECONDS: u64 = 60;
/// Seconds the test command's `stress` step runs.
pub const SHORT_SECONDS: u64 = 5;
/// QEMU start, boot and the final checks, on top of the duration.
const MARGIN: Duration = Duration::from_secs(120);
/// More per hart: each finishes its round and drains its live blocks after
/// the deadline, and on an oversubscribed host every lock handoff can wait
/// for a descheduled vCPU (a 10 s run at SMP=8 on 2 busy cores took 112 s).
const MARGIN_PER_HART: Duration = Duration::from_secs(30);

/// `DURATION=` in whole seconds.
fn duration() -> Result<u64, String> {
    match std::env::var("DURATION") {
        Err(_) => Ok(DEFAULT_SECONDS),
        Ok(text) if text.trim().is_empty() => Ok(DEFAULT_SECONDS),
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&s| s > 0)
            .ok_or(format!(
                "DURATION={text}: expected a whole number of seconds"
            )),
    }
}

/// Entry point of `cargo xtask stress`.
pub fn command() -> Result<u8, String> {
    // SMP defaults to 4 as for the tests.
    let config = Config::load(Mode::Test)?;
    setup::ensure_rust(&config)?;
    setup::ensure_qemu()?;
    run(&config, duration()?, true)?;
    Ok(0)
}

/// The near-exhaustion run of the test command: two harts in 64 MiB with
/// every memdebug check on, all but [`NEAR_EXHAUSTION_FREE_PAGES`] free
/// pages held, so allocations fail for want of memory while reports,
/// the timer hook and cross-hart frees go on; QEMU must still exit, with
/// every counter back.
pub fn run_near_exhaustion(config: &Config) -> Result<(), String> {
    let mut small = config.clone();
    small.smp = 2;
    small.mem = "64M".to_string();
    small.mem_bytes = 64 << 20;
    let extra = [
        "memdebug=all".to_string(),
        format!("stress.free={NEAR_EXHAUSTION_FREE_PAGES}"),
    ];
    run_with(&small, SHORT_SECONDS, false, &extra)
}

/// Free pages the near-exhaustion run leaves (about what a monitor session
/// that filled memory by hand left when a report deadlocked the console).
pub const NEAR_EXHAUSTION_FREE_PAGES: usize = 128;

/// Builds the test image and runs the stress mode for `seconds`; `Err`
/// with the output's tail unless it passed.
pub fn run(config: &Config, seconds: u64, echo: bool) -> Result<(), String> {
    run_with(config, seconds, echo, &[])
}

fn run_with(config: &Config, seconds: u64, echo: bool, more: &[String]) -> Result<(), String> {
    let image = kernel::build(config, Flavour::Test)?;
    let mut extra = vec![format!("stress={seconds}")];
    extra.extend(more.iter().cloned());
    // `SEED=` replays a run's workload (the kernel prints the seed it used).
    if let Some(seed) = std::env::var("SEED").ok().filter(|s| !s.trim().is_empty()) {
        extra.push(format!("stress.seed={}", seed.trim()));
    }
    let args = config.boot_args(&extra);
    let cmd = qemu::command(config, &image, &args);
    println!("xtask: {}", process::describe(&cmd));
    let limit = match std::env::var_os("TIMEOUT") {
        Some(_) => config.timeout,
        None => Some(Duration::from_secs(seconds) + MARGIN + MARGIN_PER_HART * config.smp),
    };
    let run = process::run_limited(cmd, echo, limit)?;
    let passed = run.output.lines().any(|l| l.starts_with("stress: PASS"));
    match (run.status.and_then(|s| s.code()), passed) {
        (Some(0), true) => {
            if !echo {
                for line in run
                    .output
                    .lines()
                    .filter(|l| l.starts_with("stress: summary"))
                {
                    println!("{line}");
                }
            }
            println!(
                "xtask: stress passed ({seconds} s at SMP={}, {:.1} s wall clock)",
                config.smp,
                run.elapsed.as_secs_f64()
            );
            Ok(())
        }
        (code, _) => Err(format!(
            "stress run failed: QEMU status {code:?} (None: stopped after {} s), kernel verdict {}; last lines:\n{}",
            limit.map_or(0, |l| l.as_secs()),
            if passed { "PASS" } else { "missing or FAIL" },
            run.tail(25)
        )),
    }
}
