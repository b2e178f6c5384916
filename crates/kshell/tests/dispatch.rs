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
        Err(ArgError::OutOfRange("9000"))
    );
    assert_eq!(Args::new("").number_or(8), Ok(8));
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
    heap.allocated += size;
    writeln!(out, "allocated {size}")?;
    Ok(())
}

const COMMANDS: &[Command<Heap>] = &[
    Command {
        name: "alloc",
        usage: "<size>",
        help: "allocate bytes",
        run: alloc,
    },
    Command {
        name: "inject",
        usage: "[pages|slab] [off | nth <n> | <percent>]",
        help: "fault injection",
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
    // A synopsis too long for the column gets a line of its own; the
    // others line up after the longest one that fits.
    assert_eq!(
        run("help").1,
        "  alloc <size>  allocate bytes\n\
         \x20 inject [pages|slab] [off | nth <n> | <percent>]\n\
         \x20               fault injection\n\
         \x20 help          this list\n"
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
