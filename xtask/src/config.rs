//! Paths and knobs: the workspace root, the target directory (honouring
//! `CARGO_TARGET_DIR`), the pinned toolchain, and the environment-variable
//! knobs with their defaults and validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub const KERNEL_TARGET: &str = "riscv64gc-unknown-none-elf";
pub const KERNEL_PACKAGE: &str = "rvos-kernel";
pub const KERNEL_BINARY: &str = "rvos";

/// Which command the knobs are for (they differ in defaults).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Run,
    Test,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    /// The `channel` of rust-toolchain.toml.
    pub toolchain: String,
    pub smp: u32,
    /// As given (QEMU syntax), and in bytes.
    pub mem: String,
    pub mem_bytes: u64,
    pub log: Option<String>,
    pub extra_args: String,
    /// `CMDS`: the monitor's command list (run and debug only).
    pub cmds: Option<String>,
    pub timeout: Option<Duration>,
    pub gdb_port: u16,
    /// `ICOUNT=1`: QEMU counts instructions (`-icount shift=0`), so one
    /// guest nanosecond is one instruction and timings are deterministic.
    pub icount: bool,
}

impl Config {
    pub fn load(mode: Mode) -> Result<Self, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("xtask must live one level below the workspace root")?
            .to_path_buf();
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => root.join(dir),
            _ => root.join("target"),
        };
        let toolchain = pinned_toolchain(&root)?;
        let smp = match knob("SMP") {
            None => {
                if mode == Mode::Test {
                    4
                } else {
                    2
                }
            }
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|&n| (1..=512).contains(&n))
                .ok_or(format!("SMP={text}: expected a hart count from 1 to 512"))?,
        };
        let mem = knob("MEM").unwrap_or_else(|| "128M".to_string());
        let mem_bytes = parse_mem(&mem)?;
        let log = knob("LOG");
        if let Some(spec) = &log {
            // The kernel's own parser: the syntax is checked before a
            // boot; the target names are the kernel's to check.
            bootargs::LogSpec::parse(spec, bootargs::Level::Info)
                .map_err(|error| format!("LOG={spec}: {error}"))?;
        }
        let timeout = match knob("TIMEOUT") {
            None => (mode == Mode::Test).then_some(Duration::from_secs(120)),
            Some(text) => Some(Duration::from_secs(
                text.parse::<u64>().ok().filter(|&s| s > 0).ok_or(format!(
                    "TIMEOUT={text}: expected a whole number of seconds"
                ))?,
            )),
        };
        let cmds = knob("CMDS");
        if cmds.as_ref().is_some_and(|c| c.contains('"')) {
            return Err("CMDS must not contain `\"` (it is passed as cmds=\"...\")".into());
        }
        let gdb_port = match knob("GDB_PORT") {
            None => 1234,
            Some(text) => text
                .parse()
                .map_err(|_| format!("GDB_PORT={text}: expected a port number"))?,
        };
        let icount = match knob("ICOUNT").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(text) => return Err(format!("ICOUNT={text}: expected 0 or 1")),
        };
        Ok(Self {
            root,
            target_dir,
            toolchain,
            smp,
            mem,
            mem_bytes,
            log,
            extra_args: knob("ARGS").unwrap_or_default(),
            cmds,
            timeout,
            gdb_port,
            icount,
        })
    }

    /// `cmds="..."` from CMDS, for the run and debug commands.
    pub fn cmds_arg(&self) -> Vec<String> {
        self.cmds
            .iter()
            .map(|list| format!("cmds=\"{list}\""))
            .collect()
    }

    /// The kernel's boot arguments: `log=` from LOG, then ARGS, then `extra`.
    pub fn boot_args(&self, extra: &[String]) -> String {
        let mut args: Vec<String> = Vec::new();
        if let Some(level) = &self.log {
            args.push(format!("log={level}"));
        }
        if !self.extra_args.trim().is_empty() {
            args.push(self.extra_args.trim().to_string());
        }
        args.extend(extra.iter().cloned());
        args.join(" ")
    }
}

/// A non-empty environment variable.
fn knob(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_string())
}

fn pinned_toolchain(root: &Path) -> Result<String, String> {
    let path = root.join("rust-toolchain.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .map(|value| value.trim().trim_matches('"').to_string())
        .next()
        .ok_or(format!(
            "{} has no `channel = \"...\"` line",
            path.display()
        ))
}

/// QEMU's `-m` syntax: a number with an optional K/M/G/T suffix (binary
/// units, an optional trailing `B`/`iB`); a bare number means MiB.
pub fn parse_mem(text: &str) -> Result<u64, String> {
    let error = || format!("MEM={text}: expected a size like 128M, 1G or 2G");
    let upper = text.trim().to_ascii_uppercase();
    let body = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (digits, shift) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 10),
        Some('M') => (&body[..body.len() - 1], 20),
        Some('G') => (&body[..body.len() - 1], 30),
        Some('T') => (&body[..body.len() - 1], 40),
        Some(c) if c.is_ascii_digit() => (body, 20),
        _ => return Err(error()),
    };
    let value: u64 = digits.parse().map_err(|_| error())?;
    value
        .checked_mul(1 << shift)
        .filter(|&bytes| bytes > 0)
        .ok_or_else(error)
}

#[cfg(test)]
mod tests {
    use super::parse_mem;

    #[test]
    fn mem_sizes_follow_qemu_syntax() {
        assert_eq!(parse_mem("128M"), Ok(128 << 20));
        assert_eq!(parse_mem("2G"), Ok(2 << 30));
        assert_eq!(parse_mem("2g"), Ok(2 << 30));
        assert_eq!(parse_mem("1GiB"), Ok(1 << 30));
        assert_eq!(parse_mem("512"), Ok(512 << 20));
        assert_eq!(parse_mem("64K"), Ok(64 << 10));
        assert!(parse_mem("").is_err());
        assert!(parse_mem("0").is_err());
        assert!(parse_mem("lots").is_err());
        assert!(parse_mem("1.5G").is_err());
        assert!(parse_mem("99999999999T").is_err());
    }
}
