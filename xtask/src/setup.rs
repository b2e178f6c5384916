//! Installing what a fresh Debian machine lacks, and nothing else: the
//! kernel target and components for the pinned toolchain (and the library
//! crates' oldest supported toolchain), QEMU with its OpenSBI firmware (as
//! root through apt-get; otherwise a one-line error naming the command),
//! and Miri on nightly for the test command. Each
//! installation prints one line; a second run prints nothing.

use crate::config::{Config, KERNEL_TARGET};
use crate::process::{self, probe};
use std::path::PathBuf;
use std::process::Command;

const COMPONENTS: [&str; 3] = ["rustfmt", "clippy", "llvm-tools"];
const QEMU: &str = "qemu-system-riscv64";
const FIRMWARE: &str = "opensbi-riscv64-generic-fw_dynamic.bin";
const QEMU_PACKAGE: &str = "qemu-system-misc";

fn rustup(args: &[&str]) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(args);
    cmd
}

/// The pinned toolchain has the kernel target and the components.
pub fn ensure_rust(config: &Config) -> Result<(), String> {
    ensure_toolchain(&config.toolchain, &COMPONENTS)
}

/// `toolchain` is installed, with the kernel target and `components`.
pub fn ensure_toolchain(toolchain: &str, components: &[&str]) -> Result<(), String> {
    let present = has_toolchain(toolchain)
        .ok_or("`rustup` is needed (https://rustup.rs) and was not found or failed")?;
    if !present {
        install_toolchain(toolchain, &[])?;
        println!("setup: installed Rust toolchain {toolchain}");
    }
    let targets = probe(&mut rustup(&[
        "target",
        "list",
        "--installed",
        "--toolchain",
        toolchain,
    ]))
    .unwrap_or_default();
    if !targets.lines().any(|t| t.trim() == KERNEL_TARGET) {
        process::run(rustup(&[
            "target",
            "add",
            "--toolchain",
            toolchain,
            KERNEL_TARGET,
        ]))?;
        println!("setup: installed Rust target {KERNEL_TARGET} for {toolchain}");
    }
    let installed = probe(&mut rustup(&[
        "component",
        "list",
        "--installed",
        "--toolchain",
        toolchain,
    ]))
    .unwrap_or_default();
    for &component in components {
        // Lines read `clippy-x86_64-unknown-linux-gnu` (or `llvm-tools-preview-...`).
        let present = installed
            .lines()
            .any(|line| line.trim().starts_with(&format!("{component}-")));
        if !present {
            process::run(rustup(&[
                "component",
                "add",
                "--toolchain",
                toolchain,
                component,
            ]))?;
            println!("setup: installed Rust component {component} for {toolchain}");
        }
    }
    Ok(())
}

/// Whether rustup lists `toolchain` (its lines read
/// `1.88.0-x86_64-unknown-linux-gnu`, `nightly-...`); `None` if rustup is
/// missing or failed.
fn has_toolchain(toolchain: &str) -> Option<bool> {
    let list = probe(&mut rustup(&["toolchain", "list"]))?;
    Some(
        list.lines()
            .any(|line| line.starts_with(&format!("{toolchain}-"))),
    )
}

/// `rustup toolchain install <toolchain> --profile minimal <extra>...`.
fn install_toolchain(toolchain: &str, extra: &[&str]) -> Result<(), String> {
    let mut args = vec!["toolchain", "install", toolchain, "--profile", "minimal"];
    args.extend_from_slice(extra);
    process::run(rustup(&args))
}

/// Where `program` is on PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// QEMU's data directory holds `-bios default`'s firmware: `<prefix>/share/qemu`.
fn firmware_present(qemu: &std::path::Path) -> bool {
    let prefix = qemu.parent().and_then(|bin| bin.parent());
    prefix.is_some_and(|p| p.join("share/qemu").join(FIRMWARE).is_file())
}

fn qemu_ready() -> bool {
    which(QEMU)
        .is_some_and(|q| firmware_present(&q) && probe(Command::new(&q).arg("--version")).is_some())
}

fn is_root() -> bool {
    probe(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// QEMU for RISC-V with OpenSBI is installed.
pub fn ensure_qemu() -> Result<(), String> {
    if qemu_ready() {
        return Ok(());
    }
    let install = format!("apt-get install -y --no-install-recommends {QEMU_PACKAGE}");
    if which("apt-get").is_none() {
        return Err(format!(
            "{QEMU} with OpenSBI firmware ({FIRMWARE}) is missing; install QEMU >= 7 for RISC-V"
        ));
    }
    if !is_root() {
        return Err(format!(
            "{QEMU} with OpenSBI firmware is missing; run: sudo {install}"
        ));
    }
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    // A fresh container has empty package lists; refresh them first.
    process::run(apt(&["update", "-qq"]))?;
    process::run(apt(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        QEMU_PACKAGE,
    ]))?;
    if !qemu_ready() {
        return Err(format!(
            "`{install}` ran but {QEMU} or {FIRMWARE} is still missing"
        ));
    }
    println!("setup: installed {QEMU_PACKAGE} (QEMU and OpenSBI) with apt-get");
    Ok(())
}

/// Miri on the nightly toolchain (only the test command needs it).
pub fn ensure_miri() -> Result<(), String> {
    let mut check = Command::new("cargo");
    check.args(["+nightly", "miri", "--version"]);
    if probe(&mut check).is_some() {
        return Ok(());
    }
    if has_toolchain("nightly") == Some(true) {
        process::run(rustup(&[
            "component",
            "add",
            "miri",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
        println!("setup: installed miri and rust-src for nightly");
    } else {
        install_toolchain("nightly", &["--component", "miri,rust-src"])?;
        println!("setup: installed the nightly toolchain with miri and rust-src");
    }
    Ok(())
}

/// Whether `cargo nextest` runs here (it ships with this machine's Rust
/// toolchain image; where it is missing, Miri runs through `cargo test`).
pub fn has_nextest() -> bool {
    let mut check = Command::new("cargo");
    check.args(["+nightly", "nextest", "--version"]);
    probe(&mut check).is_some()
}
