//! The interactive memory monitor: an `rvos>` prompt on the serial console
//! that shows and exercises the memory subsystem while it runs.
//!
//! Bytes come from `input` (UART receive interrupt through the PLIC), go
//! through `kshell`'s line editor, and each finished line through
//! `kshell::dispatch` against [`COMMANDS`]. With `cmds=` the list runs
//! without a prompt and the machine powers off afterwards (status 0, or
//! 6 if a command failed).
//!
//! Adding a command is one [`COMMANDS`] entry plus one handler
//! `fn(&mut Monitor, &mut Args, &mut dyn Write) -> Result<(), CommandError>`
//! in the module of its family:
//!
//! ```text
//!   meminfo.rs  meminfo                         frag.rs    frag
//!   info.rs     buddyinfo slabinfo caches
//!   by_hand.rs  alloc free pages freepages      vm.rs      vmmap translate
//!   ledger.rs   what by_hand handed out and freed
//!   bench.rs    bench                           system.rs  harts log uptime shutdown
//!   diag.rs     leaks inject badpage stress
//! ```

#![deny(unsafe_code)]

mod bench;
mod by_hand;
mod diag;
mod frag;
mod info;
mod ledger;
mod meminfo;
mod system;
mod vm;

use crate::power::{self, FailureCode};
use core::fmt::{self, Write};
use kshell::{Command, Event, LineEditor, Outcome};

/// What the commands act on: the blocks handed out by hand, and whether
/// `shutdown` was asked for.
pub struct Monitor {
    pub ledger: by_hand::Ledger,
    /// `leaks`' checkpoint, once taken.
    pub leak_mark: Option<crate::memdiag::debug::leak::LeakCheckpoint>,
    pub shutdown: bool,
}

/// Every command; `help` is built in and lists them in this order.
pub const COMMANDS: &[Command<Monitor>] = &[
    Command {
        name: "meminfo",
        usage: "[-v]",
        help: "memory totals, watermarks and per-allocator figures (/proc/meminfo); -v explains",
        details: meminfo::DETAILS,
        run: meminfo::meminfo,
    },
    Command {
        name: "buddyinfo",
        usage: "",
        help: "free page blocks per order (/proc/buddyinfo)",
        details: info::BUDDYINFO_DETAILS,
        run: info::buddyinfo,
    },
    Command {
        name: "slabinfo",
        usage: "",
        help: "slab caches of the kernel heap (/proc/slabinfo)",
        details: info::SLABINFO_DETAILS,
        run: info::slabinfo,
    },
    Command {
        name: "caches",
        usage: "[drain]",
        help: "objects parked in each hart's heap caches; drain gives them back",
        details: "",
        run: info::caches,
    },
    Command {
        name: "frag",
        usage: "",
        help: "fragmentation indices per order and a map of physical memory",
        details: "",
        run: frag::frag,
    },
    Command {
        name: "vmmap",
        usage: "",
        help: "the kernel page table's mappings, permissions and page sizes",
        details: "",
        run: vm::vmmap,
    },
    Command {
        name: "translate",
        usage: "<va>",
        help: "walk one virtual address through the three Sv39 levels",
        details: "",
        run: vm::translate,
    },
    Command {
        name: "alloc",
        usage: "<size> [align]",
        help: "allocate bytes from the kernel heap (remembered for free)",
        details: "size: 1 to 1G; align: a power of two up to 1G (default 8)\nnumbers: decimal, 0x hex, 0b binary, _ separators, K/M/G suffixes",
        run: by_hand::alloc,
    },
    Command {
        name: "free",
        usage: "<addr>",
        help: "free a block `alloc` or `pages` returned (double frees diagnosed)",
        details: "",
        run: by_hand::free,
    },
    Command {
        name: "pages",
        usage: "<count>",
        help: "allocate contiguous pages from the page allocator",
        details: "",
        run: by_hand::pages,
    },
    Command {
        name: "freepages",
        usage: "<addr> <count>",
        help: "free pages `pages` returned",
        details: "the count must be the block's whole count: partial frees are refused",
        run: by_hand::freepages,
    },
    Command {
        name: "bench",
        usage: "[allocator]",
        help: "short throughput run of the allocators (ops/s); `bench list` names them",
        details: "allocator: heap, tlsf, slab, buddy, pages-buddy or pages-bitmap; `bench list` describes them\n`bench smp [ops]`: the same workload on 1..N harts (ops 1000 to 10000000, default 20000)",
        run: bench::bench,
    },
    Command {
        name: "leaks",
        usage: "[mark|all]",
        help: "live blocks by call site since the checkpoint (`mark` sets it, `all`: since boot)",
        details: "",
        run: diag::leaks,
    },
    Command {
        name: "stress",
        usage: "<seconds> [harts] [seed]",
        help: "run the stress workload on every hart (cross-hart frees, injected faults)",
        details: "seconds: 1 to 3600; harts: 1 to 8 (default: all, up to 8); seed: any number (default 0x57e55eed)",
        run: diag::stress,
    },
    Command {
        name: "inject",
        usage: "[pages|slab] [off | nth <n> | <percent> [interval] [times] [min_order]]",
        help: "fault injection (fail_page_alloc, failslab): show or set",
        details: "site: pages (fail_page_alloc) or slab (failslab); percent 0 to 100; interval >= 1;\ntimes: a count or -1 (no limit); min_order: the smallest page order that may fail\nthe name filter is a boot argument only (fail_page_alloc.filter=, failslab.filter=)",
        run: diag::inject,
    },
    Command {
        name: "badpage",
        usage: "[<pa>]",
        help: "mark a physical page bad (memory failure): isolated now or when freed",
        details: "<pa>: any physical address; its page is the one marked\nwithout <pa>: the counts of bad pages",
        run: diag::badpage,
    },
    Command {
        name: "harts",
        usage: "",
        help: "harts, their state, timer ticks, stack depths and interrupts",
        details: "",
        run: system::harts,
    },
    Command {
        name: "log",
        usage: "[<level> | <target>:<level> | ratelimit <seconds> <burst>]",
        help: "show the log levels and the reports' rate limit, or set them",
        details: crate::console::filter::TARGETS_HELP,
        run: system::log_level,
    },
    Command {
        name: "uptime",
        usage: "",
        help: "time since the platform timer started",
        details: "",
        run: system::uptime,
    },
    Command {
        name: "shutdown",
        usage: "",
        help: "power off (QEMU exits with status 0)",
        details: "",
        run: system::shutdown,
    },
];

