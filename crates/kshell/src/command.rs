//! The command table and the dispatcher: find the command, run it, and
//! turn every error into one clear line with the usage.

use core::fmt::{self, Write};

use crate::{ArgError, Args};

/// What a command handler can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError<'a> {
    /// Bad arguments: the dispatcher prints the reason and the usage.
    Args(ArgError<'a>),
    /// The command ran and failed: the message says why.
    Failed(&'static str),
    /// The command failed and has already written why (a message that
    /// needs figures only known at run time).
    Reported,
    /// Writing the output failed.
    Output,
}

impl<'a> From<ArgError<'a>> for CommandError<'a> {
    fn from(error: ArgError<'a>) -> Self {
        CommandError::Args(error)
    }
}

impl From<fmt::Error> for CommandError<'_> {
    fn from(_: fmt::Error) -> Self {
        CommandError::Output
    }
}

/// A handler: the context it acts on, its arguments, the console.
pub type Handler<C> =
    for<'a> fn(&mut C, &mut Args<'a>, &mut dyn Write) -> Result<(), CommandError<'a>>;

/// One command of the shell.
pub struct Command<C> {
    pub name: &'static str,
    /// The arguments, e.g. `<size> [align]`.
    pub usage: &'static str,
    /// One line for `help`.
    pub help: &'static str,
    /// More for `help <name>` (what each output field means, say): lines
    /// separated by `\n`, or empty.
    pub details: &'static str,
    pub run: Handler<C>,
}

/// How a dispatched line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Empty line or comment.
    Nothing,
    Ran,
    /// The command reported an error (already printed).
    Failed,
    /// No such command (already printed).
    Unknown,
}

/// Runs one command line against `commands`. `help` is built in.
pub fn dispatch<C>(
    commands: &[Command<C>],
    context: &mut C,
    line: &str,
    out: &mut dyn Write,
) -> Result<Outcome, fmt::Error> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Outcome::Nothing);
    }
    let (name, rest) = line
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((line, ""));
    if name == "help" {
        return help(commands, rest.trim(), out);
    }
    let Some(command) = commands.iter().find(|c| c.name == name) else {
        writeln!(out, "unknown command `{name}` (type `help` for the list)")?;
        return Ok(Outcome::Unknown);
    };
    let mut args = Args::new(rest);
    match (command.run)(context, &mut args, out) {
        Ok(()) => Ok(Outcome::Ran),
        Err(CommandError::Args(error)) => {
            writeln!(out, "{name}: {error}")?;
            writeln!(out, "usage: {}", Synopsis(command))?;
            Ok(Outcome::Failed)
        }
        Err(CommandError::Failed(message)) => {
            writeln!(out, "{name}: {message}")?;
            Ok(Outcome::Failed)
        }
        Err(CommandError::Reported) => Ok(Outcome::Failed),
        Err(CommandError::Output) => Err(fmt::Error),
    }
}

/// Runs a `;`-separated list of command lines (the `CMDS=` boot mode).
pub fn dispatch_all<C>(
    commands: &[Command<C>],
    context: &mut C,
    list: &str,
    out: &mut dyn Write,
) -> Result<usize, fmt::Error> {
    let mut failures = 0;
    for line in list.split(';') {
        if !line.trim().is_empty() {
            writeln!(out, "rvos> {}", line.trim())?;
        }
        if matches!(
            dispatch(commands, context, line, out)?,
            Outcome::Failed | Outcome::Unknown
        ) {
            failures += 1;
        }
    }
    Ok(failures)
}

/// Synopses (name and usage) up to this long share a line with their help
/// text; a longer one gets a line of its own, so one long usage does not
/// push every help text off an 80-column terminal.
const SYNOPSIS_COLUMN: usize = 28;

/// `help` lists the commands; `help <name>` shows one command's usage,
/// its help line and its details.
fn help<C>(
    commands: &[Command<C>],
    topic: &str,
    out: &mut dyn Write,
) -> Result<Outcome, fmt::Error> {
    if topic.is_empty() {
        print_help(commands, out)?;
        return Ok(Outcome::Ran);
    }
    if topic == "help" {
        writeln!(out, "usage: help [command]")?;
        writeln!(out, "the commands, or one command's usage and details")?;
        return Ok(Outcome::Ran);
    }
    let Some(command) = commands.iter().find(|c| c.name == topic) else {
        let word = topic.split_ascii_whitespace().next().unwrap_or(topic);
        writeln!(
            out,
            "help: unknown command `{word}` (type `help` for the list)"
        )?;
        return Ok(Outcome::Failed);
    };
    writeln!(out, "usage: {}", Synopsis(command))?;
    writeln!(out, "{}", command.help)?;
    for line in command.details.lines() {
        writeln!(out, "{line}")?;
    }
    Ok(Outcome::Ran)
}

fn print_help<C>(commands: &[Command<C>], out: &mut dyn Write) -> fmt::Result {
    let synopsis_len = |c: &Command<C>| c.name.len() + 1 + c.usage.len();
    let width = commands
        .iter()
        .map(synopsis_len)
        .filter(|&len| len <= SYNOPSIS_COLUMN)
        .max()
        .unwrap_or(0)
        .max(HELP_SYNOPSIS.len());
    for command in commands {
        let len = synopsis_len(command);
        if len > width {
            writeln!(out, "  {} {}", command.name, command.usage)?;
            writeln!(out, "  {:width$}  {}", "", command.help)?;
        } else {
            let pad = width - len;
            writeln!(
                out,
                "  {} {}{:pad$}  {}",
                command.name, command.usage, "", command.help
            )?;
        }
    }
    writeln!(
        out,
        "  {:width$}  this list; `help <command>` for one command",
        HELP_SYNOPSIS
    )
}

const HELP_SYNOPSIS: &str = "help [command]";

/// `name usage`, or `name` alone for a command without arguments.
struct Synopsis<'c, C>(&'c Command<C>);

impl<C> fmt::Display for Synopsis<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.usage {
            "" => f.write_str(self.0.name),
            usage => write!(f, "{} {usage}", self.0.name),
        }
    }
}
