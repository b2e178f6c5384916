//! The `shell` step's `cmds=` runs that check what the kernel prints at
//! each log level: the default (info) boot log fits on one screen, the
//! `/proc`-style files are Linux's formats byte for byte (from the raw
//! serial bytes, trailing spaces included), and `log=debug,pages:trace`
//! shows the memory subsystem's decisions and only the page allocator's
//! per-operation trace.

use super::BOOT_LIMIT;
use super::procfs;
use crate::config::Config;
use crate::process;
use crate::qemu;
use std::path::Path;

/// Kernel log lines the default boot may print before the prompt: one
/// 24-row terminal after OpenSBI's banner, with room for the prompt.
const SCREEN_LINES: usize = 20;

/// Boots with `cmds=` and `log=` (last, so it wins over `LOG`), expects
/// status 0, and returns the output as the serial line carried it, with
/// the console's CR LF turned into LF.
fn run(config: &Config, image: &Path, log: &str, cmds: &str) -> Result<String, String> {
    let args = config.boot_args(&[format!("cmds=\"{cmds}\""), format!("log={log}")]);
    let run = process::run_limited(qemu::command(config, image, &args), false, Some(BOOT_LIMIT))?;
    let status = run.status.and_then(|s| s.code());
    if status != Some(0) {
        return Err(format!(
            "log={log} cmds=\"{cmds}\": QEMU status {status:?}; output tail:\n{}",
            run.tail(30)
        ));
    }
    Ok(run.output.replace("\r\n", "\n"))
}

/// The text `command` printed: from the line after `rvos> command` to the
/// next prompt.
fn output_of<'a>(text: &'a str, command: &str) -> Result<&'a str, String> {
    let marker = format!("rvos> {command}\n");
    let start = text
        .find(&marker)
        .map(|at| at + marker.len())
        .ok_or(format!("`{command}` was not echoed"))?;
    let end = text[start..]
        .find("rvos> ")
        .map_or(text.len(), |n| start + n);
    Ok(&text[start..end])
}

/// The info-level boot log is short; `meminfo`, `buddyinfo` and
/// `slabinfo` are Linux's formats exactly; `meminfo -v` adds only
/// explanations after the same lines.
pub(super) fn info_boot_fits_a_screen_and_formats_are_exact(
    config: &Config,
    image: &Path,
) -> Result<(), String> {
    let cmds = "meminfo; buddyinfo; slabinfo; meminfo -v; shutdown";
    let text = run(config, image, "info", cmds)?;
    let boot: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with('['))
        .take_while(|l| !l.starts_with("rvos> "))
        .collect();
    if boot.is_empty() || boot.len() > SCREEN_LINES {
        return Err(format!(
            "the info boot log has {} lines, expected 1 to {SCREEN_LINES}:\n{}",
            boot.len(),
            boot.join("\n")
        ));
    }
    if let Some(line) = boot
        .iter()
        .find(|l| l.contains("] DEBUG ") || l.contains("] TRACE "))
    {
        return Err(format!("log=info printed {line:?}"));
    }
    let meminfo = procfs::parse_meminfo(output_of(&text, "meminfo")?, true)?;
    for key in ["MemTotal", "MemFree", "MemAvailable"] {
        if procfs::mem_value(&meminfo, key).is_none() {
            return Err(format!("meminfo has no {key}"));
        }
    }
    if meminfo.iter().any(|l| {
        !l.kb
            && ![
                "HeapLiveBlocks",
                "AllocFailures",
                "ShellAllocs",
                "ShellPageRuns",
            ]
            .contains(&l.key.as_str())
    }) {
        return Err("a meminfo size is not in kB".into());
    }
    let zones = procfs::parse_buddyinfo(output_of(&text, "buddyinfo")?, true)?;
    let free = procfs::mem_value(&meminfo, "MemFree").unwrap_or(0) / 4;
    let summed: u64 = zones.iter().map(procfs::Zone::free_pages).sum();
    // The two commands ran a moment apart: the heap may have moved a page.
    if summed.abs_diff(free) > 16 {
        return Err(format!(
            "buddyinfo sums to {summed} pages, meminfo's MemFree is {free}"
        ));
    }
    let rows = procfs::parse_slabinfo(output_of(&text, "slabinfo")?, true)?;
    if rows.is_empty() {
        return Err("slabinfo lists no cache with the default alloc=slab".into());
    }
    let verbose = output_of(&text, "meminfo -v")?;
    let explained = verbose.lines().count() == meminfo.len()
        && verbose.lines().zip(&meminfo).all(|(line, plain)| {
            line.strip_prefix(plain.key.as_str())
                .and_then(|rest| rest.split_once("  "))
                .is_some()
                && line.len() > plain.key.len() + 20
        });
    if !explained {
        return Err(format!(
            "meminfo -v is not meminfo's lines with explanations:\n{verbose}"
        ));
    }
    println!(
        "xtask: shell: the info boot log is {} lines; meminfo ({} keys), buddyinfo and slabinfo \
         ({} caches) are Linux's formats byte for byte",
        boot.len(),
        meminfo.len(),
        rows.len()
    );
    Ok(())
}

/// `log=debug,pages:trace`: the boot and a few commands log the decisions
/// of the memory subsystem at debug, and the trace is the page
/// allocator's alone.
pub(super) fn debug_and_trace_show_the_memory_subsystem(
    config: &Config,
    image: &Path,
) -> Result<(), String> {
    let log = "debug,pages:trace";
    let text = run(config, image, log, "alloc 100; pages 2; shutdown")?;
    let mut expected = vec![
        (
            "boot arguments",
            "] DEBUG args: parsed log=debug,pages:trace; ",
        ),
        ("layout detail", "] DEBUG layout: reserved "),
        ("page-table mappings", "] DEBUG paging:   0x"),
        ("PLIC routing", "] DEBUG plic: irq "),
        ("slab grow", "] DEBUG heap: slab grow: "),
        ("page allocations", "] TRACE pages: alloc 2 page(s) at 0x"),
    ];
    if config.smp > 1 {
        expected.push(("hart bring-up", "] DEBUG smp: hart "));
    }
    for (what, needle) in expected {
        if !text.contains(needle) {
            return Err(format!(
                "log={log}: no {what} line ({needle:?}); output:\n{}",
                tail(&text, 40)
            ));
        }
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("] TRACE ") && !l.contains("] TRACE pages: "))
    {
        return Err(format!("log={log}: a trace line not from pages: {line:?}"));
    }
    println!(
        "xtask: shell: log={log}: debug shows args, layout, page table, harts, PLIC and slab \
         growth; trace only the page allocator"
    );
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_s_output_ends_at_the_next_prompt() {
        let text =
            "boot\nrvos> meminfo\nMemTotal:  1 kB\nrvos> buddyinfo\nNode 0\nrvos> shutdown\n";
        assert_eq!(output_of(text, "meminfo"), Ok("MemTotal:  1 kB\n"));
        assert_eq!(output_of(text, "buddyinfo"), Ok("Node 0\n"));
        assert!(output_of(text, "slabinfo").is_err());
    }
}
