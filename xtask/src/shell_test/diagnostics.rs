//! The `shell` step's diagnostics checks, typed at the prompt: fault
//! injection (`inject`), bad pages (`badpage`), leak tracking (`leaks`,
//! with `memdebug=` on), the reports' rate limit, and a short `stress`
//! run whose failure reports it limits.

use super::session::Session;
use super::{field, handed_out, has, kb_to_pages};
use std::time::Duration;

/// `inject`, `badpage`, `leaks` and a short `stress` from the prompt.
pub(super) fn diagnostics(s: &mut Session, memdebug: bool) -> Result<(), String> {
    // fail-nth: exactly the next heap allocation fails, the one after works.
    let armed = s.command("inject slab nth 1\r", "inject slab nth 1")?;
    check!(
        s,
        has(&armed, "fail-nth armed"),
        "inject slab nth 1 not armed"
    );
    let failed = s.command("alloc 64\r", "alloc 64")?;
    check!(
        s,
        has(&failed, "the kernel heap refused 64 bytes"),
        "the injected failure did not reach `alloc`"
    );
    let shown = s.command("inject\r", "inject")?;
    check!(
        s,
        shown
            .iter()
            .any(|l| l.starts_with("failslab") && l.contains("injected 1")),
        "inject does not count the injected failure"
    );
    let works = s.command("alloc 64\r", "alloc 64")?;
    let Some(block) = handed_out(&works) else {
        return Err(s.fail("alloc 64 after the injected failure did not succeed"));
    };
    s.command(&format!("free {block}\r"), &format!("free {block}"))?;

    // badpage: a page is taken out of service once; a non-RAM address is refused.
    let before = s.command("meminfo\r", "meminfo")?;
    let bad = s.command("badpage 0x84000000\r", "badpage 0x84000000")?;
    check!(
        s,
        has(&bad, "now isolated") || has(&bad, "in use; isolated when"),
        "badpage 0x84000000 was not taken"
    );
    let after = s.command("meminfo\r", "meminfo")?;
    // Free pages are those in the allocator plus those parked in the
    // harts' lists (which badpage gives back to the allocator first).
    let free = |lines: &[String]| {
        Some(kb_to_pages(
            field(lines, "MemFree")? + field(lines, "PageLists")?,
        ))
    };
    if has(&bad, "now isolated") {
        check!(
            s,
            free(&after).zip(free(&before)) == free(&before).map(|f| (f - 1, f)),
            "an isolated free page did not leave the free pages ({:?} -> {:?})",
            free(&before),
            free(&after)
        );
    }
    let corrupted = field(&after, "HardwareCorrupted");
    check!(
        s,
        corrupted.zip(field(&before, "HardwareCorrupted")) == corrupted.map(|kb| (kb, kb - 4)),
        "HardwareCorrupted did not grow by the page's 4 kB ({:?} -> {corrupted:?})",
        field(&before, "HardwareCorrupted")
    );
    // Any address in the page names the page, every time.
    let again = s.command("badpage 0x84000123\r", "badpage 0x84000123")?;
    check!(
        s,
        has(
            &again,
            "page 0x84000000 (holding 0x84000123): already marked bad"
        ),
        "a second badpage, inside the page, was not recognised as that page: {again:?}"
    );
    let outside = s.command("badpage 0x10\r", "badpage 0x10")?;
    check!(
        s,
        has(&outside, "OutOfRange") || has(&outside, "outside"),
        "badpage of a non-RAM address was not refused"
    );

    // leaks: a checkpoint, a block allocated after it, named by the report.
    if memdebug {
        s.command("leaks mark\r", "leaks mark")?;
        let kept = s.command("alloc 100\r", "alloc 100")?;
        check!(s, handed_out(&kept).is_some(), "alloc 100 failed");
        let leaks = s.command("leaks\r", "leaks")?;
        check!(
            s,
            has(&leaks, ": 1 blocks, 100 bytes"),
            "leaks does not list the block allocated after the checkpoint"
        );
    } else {
        let leaks = s.command("leaks\r", "leaks")?;
        check!(
            s,
            has(&leaks, "boot with memdebug=track"),
            "leaks without memdebug does not say what to boot with"
        );
    }

    rate_limit(s)?;

    // A short stress run from the prompt, on two harts. Its injected
    // failures meet the rate limit: every report it logged and every one
    // it suppressed (summed up in `N reports suppressed` lines) is in the
    // limit's totals, which account for every failed allocation.
    let before = totals(&s.command("log\r", "log")?);
    let stress = s.command_within("stress 2 2\r", "stress 2 2", Duration::from_secs(120))?;
    check!(s, has(&stress, "stress: PASS"), "stress 2 2 did not pass");
    let after = totals(&s.command("log\r", "log")?);
    let reports = stress
        .iter()
        .filter(|l| l.contains("] WARN  oom: ") || l.contains("] ERROR memdebug: "))
        .count() as u64;
    let suppressed: u64 = stress.iter().filter_map(|l| suppressed_in(l)).sum();
    let accounted = match (before, after) {
        (Some((_, _, l0, s0)), Some((_, burst, l1, s1))) => {
            // The run is shorter than a window, but may straddle two.
            reports == l1 - l0 && suppressed == s1 - s0 && reports <= 2 * burst
        }
        _ => false,
    };
    check!(
        s,
        accounted,
        "stress 2 2 logged {reports} reports and said {suppressed} were suppressed; the rate \
         limit's totals went from {before:?} to {after:?}"
    );
    let failures = field(&s.command("meminfo\r", "meminfo")?, "AllocFailures");
    let exact = match (after, failures) {
        // Without memdebug every report is an OOM report, one per failure.
        (Some((_, _, logged, suppressed)), Some(failures)) if !memdebug => {
            logged + suppressed == failures
        }
        (Some((_, _, logged, suppressed)), Some(failures)) => logged + suppressed >= failures,
        _ => false,
    };
    check!(
        s,
        exact,
        "the rate limit's totals {after:?} do not account for AllocFailures {failures:?}"
    );
    Ok(())
}

