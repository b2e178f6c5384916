//! The `shell` test step: boots the normal kernel image in QEMU with a
//! piped serial console, TYPES commands byte by byte at the `rvos>`
//! prompt (as a person would, escapes and control keys included), waits
//! for each next prompt, and checks every command's output against the
//! others (`alloc` then `meminfo` shows the bytes, `buddyinfo` sums to
//! `meminfo`'s free pages, a double free is diagnosed and the next
//! command still runs, `translate` of a `.text` address is R-X ...).
//! `meminfo`, `buddyinfo` and `slabinfo` are read with a `/proc` reader's
//! rules (`procfs`). Then the `cmds=` mode runs lists without a prompt:
//! the default boot log's length, the formats byte for byte, and the
//! debug and trace levels (`levels`).
//!
//! Every wait has a time limit; a failure names the check and shows the
//! end of the transcript as the terminal would display it.

/// Fails the session's check with a message and the transcript's end.
macro_rules! check {
    ($session:expr, $cond:expr, $($what:tt)+) => {
        if !$cond {
            return Err($session.fail(&format!($($what)+)));
        }
    };
}

mod diagnostics;
mod levels;
mod messages;
mod procfs;
mod session;

use crate::config::Config;
use crate::kernel::{self, Flavour};
use crate::process;
use crate::qemu;
use diagnostics::diagnostics;
use messages::messages;
use session::{COMMAND_LIMIT, Session};
use std::thread;
use std::time::{Duration, Instant};

const BOOT_LIMIT: Duration = Duration::from_secs(60);

/// The value of `name` in `meminfo` output (kB, or a count), read as a
/// `/proc/meminfo` reader would; `None` if the output does not read.
fn field(lines: &[String], name: &str) -> Option<u64> {
    let text = lines.join("\n");
    procfs::mem_value(&procfs::parse_meminfo(&text, false).ok()?, name)
}

/// Pages of 4 KiB in `kb` kilobytes.
fn kb_to_pages(kb: u64) -> u64 {
    kb / 4
}

fn has(lines: &[String], text: &str) -> bool {
    lines.iter().any(|l| l.contains(text))
}

/// The first hex address after `#N ` in an `alloc`/`pages` reply.
fn handed_out(lines: &[String]) -> Option<String> {
    lines.iter().find_map(|line| {
        let rest = line.strip_prefix('#')?;
        let address = rest.split_whitespace().nth(1)?.trim_end_matches(':');
        address.starts_with("0x").then(|| address.to_string())
    })
}

/// `pagealloc=` x `alloc=` x `memdebug=` of the sessions: the default,
/// each other algorithm once (their double-free detection differs), and
/// the debug layers on (they take over double-free detection, and `leaks`
/// needs their call sites).
const CONFIGS: [(&str, &str, &str); 4] = [
    ("buddy", "slab", "off"),
    ("bitmap", "tlsf", "off"),
    ("buddy", "buddy", "off"),
    ("buddy", "slab", "all"),
];

/// Runs the interactive session once per [`CONFIGS`] pair, then the
/// `cmds=` checks.
pub fn shell_tests(config: &Config) -> Result<(), String> {
    let image = kernel::build(config, Flavour::Normal)?;
    for (page_allocator, heap, memdebug) in CONFIGS {
        let args = [
            "log=warn".to_string(),
            format!("pagealloc={page_allocator}"),
            format!("alloc={heap}"),
            format!("memdebug={memdebug}"),
        ];
        interactive(config, &image, &args, memdebug != "off").map_err(|e| {
            format!("pagealloc={page_allocator} alloc={heap} memdebug={memdebug}: {e}")
        })?;
    }
    cmds_mode(config, &image)
}

