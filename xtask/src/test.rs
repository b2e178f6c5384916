//! `cargo xtask test`: every check, in order, with a summary table. Each step
//! runs even if an earlier one failed (so one run shows everything that is
//! red); the command exits non-zero if any step failed.

use crate::config::{Config, KERNEL_PACKAGE, KERNEL_TARGET, Mode};
use crate::kernel::{self, Flavour, cargo};
use crate::process::{self, Finished, Skipped};
use crate::{qemu, setup};
use std::process::Command;
use std::time::{Duration, Instant};

/// Crates whose `tests/loom.rs` model-checks their atomics under `--cfg loom`.
pub const LOOM_CRATES: &[&str] = &["rvos-ksync", "rvos-kheap"];

/// Crates whose host tests also run under Miri (unsafe code, no FFI).
/// `kshell` has none: Miri would only re-run its host tests, slowly.
pub const MIRI_CRATES: &[&str] = &[
    "rvos-kalloc",
    "rvos-ksync",
    "rvos-sv39",
    "memlayout",
    "bootargs",
    "rvos-memdebug",
    "workload",
    "faultinject",
    "rvos-kheap",
];

/// Isolation off: proptest reads the working directory (to find its
/// regression files) and seeds from the OS. Permissive provenance: page
/// allocators deal in integer addresses, as kernels do, and the debug
/// layers turn them back into pointers.
const MIRIFLAGS: &str = "-Zmiri-disable-isolation -Zmiri-permissive-provenance";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Fmt,
    Clippy,
    Host,
    Crates,
    Loom,
    Miri,
    Kernel,
    Shell,
    Stress,
}

const STEPS: [Step; 9] = [
    Step::Fmt,
    Step::Clippy,
    Step::Host,
    Step::Crates,
    Step::Loom,
    Step::Miri,
    Step::Kernel,
    Step::Shell,
    Step::Stress,
];

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Host => "host",
            Step::Crates => "crates",
            Step::Loom => "loom",
            Step::Miri => "miri",
            Step::Kernel => "kernel",
            Step::Shell => "shell",
            Step::Stress => "stress",
        }
    }

    fn parse(name: &str) -> Result<Step, String> {
        STEPS.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            let names: Vec<_> = STEPS.iter().map(|s| s.name()).collect();
            format!("unknown test step `{name}`; steps are {}", names.join(", "))
        })
    }
}

fn parse_list(value: Option<&String>, flag: &str) -> Result<Vec<Step>, String> {
    let value = value.ok_or(format!("{flag} needs a comma-separated list of steps"))?;
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(Step::parse)
        .collect()
}

