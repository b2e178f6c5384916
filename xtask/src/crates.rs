//! The `crates` step: the library crates as an adopter receives them. Their
//! docs build without a warning, each packages and builds from its
//! `.crate` file (`cargo publish --dry-run`), they build with the oldest
//! toolchain they declare (named as skipped where rustup cannot download
//! it), and `examples/adopter`, a separate workspace
//! that sees only their public API, builds for the kernel target and
//! passes its tests on the host.

use crate::config::{Config, KERNEL_TARGET};
use crate::kernel::cargo;
use crate::process::Skipped;
use crate::{process, setup};
use std::path::PathBuf;
use std::process::Command;

/// The crates meant for other kernels: their directories under `crates/`;
/// each publishes as `rvos-<name>` (`kalloc` and `sv39` are taken on
/// crates.io, and the five share one prefix) and keeps `<name>` as its
/// Rust name.
pub const LIBRARY_CRATES: &[&str] = &["kalloc", "ksync", "sv39", "memdebug", "kheap"];

fn package_name(krate: &str) -> String {
    format!("rvos-{krate}")
}

/// The oldest toolchain the library crates build with; each declares it
/// as its `rust-version`. (1.88 stabilised `let` chains, which they use.)
const MSRV: &str = "1.88";

/// The rustup toolchain of [`MSRV`].
fn msrv_toolchain() -> String {
    format!("{MSRV}.0")
}

const ADOPTER: &str = "examples/adopter/Cargo.toml";

/// Every check; `Ok` lists those that could not run here.
pub fn check(config: &Config) -> Result<Skipped, String> {
    let mut failures = Vec::new();
    let mut skipped = Skipped::new();
    failures.extend(docs(config).err());
    failures.extend(publish_dry_run(config).err());
    match msrv(config) {
        Ok(Some(reason)) => skipped.push(reason),
        Ok(None) => {}
        Err(e) => failures.push(e),
    }
    failures.extend(adopter(config).err());
    process::all_passed(failures).map(|()| skipped)
}

fn with_crates(cmd: &mut Command) {
    for krate in LIBRARY_CRATES {
        cmd.arg("-p").arg(package_name(krate));
    }
}

/// Rustdoc with warnings as errors: broken links, and `missing_docs`
/// (each library crate warns on it).
fn docs(config: &Config) -> Result<(), String> {
    let mut cmd = cargo(config);
    cmd.env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--no-deps", "--all-features"]);
    with_crates(&mut cmd);
    process::run(cmd)
}

/// Packages every library crate and builds each from its package, with
/// the workspace's unpublished crates standing in for the registry.
fn publish_dry_run(config: &Config) -> Result<(), String> {
    remove_stale_package_sources()?;
    // Cargo takes a registry crate's build as current whatever its source
    // now holds (a version never changes on a real registry), so the
    // verify builds of an earlier run would be reused too.
    let target_dir = config.target_dir.join("package");
    if target_dir.exists() {
        std::fs::remove_dir_all(&target_dir)
            .map_err(|e| format!("removing {}: {e}", target_dir.display()))?;
    }
    let mut cmd = cargo(config);
    cmd.env("CARGO_TARGET_DIR", &target_dir)
        .args(["publish", "--dry-run", "--allow-dirty"]);
    with_crates(&mut cmd);
    process::run(cmd)
}

/// Cargo verifies each package against the others' packages through a
/// local registry, and unpacks their sources under
/// `$CARGO_HOME/registry/src/-<hash of that registry's path>/`; a version
/// whose directory is already there is not unpacked again. A later run
/// from a checkout at the same path, with changed sources under the same
/// version, would build against the old copy (seen: kheap verified
/// against a ksync without a method kheap calls). So every unpacked copy
/// of the library crates (the `-<hash>` directories are local
/// registries, never crates.io) goes first.
fn remove_stale_package_sources() -> Result<(), String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let Some(sources) = cargo_home.map(|home| home.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&sources) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(unpacked) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for dir in unpacked.flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            if LIBRARY_CRATES
                .iter()
                .any(|krate| name.starts_with(&format!("{}-", package_name(krate))))
            {
                std::fs::remove_dir_all(dir.path())
                    .map_err(|e| format!("removing {}: {e}", dir.path().display()))?;
            }
        }
    }
    Ok(())
}

/// `cargo +MSRV`: the rustup proxy, not the pinned toolchain's cargo.
fn cargo_msrv(config: &Config, manifest: Option<&str>) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&config.root)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env("CARGO_TARGET_DIR", config.target_dir.join("msrv"))
        .arg(format!("+{}", msrv_toolchain()))
        .arg("build");
    if let Some(manifest) = manifest {
        cmd.args(["--manifest-path", manifest]);
    }
    cmd
}

/// Each library crate declares the MSRV, and it builds with it (all
/// features, libraries only) for the host and the kernel target, and so
/// does the adopter. `Ok(Some(reason))` if the builds could not run:
/// rustup could not install the MSRV toolchain (a machine that reaches
/// crates.io but not rustup's servers). The declarations are still
/// checked then, and clippy's `incompatible_msrv` lint, which reads
/// `rust-version`, still refuses library APIs newer than the MSRV.
fn msrv(config: &Config) -> Result<Option<String>, String> {
    let mut failures = Vec::new();
    let declared = format!("rust-version = \"{MSRV}\"");
    for krate in LIBRARY_CRATES {
        let manifest = config.root.join("crates").join(krate).join("Cargo.toml");
        match std::fs::read_to_string(&manifest) {
            Err(e) => failures.push(format!("{}: {e}", manifest.display())),
            Ok(text) if !text.lines().any(|line| line.trim() == declared) => {
                failures.push(format!(
                    "{} must declare `{declared}` (the MSRV the test command checks)",
                    manifest.display()
                ));
            }
            Ok(_) => {}
        }
    }
    if let Err(e) = setup::ensure_toolchain(&msrv_toolchain(), &[]) {
        return process::all_passed(failures).map(|()| {
            Some(format!(
                "the MSRV builds: toolchain {} could not be installed ({e}); \
                 install it with rustup and rerun `cargo xtask test --only crates`",
                msrv_toolchain()
            ))
        });
    }
    for target in [None, Some(KERNEL_TARGET)] {
        let mut cmd = cargo_msrv(config, None);
        cmd.args(["--lib", "--all-features"]);
        with_crates(&mut cmd);
        if let Some(target) = target {
            cmd.args(["--target", target]);
        }
        failures.extend(process::run(cmd).err());
    }
    let mut cmd = cargo_msrv(config, Some(ADOPTER));
    cmd.args(["--target", KERNEL_TARGET]);
    failures.extend(process::run(cmd).err());
    process::all_passed(failures).map(|()| None)
}

/// The adopter, with the pinned toolchain: formatted, clippy-clean on both
/// targets, built for the kernel target, tested on the host.
fn adopter(config: &Config) -> Result<(), String> {
    let target_dir = config.target_dir.join("adopter");
    let runs: [&[&str]; 5] = [
        &["fmt", "--check"],
        &["clippy", "--all-targets", "--", "-D", "warnings"],
        &["clippy", "--target", KERNEL_TARGET, "--", "-D", "warnings"],
        &["build", "--release", "--target", KERNEL_TARGET],
        &["test"],
    ];
    let mut failures = Vec::new();
    for args in runs {
        let mut cmd = cargo(config);
        cmd.env("CARGO_TARGET_DIR", &target_dir)
            .arg(args[0])
            .args(["--manifest-path", ADOPTER])
            .args(&args[1..]);
        failures.extend(process::run(cmd).err());
    }
    process::all_passed(failures)
}