/// The console as a `fmt::Write` for the editor's echo and the commands.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        crate::print!("{text}");
        Ok(())
    }
}

const PROMPT: &str = "rvos> ";
/// Longest command line; history lines kept.
const LINE: usize = 128;
const HISTORY: usize = 16;

/// Runs `cmds` and powers off, or prompts for commands until `shutdown`.
pub fn run(cmds: Option<&'static str>) -> ! {
    let mut monitor = Monitor {
        ledger: by_hand::Ledger::new(),
        leak_mark: None,
        shutdown: false,
    };
    let mut out = Console;
    if let Some(list) = cmds {
        let mut failures = 0;
        for line in list.split(';').map(str::trim).filter(|l| !l.is_empty()) {
            crate::println!("{PROMPT}{line}");
            let outcome = kshell::dispatch(COMMANDS, &mut monitor, line, &mut out);
            crate::memdiag::ratelimit::flush();
            if matches!(outcome, Ok(Outcome::Failed | Outcome::Unknown) | Err(_)) {
                failures += 1;
            }
            if monitor.shutdown {
                break;
            }
        }
        if failures > 0 {
            crate::println!("cmds: {failures} command(s) failed");
            power::fail(FailureCode::CommandsFailed)
        }
        power::succeed()
    }
    crate::println!(
        "RVOS memory monitor. Type `help` for the commands, `help <command>` for one, \
         `shutdown` to quit."
    );
    // QEMU's -nographic console takes Ctrl-A as its own escape key.
    crate::println!(
        "Start of line: Home, or Ctrl-A Ctrl-A under QEMU -nographic (Ctrl-A X quits QEMU)."
    );
    // The editor's buffers are a few KiB: keep them off the stack.
    static EDITOR: crate::sync::SpinLock<LineEditor<LINE, HISTORY>> =
        crate::sync::SpinLock::new("shell editor", LineEditor::new());
    let mut editor = EDITOR.lock();
    crate::print!("{PROMPT}");
    loop {
        let byte = crate::input::read_byte();
        match editor.feed(byte, &mut out) {
            Ok(Event::Line) => {
                let _ = kshell::dispatch(COMMANDS, &mut monitor, editor.line(), &mut out);
                // A burst of reports the command caused is summed up here.
                crate::memdiag::ratelimit::flush();
                if monitor.shutdown {
                    crate::println!("powering off");
                    power::succeed()
                }
                crate::print!("{PROMPT}");
            }
            Ok(Event::Interrupt) => crate::print!("{PROMPT}"),
            Ok(Event::None) | Err(_) => {}
        }
    }
}