fn interactive(
    config: &Config,
    image: &std::path::Path,
    args: &[String],
    memdebug: bool,
) -> Result<(), String> {
    let mut s = Session::start(config, image, args)?;
    s.wait_prompts(1, BOOT_LIMIT, "the first prompt after boot")?;

    // meminfo reads as /proc/meminfo; alloc then meminfo shows the bytes
    // (2 KiB: a whole number of kB whatever the bytes before).
    let before = s.command("meminfo\r", "meminfo")?;
    if let Err(e) = procfs::parse_meminfo(&before.join("\n"), false) {
        return Err(s.fail(&format!("meminfo does not read as /proc/meminfo: {e}")));
    }
    let live_before = field(&before, "HeapLive");
    check!(s, live_before.is_some(), "meminfo has no HeapLive line");
    let reply = s.command("alloc 2048\r", "alloc 2048")?;
    let Some(block) = handed_out(&reply) else {
        return Err(s.fail("alloc 2048 printed no `#1 0x...` line"));
    };
    let after = s.command("meminfo\r", "meminfo")?;
    check!(
        s,
        field(&after, "HeapLive") == live_before.map(|kb| kb + 2),
        "HeapLive went from {live_before:?} to {:?} kB, expected +2",
        field(&after, "HeapLive")
    );
    check!(
        s,
        field(&after, "ShellAlloc") == Some(2) && field(&after, "ShellAllocs") == Some(1),
        "ShellAlloc is not 2 kB in 1 block"
    );
    let (total, free, available) = (
        field(&after, "MemTotal"),
        field(&after, "MemFree"),
        field(&after, "MemAvailable"),
    );
    check!(
        s,
        matches!((total, free, available), (Some(t), Some(f), Some(a)) if f <= a && a <= t),
        "meminfo: expected MemFree <= MemAvailable <= MemTotal, got {free:?}, {available:?}, {total:?}"
    );

    // buddyinfo reads as /proc/buddyinfo and sums to meminfo's MemFree.
    let buddy = s.command("buddyinfo\r", "buddyinfo")?;
    let zones = match procfs::parse_buddyinfo(&buddy.join("\n"), false) {
        Ok(zones) => zones,
        Err(e) => return Err(s.fail(&format!("buddyinfo does not read: {e}"))),
    };
    let sum: u64 = zones.iter().map(procfs::Zone::free_pages).sum();
    check!(
        s,
        Some(sum) == field(&after, "MemFree").map(kb_to_pages),
        "buddyinfo sums to {sum} pages, meminfo says MemFree {:?} kB",
        field(&after, "MemFree")
    );

    // Free, then a double free: diagnosed, and the kernel stays up.
    let freed = s.command(&format!("free {block}\r"), &format!("free {block}"))?;
    check!(s, has(&freed, "freed #1"), "free {block} did not confirm");
    let again = s.command(&format!("free {block}\r"), &format!("free {block}"))?;
    check!(
        s,
        has(&again, "double free") && has(&again, "DoubleFree"),
        "a second free of {block} was not diagnosed as a double free by the allocator"
    );
    if memdebug {
        check!(
            s,
            has(&again, "memdebug byte layer") && has(&again, "double free of"),
            "memdebug did not report the double free of {block}"
        );
    }
    let up = s.command("uptime\r", "uptime")?;
    check!(
        s,
        has(&up, "up "),
        "the command after a double free did not run"
    );
    let restored = s.command("meminfo\r", "meminfo")?;
    check!(
        s,
        field(&restored, "HeapLive") == live_before,
        "HeapLive did not return to {live_before:?} after the free"
    );

    // Pages by hand: a partial free is refused in one line naming the
    // count; then the free and its double free.
    let pages = s.command("pages 3\r", "pages 3")?;
    let Some(block) = handed_out(&pages) else {
        return Err(s.fail("pages 3 printed no `#2 0x...` line"));
    };
    let partial = s.command(
        &format!("freepages {block} 2\r"),
        &format!("freepages {block} 2"),
    )?;
    check!(
        s,
        partial.len() == 1 && partial[0].contains("not 2: give its count, 3"),
        "a partial freepages was not refused in one line naming the count: {partial:?}"
    );
    let freed = s.command(
        &format!("freepages {block} 3\r"),
        &format!("freepages {block} 3"),
    )?;
    check!(
        s,
        has(&freed, "freed #2"),
        "freepages {block} 3 did not confirm"
    );
    let again = s.command(
        &format!("freepages {block} 3\r"),
        &format!("freepages {block} 3"),
    )?;
    check!(
        s,
        has(&again, "DoubleFree"),
        "the page allocator did not report the double free"
    );

    // translate of a .text address shows R-X.
    let map = s.command("vmmap\r", "vmmap")?;
    let Some(text) = map
        .iter()
        .find(|l| l.ends_with(".text"))
        .and_then(|l| l.split('-').next())
    else {
        return Err(s.fail("vmmap shows no .text mapping"));
    };
    let text = text.to_string();
    let walk = s.command(&format!("translate {text}\r"), &format!("translate {text}"))?;
    check!(
        s,
        walk.iter()
            .any(|l| l.contains("=> physical") && l.contains("R-X") && l.contains(".text")),
        "translate {text} does not end in an R-X .text leaf"
    );
    check!(
        s,
        walk.iter().filter(|l| l.contains(" table 0x")).count() >= 1,
        "no walk steps shown"
    );

    messages(&mut s)?;

    // Line editing over the wire: backspace, Ctrl-U, left arrow, history.
    let edited = s.command("memXX\x7f\x7finfo\r", "meminfo")?;
    check!(
        s,
        has(&edited, "MemTotal:"),
        "backspace-edited meminfo did not run"
    );
    let killed = s.command("garbage\x15uptime\r", "uptime")?;
    check!(s, has(&killed, "up "), "Ctrl-U did not clear the line");
    let moved = s.command("uptme\x1b[D\x1b[Di\r", "uptime")?;
    check!(
        s,
        has(&moved, "up "),
        "left arrow + insert did not produce `uptime`"
    );
    s.command("buddyinfo\r", "buddyinfo")?;
    s.command("uptime\r", "uptime")?;
    let recalled = s.command("\x1b[A\x1b[A\r", "buddyinfo")?;
    check!(
        s,
        has(&recalled, "Node 0, zone"),
        "Up Up did not recall buddyinfo"
    );

    // The remaining commands answer sensibly.
    let frag = s.command("frag\r", "frag")?;
    check!(
        s,
        has(&frag, "extfrag_index") && has(&frag, "one character ="),
        "frag lacks indices or the map"
    );
    let slab = s.command("slabinfo\r", "slabinfo")?;
    match procfs::parse_slabinfo(&slab.join("\n"), false) {
        Ok(rows) => check!(
            s,
            rows.is_empty() != args.iter().any(|a| a == "alloc=slab"),
            "slabinfo has {} rows with {}",
            rows.len(),
            args.join(" ")
        ),
        Err(e) => return Err(s.fail(&format!("slabinfo does not read: {e}"))),
    }
    // The shell waits in `wfi`: every hart's timer keeps ticking meanwhile.
    let ticks = |lines: &[String]| -> Vec<(String, u64)> {
        lines
            .iter()
            .filter(|l| l.contains(" online "))
            .filter_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                Some((words.first()?.to_string(), words.get(3)?.parse().ok()?))
            })
            .collect()
    };
    let first = s.command("harts\r", "harts")?;
    thread::sleep(Duration::from_millis(500));
    let harts = s.command("harts\r", "harts")?;
    let (before, after) = (ticks(&first), ticks(&harts));
    check!(
        s,
        before.len() == after.len()
            && before
                .iter()
                .zip(&after)
                .all(|((h0, t0), (h1, t1))| h0 == h1 && t1 > t0),
        "timer ticks did not advance on every hart while the shell waited: {before:?} -> {after:?}"
    );
    // `deepest` and `trap-deepest`: "used/sizeK", painted stacks in use.
    let depth_in_use = |word: Option<&str>| {
        word.and_then(|w| w.strip_suffix('K')?.split_once('/'))
            .and_then(|(used, size)| Some((used.parse::<u64>().ok()?, size.parse::<u64>().ok()?)))
            .is_some_and(|(used, size)| used > 0 && used <= size)
    };
    check!(
        s,
        harts.iter().filter(|l| l.contains(" online ")).all(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            depth_in_use(words.get(5).copied()) && depth_in_use(words.get(6).copied())
        }),
        "harts does not show every hart's stack and trap-stack depth as used/sizeK: {harts:?}"
    );
    let online = harts.iter().filter(|l| l.contains(" online ")).count();
    check!(
        s,
        online == config.smp as usize,
        "harts lists {online} online harts, QEMU has {}",
        config.smp
    );
    let bench = s.command("bench tlsf\r", "bench tlsf")?;
    check!(
        s,
        bench
            .iter()
            .any(|l| l.starts_with("tlsf ") && l.split_whitespace().count() == 5),
        "bench tlsf printed no result row"
    );
    let level = s.command("log\r", "log")?;
    check!(
        s,
        has(&level, "log level: warn") && has(&level, "reports: at most 10 per 5 s"),
        "log does not show the boot level and the reports' rate limit: {level:?}"
    );

    diagnostics(&mut s, memdebug)?;

    // shutdown ends QEMU with status 0.
    s.type_keys(b"shutdown\r")?;
    let deadline = Instant::now() + COMMAND_LIMIT;
    loop {
        match s.child.try_wait() {
            Ok(Some(status)) if status.code() == Some(0) => break,
            Ok(Some(status)) => return Err(s.fail(&format!("shutdown ended QEMU with {status}"))),
            _ if Instant::now() >= deadline => {
                return Err(s.fail("QEMU still runs after `shutdown`"));
            }
            _ => thread::sleep(Duration::from_millis(20)),
        }
    }
    println!(
        "xtask: shell: {}: interactive session ok (typed over the serial line, every check passed)",
        args.join(" ")
    );
    Ok(())
}

