//! `kshell`: the pieces of RVOS's interactive memory monitor that do not
//! need a kernel: the serial line editor ([`LineEditor`]), the argument
//! parser ([`Args`], [`parse_number`]) and the command table with its
//! dispatcher ([`Command`], [`dispatch`]). The kernel supplies the
//! commands and the UART.

#![no_std]

#[cfg(test)]
extern crate std;

mod args;
mod command;
mod editor;

pub use args::{ArgError, Args, in_range, parse_number};
pub use command::{Command, CommandError, Handler, Outcome, dispatch, dispatch_all};
pub use editor::{Event, LineEditor};
