//! QEMU `virt` invocations: the command line shared by run, debug and test,
//! and the run and debug commands.

use crate::config::{Config, Mode};
use crate::kernel::{self, Flavour};
use crate::process;
use crate::setup;
use std::path::Path;
use std::process::Command;

/// `qemu-system-riscv64 -machine virt -bios default -nographic ...`.
pub fn command(config: &Config, image: &Path, boot_args: &str) -> Command {
    let mut cmd = Command::new("qemu-system-riscv64");
    cmd.args(["-machine", "virt", "-bios", "default", "-nographic"])
        .args(["-smp", &config.smp.to_string()])
        .args(["-m", &config.mem])
        .arg("-kernel")
        .arg(image)
        .args(["-append", boot_args]);
    if config.icount {
        cmd.args(["-icount", "shift=0"]);
    }
    cmd
}

/// `cargo xtask run`: build, boot, and exit with QEMU's status.
pub fn run_command() -> Result<u8, String> {
    let config = Config::load(Mode::Run)?;
    setup::ensure_rust(&config)?;
    setup::ensure_qemu()?;
    let image = kernel::build(&config, Flavour::Normal)?;
    let qemu = command(&config, &image, &config.boot_args(&config.cmds_arg()));
    println!("xtask: {}", process::describe(&qemu));
    match process::run_interactive(qemu, config.timeout)? {
        Some(status) => Ok(status.code().map_or(1, |code| code.clamp(0, 255) as u8)),
        None => Err(format!(
            "QEMU did not exit within {} s (TIMEOUT) and was stopped",
            config.timeout.map_or(0, |t| t.as_secs())
        )),
    }
}

/// `cargo xtask debug`: QEMU halted at the first instruction with a gdb stub.
pub fn debug_command() -> Result<u8, String> {
    let config = Config::load(Mode::Run)?;
    setup::ensure_rust(&config)?;
    setup::ensure_qemu()?;
    let image = kernel::build(&config, Flavour::Normal)?;
    let mut qemu = command(&config, &image, &config.boot_args(&config.cmds_arg()));
    qemu.args(["-S", "-gdb", &format!("tcp::{}", config.gdb_port)]);
    println!("xtask: {}", process::describe(&qemu));
    println!("xtask: QEMU is halted before the firmware; attach from another terminal with:");
    println!(
        "  gdb-multiarch -q {} -ex 'target remote localhost:{}' -ex 'break rvos_boot_entry' -ex continue",
        image.display(),
        config.gdb_port
    );
    println!("xtask: (Debian: apt-get install gdb-multiarch). Ctrl-A X quits QEMU.");
    let status = process::run_interactive(qemu, config.timeout)?;
    Ok(status
        .and_then(|s| s.code())
        .map_or(1, |code| code.clamp(0, 255) as u8))
}