fn cmds_mode(config: &Config, image: &std::path::Path) -> Result<(), String> {
    levels::info_boot_fits_a_screen_and_formats_are_exact(config, image)?;
    let (list, code, must_contain) = (
        "uptime; nosuchcommand",
        6,
        "unknown command `nosuchcommand`",
    );
    let args = config.boot_args(&[format!("cmds=\"{list}\"")]);
    let run = process::run_limited(qemu::command(config, image, &args), false, Some(BOOT_LIMIT))?;
    let status = run.status.and_then(|s| s.code());
    if status != Some(code) || !run.output.contains(must_contain) {
        return Err(format!(
            "cmds=\"{list}\": expected status {code} and {must_contain:?}, got {status:?}; output tail:\n{}",
            run.tail(30)
        ));
    }
    println!("xtask: shell: cmds=\"{list}\" ends with status {code}");
    levels::debug_and_trace_show_the_memory_subsystem(config, image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_addresses_parse() {
        let lines: Vec<String> = ["HeapLive:           1000 kB", "HeapLiveBlocks:       12"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(field(&lines, "HeapLive"), Some(1000));
        assert_eq!(field(&lines, "HeapLiveBlocks"), Some(12));
        assert_eq!(field(&lines, "Heap"), None);
        let reply = ["#3 0xffffffc080301000: 3 page(s)".to_string()];
        assert_eq!(handed_out(&reply).as_deref(), Some("0xffffffc080301000"));
    }
}
