//! The `shell` step's checks of the monitor's messages: an unknown
//! command, a bad number and a value out of range are each reported in
//! one line naming what is accepted, followed by the usage; `help
//! <command>` prints that command's usage.

use super::has;
use super::session::Session;

/// Typed errors and `help <command>`.
pub(super) fn messages(s: &mut Session) -> Result<(), String> {
    // Errors: unknown command, bad number (with the usage line).
    let unknown = s.command("frobnicate\r", "frobnicate")?;
    check!(
        s,
        has(&unknown, "unknown command `frobnicate`"),
        "unknown command not reported"
    );
    let bad = s.command("alloc 12q\r", "alloc 12q")?;
    check!(
        s,
        has(&bad, "alloc: `12q` is not a number") && has(&bad, "usage: alloc <size> [align]"),
        "a bad number was not reported with the usage line"
    );
    // Usage errors name what is accepted; `help <command>` is that
    // command's usage.
    let range = s.command("alloc 0\r", "alloc 0")?;
    check!(
        s,
        has(
            &range,
            "alloc: `0` is out of range: expected 1 to 1073741824"
        ),
        "alloc 0 does not name the accepted sizes: {range:?}"
    );
    let level = s.command("log verbose\r", "log verbose")?;
    check!(
        s,
        has(&level, "expected off, error, warn, info, debug, trace"),
        "log verbose does not list the levels: {level:?}"
    );
    let help = s.command("help alloc\r", "help alloc")?;
    check!(
        s,
        help.first().map(String::as_str) == Some("usage: alloc <size> [align]")
            && !has(&help, "meminfo"),
        "help alloc is not alloc's usage: {help:?}"
    );
    Ok(())
}
