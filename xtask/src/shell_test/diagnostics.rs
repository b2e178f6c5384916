//! The `shell` step's diagnostics checks, typed at the prompt: fault
//! injection (`inject`), bad pages (`badpage`), leak tracking (`leaks`,
//! with `memdebug=` on) and a short `stress` run.

use super::session::Session;
use super::{field, handed_out, has};
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
    let free = |lines: &[String]| Some(field(lines, "FreePages")? + field(lines, "PagesListed")?);
    if has(&bad, "now isolated") {
        check!(
            s,
            free(&after).zip(free(&before)) == free(&before).map(|f| (f - 1, f)),
            "an isolated free page did not leave the free pages ({:?} -> {:?})",
            free(&before),
            free(&after)
        );
    }
    let again = s.command("badpage 0x84000000\r", "badpage 0x84000000")?;
    check!(
        s,
        has(&again, "already marked bad"),
        "second badpage not recognised"
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

    // A short stress run from the prompt, on two harts.
    let stress = s.command_within("stress 2 2\r", "stress 2 2", Duration::from_secs(120))?;
    check!(s, has(&stress, "stress: PASS"), "stress 2 2 did not pass");
    Ok(())
}