/// Entry point of `cargo xtask test [--only a,b] [--skip c]`.
pub fn command(args: &[String]) -> Result<u8, String> {
    let mut only: Option<Vec<Step>> = None;
    let mut skip: Vec<Step> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--only" => only = Some(parse_list(iter.next(), "--only")?),
            "--skip" => skip.extend(parse_list(iter.next(), "--skip")?),
            other => {
                return Err(format!(
                    "usage: cargo xtask test [--only STEP,..] [--skip STEP,..] (got `{other}`)"
                ));
            }
        }
    }
    let selected: Vec<Step> = STEPS
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| o.contains(s)) && !skip.contains(s))
        .collect();

    let config = Config::load(Mode::Test)?;
    setup::ensure_rust(&config)?;
    if [Step::Kernel, Step::Shell, Step::Stress]
        .iter()
        .any(|step| selected.contains(step))
    {
        setup::ensure_qemu()?;
    }
    if selected.contains(&Step::Miri) {
        setup::ensure_miri()?;
    }

    let mut results: Vec<(Step, Result<Skipped, String>, Duration)> = Vec::new();
    for step in selected {
        println!("\n==== xtask test: {} ====", step.name());
        let start = Instant::now();
        let result = run_step(&config, step);
        if let Err(message) = &result {
            println!("xtask test: step {} FAILED: {message}", step.name());
        }
        results.push((step, result, start.elapsed()));
    }

    println!("\n==== xtask test summary ====");
    println!("{:<8} {:<6} {:>8}", "step", "result", "time");
    for (step, result, time) in &results {
        let verdict = if result.is_ok() { "pass" } else { "FAIL" };
        println!(
            "{:<8} {:<6} {:>7.1}s",
            step.name(),
            verdict,
            time.as_secs_f64()
        );
    }
    // The reasons again, so the end of a long log says what went wrong.
    for (step, result, _) in &results {
        match result {
            Err(message) => println!("{} FAILED: {message}", step.name()),
            Ok(skipped) => {
                for check in skipped {
                    println!("{} passed, but SKIPPED {check}", step.name());
                }
            }
        }
    }
    let failed = results.iter().filter(|(_, r, _)| r.is_err()).count();
    let passed = results.len() - failed;
    let skipped = STEPS.len() - results.len();
    if skipped > 0 {
        println!("steps: {passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("steps: {passed} passed, {failed} failed");
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn run_step(config: &Config, step: Step) -> Result<Skipped, String> {
    let result = match step {
        Step::Fmt => {
            let mut cmd = cargo(config);
            cmd.args(["fmt", "--all", "--check"]);
            process::run(cmd)
        }
        Step::Clippy => clippy(config),
        Step::Host => {
            let mut cmd = cargo(config);
            cmd.arg("test");
            process::run(cmd)
        }
        Step::Loom => {
            let mut cmd = cargo(config);
            cmd.env("CARGO_TARGET_DIR", config.target_dir.join("loom"))
                .env("RUSTFLAGS", "--cfg loom")
                .args(["test", "--release", "--test", "loom"]);
            for krate in LOOM_CRATES {
                cmd.args(["-p", krate]);
            }
            process::run(cmd)
        }
        Step::Miri => {
            // `cargo +nightly` needs the rustup proxy, not the toolchain's
            // cargo that `$CARGO` points to.
            let mut cmd = Command::new("cargo");
            cmd.current_dir(&config.root)
                .env("CARGO_TARGET_DIR", config.target_dir.join("miri"))
                .env_remove("RUSTUP_TOOLCHAIN")
                .env("MIRIFLAGS", MIRIFLAGS);
            // Miri interprets on one core; nextest runs one test per
            // process, so both cores work (cargo test runs one binary at a
            // time, its tests one after the other).
            if setup::has_nextest() {
                cmd.args(["+nightly", "miri", "nextest", "run", "--no-fail-fast"]);
            } else {
                cmd.args(["+nightly", "miri", "test", "--no-fail-fast"]);
            }
            for krate in MIRI_CRATES {
                cmd.args(["-p", krate]);
            }
            process::run(cmd)
        }
        // The one step that can pass with a check skipped.
        Step::Crates => return crate::crates::check(config),
        Step::Kernel => kernel_tests(config),
        Step::Shell => crate::shell_test::shell_tests(config),
        Step::Stress => {
            let normal = crate::stress::run(config, crate::stress::SHORT_SECONDS, false);
            let near_exhaustion = crate::stress::run_near_exhaustion(config);
            normal.and(near_exhaustion)
        }
    };
    result.map(|()| Skipped::new())
}

fn clippy(config: &Config) -> Result<(), String> {
    let mut host = cargo(config);
    host.args([
        "clippy",
        "--workspace",
        "--exclude",
        KERNEL_PACKAGE,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    let mut failures = Vec::new();
    failures.extend(process::run(host).err());
    for features in [None, Some("ktest")] {
        let mut kernel = cargo(config);
        kernel.args([
            "clippy",
            "--release",
            "-p",
            KERNEL_PACKAGE,
            "--target",
            KERNEL_TARGET,
        ]);
        if let Some(features) = features {
            kernel.args(["--features", features]);
        }
        kernel.args(["--", "-D", "warnings"]);
        failures.extend(process::run(kernel).err());
    }
    process::all_passed(failures)
}

/// Pages the kernel suite marks bad at boot (its badmem tests check them).
pub const BADMEM: &str = "badmem=0x84000000,0x84001000";

/// Page allocators (`pagealloc=`) the kernel suite runs with.
pub const PAGE_ALLOCATORS: &[&str] = &["buddy", "bitmap"];
/// Kernel heaps (`alloc=`) the kernel suite runs with.
pub const HEAPS: &[&str] = &["slab", "tlsf", "buddy"];

/// `memdebug=` of the configurations: every `pagealloc=` x `alloc=` pair
/// runs with all checks on (the in-kernel provocations need them, and the
/// whole suite then runs under poison, red zones and tracking); the
/// default pair runs once more with `memdebug=off`, the shipped path.
/// The leak watch checks every 20 ticks (0.2 s at the default 100 Hz) so
/// its test sees several checks in about a second.
const MEMDEBUG_ALL: &str = "memdebug=all memdebug.leakwatch=20";
const MEMDEBUG_OFF: &str = "memdebug=off";

/// The `ktest` image at `SMP` harts and `MEM` RAM, once per `pagealloc=` x
/// `alloc=` choice with `memdebug=all`, and once for the default pair with
/// `memdebug=off`: all registered tests must pass each time; then the
/// exit path: a deliberate panic, a deliberate fatal trap, an unexpected
/// write to `.rodata` (with its page-fault diagnosis) and an unhandled
/// allocation failure (with its diagnosis) must each
/// reach the host as their distinct failure status.
fn kernel_tests(config: &Config) -> Result<(), String> {
    let image = kernel::build(config, Flavour::Test)?;
    let pairs = PAGE_ALLOCATORS
        .iter()
        .flat_map(|page_allocator| HEAPS.iter().map(move |heap| (*page_allocator, *heap)));
    let runs = pairs
        .map(|(page_allocator, heap)| (page_allocator, heap, MEMDEBUG_ALL))
        .chain([(PAGE_ALLOCATORS[0], HEAPS[0], MEMDEBUG_OFF)]);
    for (page_allocator, heap, memdebug) in runs {
        let expectations = [
            format!("ktest.harts={}", config.smp),
            format!("ktest.mem={}", config.mem_bytes),
            format!("pagealloc={page_allocator}"),
            format!("alloc={heap}"),
            memdebug.to_string(),
            // Two pages out of service for the whole run (memory::badmem).
            BADMEM.to_string(),
        ];
        let suite = qemu::command(config, &image, &config.boot_args(&expectations));
        println!("xtask: {}", process::describe(&suite));
        let run = process::run_limited(suite, true, config.timeout)?;
        check_suite(config, &run)
            .map_err(|e| format!("pagealloc={page_allocator} alloc={heap} {memdebug}: {e}"))?;
    }

    // The exit-path runs are tests of their own; a filter chosen for the
    // suite would keep them from running at all.
    if config.extra_args.contains("ktest.filter=") {
        println!("xtask: exit-path runs skipped: ARGS sets ktest.filter");
        return Ok(());
    }
    for (crash, code, must_contain) in [
        (
            "panic",
            2,
            [
                "test ktest::deliberate_panic ... FAILED",
                "deliberate panic (ktest.crash=panic)",
            ],
        ),
        (
            "trap",
            3,
            [
                "test ktest::deliberate_illegal_instruction ... FAILED",
                "illegal instruction",
            ],
        ),
        (
            "rodata",
            3,
            [
                "test ktest::deliberate_write_to_rodata ... FAILED",
                ": write to .rodata",
            ],
        ),
        (
            "oom",
            2,
            [
                "test ktest::deliberate_unhandled_allocation_failure ... FAILED",
                "free pages per order:",
            ],
        ),
        (
            "lockorder",
            2,
            [
                "test ktest::deliberate_lock_order_inversion ... FAILED",
                "lock order inversion",
            ],
        ),
    ] {
        let args = config.boot_args(&[format!("ktest.crash={crash}")]);
        let run =
            process::run_limited(qemu::command(config, &image, &args), false, config.timeout)?;
        let status = run.status.map(|s| s.code());
        let missing: Vec<&str> = must_contain
            .iter()
            .copied()
            .filter(|text| !run.output.contains(text))
            .collect();
        if status != Some(Some(code)) || !missing.is_empty() {
            return Err(format!(
                "exit-path check ktest.crash={crash}: expected QEMU status {code} and {must_contain:?}, \
                 got status {status:?}, missing {missing:?}; output tail:\n{}",
                run.tail(30)
            ));
        }
        println!(
            "xtask: exit path ok: ktest.crash={crash} ends QEMU with status {code} and names the test"
        );
    }
    Ok(())
}

fn check_suite(config: &Config, run: &Finished) -> Result<(), String> {
    let Some(status) = run.status else {
        let running = run
            .output
            .lines()
            .rev()
            .find_map(|line| {
                line.strip_prefix("test ")?
                    .split_once(" ... ")
                    .filter(|(_, verdict)| {
                        !verdict.starts_with("ok") && !verdict.starts_with("FAILED")
                    })
            })
            .map_or(String::new(), |(name, _)| {
                format!(" while running test {name}")
            });
        return Err(format!(
            "QEMU did not finish within {} s (TIMEOUT){running}: the kernel hung or the run is too slow; \
             it was stopped. Last lines:\n{}",
            config.timeout.map_or(0, |t| t.as_secs()),
            run.tail(20)
        ));
    };
    let closing = run.output.lines().rev().find_map(|line| {
        let (passed, rest) = line.trim().split_once(" passed, ")?;
        let failed = rest.split_once(" failed").map_or(rest, |(f, _)| f);
        Some((passed.parse::<usize>().ok()?, failed.parse::<usize>().ok()?))
    });
    match (status.code(), closing) {
        (Some(0), Some((passed, 0))) if passed > 0 => {
            println!(
                "xtask: kernel tests: {passed} passed in {:.1} s",
                run.elapsed.as_secs_f64()
            );
            Ok(())
        }
        (code, closing) => Err(format!(
            "kernel test run failed: QEMU status {code:?} (1 = tests failed, 2 = panic, 3 = fatal trap, \
             4 = platform, 5 = boot args), closing line {closing:?}. Last lines:\n{}",
            run.tail(20)
        )),
    }
}
