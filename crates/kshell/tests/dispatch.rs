//! Numbers, arguments and the dispatcher's messages.

use std::fmt::Write;
use std::string::String;

use kshell::{
    ArgError, Args, Command, CommandError, Outcome, dispatch, dispatch_all, parse_number,
};

#[test]
fn numbers_in_every_notation() {
    assert_eq!(parse_number("42"), Ok(42));
    assert_eq!(parse_number("0x8020_0000"), Ok(0x8020_0000));
    assert_eq!(parse_number("0b101"), Ok(5));
    assert_eq!(parse_number("4K"), Ok(4096));
    assert_eq!(parse_number("2m"), Ok(2 << 20));
    assert_eq!(parse_number("1G"), Ok(1 << 30));
    assert_eq!(parse_number("0x1G"), Err(ArgError::NotANumber("0x1G")));
    for bad in [
        "",
        "x",
        "0x",
        "12a",
        "_1",
        "-1",
        "18446744073709551616",
        "17179869184G",
    ] {
        assert_eq!(parse_number(bad), Err(ArgError::NotANumber(bad)), "{bad}");
    }
}

#[test]
fn args_report_missing_extra_and_range() {
    let mut args = Args::new("  64   0x1000 junk ");
    assert_eq!(args.number("size"), Ok(64));
    assert_eq!(args.number_in("align", 1..=4096), Ok(4096));
    assert_eq!(args.end(), Err(ArgError::Unexpected("junk")));
    assert_eq!(args.number("size"), Err(ArgError::Missing("size")));
    assert_eq!(
        Args::new("9000").number_in("align", 1..=4096),
        Err(ArgError::OutOfRange {
            word: "9000",
            min: 1,
            max: 4096
        })
    );
    assert_eq!(Args::new("").number_or(8), Ok(8));
    assert_eq!(Args::new("").number_in_or(8, 1..=16), Ok(8));
    assert_eq!(
        Args::new("17").number_in_or(8, 1..=16),
        Err(ArgError::OutOfRange {
            word: "17",
            min: 1,
            max: 16
        })
    );
    assert_eq!(
        Args::new("all").choice(&["mark", "all"], "mark or all"),
        Ok(Some("all"))
    );
    assert_eq!(
        Args::new("some").choice(&["mark", "all"], "mark or all"),
        Err(ArgError::Invalid {
            word: "some",
            expected: "mark or all"
        })
    );
}

#[test]
fn every_argument_error_names_what_is_accepted() {
    let text = |error: ArgError<'_>| error.to_string();
    assert_eq!(
        text(ArgError::OutOfRange {
            word: "0",
            min: 1,
            max: 3600
        }),
        "`0` is out of range: expected 1 to 3600"
    );
    assert_eq!(
        text(ArgError::OutOfRange {
            word: "2",
            min: 3,
            max: 3
        }),
        "`2` is out of range: expected 3"
    );
    assert_eq!(
        text(ArgError::OutOfRange {
            word: "0",
            min: 1,
            max: u64::MAX
        }),
        "`0` is out of range: expected 1 or more"
    );
    assert_eq!(
        text(ArgError::Invalid {
            word: "verbose",
            expected: "off, error, warn, info, debug or trace"
        }),
        "`verbose`: expected off, error, warn, info, debug or trace"
    );
}

struct Heap {
    allocated: u64,
}

fn alloc<'a>(
    heap: &mut Heap,
    args: &mut Args<'a>,
    out: &mut dyn Write,
) -> Result<(), CommandError<'a>> {
    let size = args.number("size")?;
    args.end()?;
    if size == 0 {
        return Err(CommandError::Failed("zero-size request refused"));
    }
    if size == 13 {
        writeln!(out, "alloc: 13 bytes is unlucky; ask for 12 or 14")?;
        return Err(CommandError::Reported);
    }
    heap.allocated += size;
    writeln!(out, "allocated {size}")?;
    Ok(())
}

const COMMANDS: &[Command<Heap>] = &[
    Command {
        name: "alloc",
        usage: "<size>",
        help: "allocate bytes",
        details: "size: decimal, 0x hex or 0b binary\nK, M, G: binary units",
        run: alloc,
    },
    Command {
        name: "inject",
        usage: "[pages|slab] [off | nth <n> | <percent>]",
        help: "fault injection",
        details: "",
        run: alloc,
    },
];

fn run(line: &str) -> (Outcome, String, u64) {
    let mut heap = Heap { allocated: 0 };
    let mut out = String::new();
    let outcome = dispatch(COMMANDS, &mut heap, line, &mut out).unwrap();
    (outcome, out, heap.allocated)
}

#[test]
fn dispatcher_runs_and_explains_failures() {
    assert_eq!(
        run("alloc 4K"),
        (Outcome::Ran, "allocated 4096\n".into(), 4096)
    );
    assert_eq!(run("   "), (Outcome::Nothing, "".into(), 0));
    assert_eq!(run("# comment"), (Outcome::Nothing, "".into(), 0));
    assert_eq!(
        run("allco 1").1,
        "unknown command `allco` (type `help` for the list)\n"
    );
    assert_eq!(
        run("alloc").1,
        "alloc: missing <size>\nusage: alloc <size>\n"
    );
    assert_eq!(
        run("alloc 12q").1,
        "alloc: `12q` is not a number\nusage: alloc <size>\n"
    );
    assert_eq!(
        run("alloc 1 2").1,
        "alloc: unexpected argument `2`\nusage: alloc <size>\n"
    );
    assert_eq!(
        run("alloc 0"),
        (
            Outcome::Failed,
            "alloc: zero-size request refused\n".into(),
            0
        )
    );
    assert_eq!(
        run("alloc 13"),
        (
            Outcome::Failed,
            "alloc: 13 bytes is unlucky; ask for 12 or 14\n".into(),
            0
        )
    );
    // A synopsis too long for the column gets a line of its own; the
    // others line up after the longest one that fits.
    assert_eq!(
        run("help").1,
        "  alloc <size>    allocate bytes\n\
         \x20 inject [pages|slab] [off | nth <n> | <percent>]\n\
         \x20                 fault injection\n\
         \x20 help [command]  this list; `help <command>` for one command\n"
    );
}

#[test]
fn help_with_a_command_shows_its_usage_and_details() {
    assert_eq!(
        run("help alloc"),
        (
            Outcome::Ran,
            "usage: alloc <size>\nallocate bytes\nsize: decimal, 0x hex or 0b binary\n\
             K, M, G: binary units\n"
                .into(),
            0
        )
    );
    assert_eq!(
        run("help inject").1,
        "usage: inject [pages|slab] [off | nth <n> | <percent>]\nfault injection\n"
    );
    assert_eq!(
        run("help frob"),
        (
            Outcome::Failed,
            "help: unknown command `frob` (type `help` for the list)\n".into(),
            0
        )
    );
    assert_eq!(
        run("help help").1,
        "usage: help [command]\nthe commands, or one command's usage and details\n"
    );
}

#[test]
fn command_lists_run_in_order_and_count_failures() {
    let mut heap = Heap { allocated: 0 };
    let mut out = String::new();
    let failures = dispatch_all(COMMANDS, &mut heap, "alloc 1; nope; alloc 2;", &mut out).unwrap();
    assert_eq!(failures, 1);
    assert_eq!(heap.allocated, 3);
    assert!(
        out.starts_with("rvos> alloc 1\nallocated 1\nrvos> nope\nunknown command"),
        "{out}"
    );
}
