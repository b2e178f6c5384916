//! `cargo xtask`: the one place where RVOS's build, run and test logic
//! lives. Every command first installs what is missing (and nothing else),
//! then does its job; knobs are environment variables (see `usage`).

mod config;
mod crates;
mod kernel;
mod process;
mod qemu;
mod setup;
mod shell_test;
mod stress;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  run                 build the kernel and boot it to the `rvos>` monitor in QEMU
                      (`help` lists the commands; `shutdown` or Ctrl-A X quits)
  test [--only S,..] [--skip S,..]
                      every check: fmt, clippy, host, crates, loom, miri, kernel, shell, stress
                      (shell: types commands into the monitor over the serial line)
  stress              run the stress workload on every hart for DURATION seconds
                      (test image, boot arg stress=; fault injection on); exits non-zero on any failure
  debug               boot QEMU halted with a gdb stub and print the gdb command
  build [--ktest]     build the kernel image (or its test build) and print its path
  help                this text

knobs (environment variables):
  SMP=N        harts (run/debug default 2, test and stress default 4; stress runs up to SMP=8)
  DURATION=S   stress: seconds to run (default 60; the test step runs 5)
  SEED=N       stress: the workload's base seed (decimal or 0x-hex; the run prints its own)
  MEM=SIZE     RAM, QEMU syntax: 128M, 1G, 2G; a plain number means MiB (default 128M)
  LOG=LEVEL    kernel log level: off, error, warn, info, debug, trace (boot arg log=)
  ARGS='...'   extra kernel boot arguments (QEMU -append)
  CMDS='a; b'  run: the monitor runs this `;`-separated command list instead of
               prompting, then powers off (status 6 if a command failed), e.g.
               CMDS=\"meminfo; buddyinfo; shutdown\" (boot arg cmds=)
  TIMEOUT=S    wall-clock limit per QEMU run in seconds (test default 120, run: none)
  GDB_PORT=P   gdb stub port for debug (default 1234)
  CARGO_TARGET_DIR  where everything is built (default: the workspace's target/)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => no_extra_args(&args).and_then(|()| qemu::run_command()),
        Some("debug") => no_extra_args(&args).and_then(|()| qemu::debug_command()),
        Some("build") => build_command(&args[1..]),
        Some("test") => test::command(&args[1..]),
        Some("stress") => no_extra_args(&args).and_then(|()| stress::command()),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(0)
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn no_extra_args(args: &[String]) -> Result<(), String> {
    match args.get(1) {
        Some(extra) => Err(format!(
            "`{}` takes no arguments (got `{extra}`); knobs are environment variables",
            args[0]
        )),
        None => Ok(()),
    }
}

fn build_command(args: &[String]) -> Result<u8, String> {
    let flavour = match args {
        [] => kernel::Flavour::Normal,
        [flag] if flag == "--ktest" => kernel::Flavour::Test,
        _ => return Err(format!("usage: cargo xtask build [--ktest] (got {args:?})")),
    };
    let config = config::Config::load(config::Mode::Run)?;
    setup::ensure_rust(&config)?;
    let image = kernel::build(&config, flavour)?;
    println!("{}", image.display());
    Ok(0)
}