/// `log`'s rate-limit line: (seconds, burst, logged, suppressed).
fn totals(lines: &[String]) -> Option<(u64, u64, u64, u64)> {
    lines.iter().find_map(|l| {
        let rest = l.strip_prefix("reports: at most ")?;
        let (burst, rest) = rest.split_once(" per ")?;
        let (seconds, rest) = rest.split_once(" s ")?;
        let (_, counts) = rest.split_once("; ")?;
        let (logged, rest) = counts.split_once(" logged, ")?;
        let suppressed = rest.strip_suffix(" suppressed since boot")?;
        Some((
            seconds.parse().ok()?,
            burst.parse().ok()?,
            logged.parse().ok()?,
            suppressed.parse().ok()?,
        ))
    })
}

/// `N` of a `WARN  ratelimit: N reports suppressed` line.
fn suppressed_in(line: &str) -> Option<u64> {
    line.split_once("] WARN  ratelimit: ")?
        .1
        .strip_suffix(" reports suppressed")?
        .parse()
        .ok()
}

/// The rate limit, made tight at run time: the first failure of a window
/// is reported, the next suppressed, and the monitor says so after that
/// command; the limit is put back to Linux's defaults.
fn rate_limit(s: &mut Session) -> Result<(), String> {
    let set = s.command("log ratelimit 3600 1\r", "log ratelimit 3600 1")?;
    check!(
        s,
        has(&set, "reports: at most 1 per 3600 s"),
        "log ratelimit 3600 1 was not taken: {set:?}"
    );
    let mut reported = Vec::new();
    for _ in 0..2 {
        s.command("inject slab nth 1\r", "inject slab nth 1")?;
        let failed = s.command("alloc 64\r", "alloc 64")?;
        reported.push((
            has(&failed, "] WARN  oom: out of memory: request of 64 bytes"),
            failed.iter().filter_map(|l| suppressed_in(l)).sum::<u64>(),
        ));
    }
    let back = s.command("log ratelimit 5 10\r", "log ratelimit 5 10")?;
    check!(
        s,
        reported == [(true, 0), (false, 1)] && has(&back, "reports: at most 10 per 5 s"),
        "with 1 report per window, two failures gave (report logged, suppressed) {reported:?}, \
         expected the first logged and `1 reports suppressed` after the second"
    );
    Ok(())
}
