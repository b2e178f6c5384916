//! Building the kernel image for `riscv64gc-unknown-none-elf`: the normal
//! build and the `ktest` build, each copied to its own file so `run` and
//! `test` do not overwrite each other's image.

use crate::config::{Config, KERNEL_BINARY, KERNEL_PACKAGE, KERNEL_TARGET};
use crate::process;
use std::path::PathBuf;
use std::process::Command;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavour {
    Normal,
    /// Built with the `ktest` feature: runs the in-kernel tests at boot.
    Test,
}

/// A `cargo` command in the workspace using the pinned toolchain and the
/// configured target directory.
pub fn cargo(config: &Config) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&config.root)
        .env("CARGO_TARGET_DIR", &config.target_dir);
    cmd
}

/// Builds the kernel and returns the path of its ELF image.
pub fn build(config: &Config, flavour: Flavour) -> Result<PathBuf, String> {
    // The test build uses the `ktest` profile (release plus debug
    // assertions, see the root Cargo.toml).
    let profile = match flavour {
        Flavour::Normal => "release",
        Flavour::Test => "ktest",
    };
    let mut cmd = cargo(config);
    cmd.args([
        "build",
        "--profile",
        profile,
        "-p",
        KERNEL_PACKAGE,
        "--target",
        KERNEL_TARGET,
    ]);
    if flavour == Flavour::Test {
        cmd.args(["--features", "ktest"]);
    }
    process::run(cmd)?;
    let built = config
        .target_dir
        .join(KERNEL_TARGET)
        .join(profile)
        .join(KERNEL_BINARY);
    let out_dir = config.target_dir.join("rvos");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let image = out_dir.join(match flavour {
        Flavour::Normal => "rvos.elf",
        Flavour::Test => "rvos-ktest.elf",
    });
    std::fs::copy(&built, &image).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            built.display(),
            image.display()
        )
    })?;
    Ok(image)
}
