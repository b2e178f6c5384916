//! The kernel console: `print!`/`println!` over the device tree's NS16550A
//! UART, and the `log` backend (timestamp and hart id on every line,
//! filtered per target by [`filter`]).
//!
//! Output before the UART is known goes through the legacy SBI console as a
//! last resort. One lock serialises whole `print!` calls across harts and
//! masks interrupts while held; a hart that re-enters while holding it (a
//! panic or fatal trap in the middle of printing) writes through instead
//! of deadlocking on itself. The console is a leaf: nothing allocates or
//! takes an allocator lock while holding it, and no allocator prints
//! while holding its own lock (reports are queued and printed after).

use crate::arch::{cpu, hart, sbi};
use crate::drivers::ns16550a::Ns16550a;
use crate::sync::{BootCell, EARLY_HART_ID, KernelArch};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use ksync::lockdep::LockClass;

pub mod filter;

static UART: BootCell<Ns16550a> = BootCell::new();
static TIMEBASE_HZ: AtomicU64 = AtomicU64::new(0);

const NO_OWNER: usize = usize::MAX;
static OWNER: AtomicUsize = AtomicUsize::new(NO_OWNER);

/// Starts printing through `uart`.
pub fn init(uart: Ns16550a, clock_hz: Option<u32>) {
    uart.init(clock_hz);
    UART.set(uart);
}

/// The console UART, once `init` ran (the shell's input path reads it).
pub fn uart() -> Option<&'static Ns16550a> {
    UART.get()
}

/// Holds the console for the duration of one `print!`, with interrupts
/// masked on this hart: an interrupt handler that prints (or allocates)
/// must never run on a hart that holds the console, or a hart waiting for
/// the console while holding what the handler needs closes a deadlock.
struct ConsoleGuard {
    acquired: bool,
    // Dropped after `Drop::drop` released the console.
    _irq: ksync::IrqGuard<KernelArch>,
}

/// The console's class for ksync's lock-order validation: taking an
/// allocator lock while printing, or printing under one that is also taken
/// while printing, is reported in debug builds like any lock inversion.
static CLASS: LockClass = LockClass::new("console");

impl ConsoleGuard {
    fn lock() -> Self {
        let irq = ksync::irq_save::<KernelArch>();
        let me = hart::current_id().unwrap_or(EARLY_HART_ID);
        if OWNER.load(Ordering::Relaxed) == me {
            return Self {
                acquired: false,
                _irq: irq,
            };
        }
        CLASS.acquire::<KernelArch>();
        while OWNER
            .compare_exchange_weak(NO_OWNER, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        Self {
            acquired: true,
            _irq: irq,
        }
    }
}

impl Drop for ConsoleGuard {
    fn drop(&mut self) {
        if self.acquired {
            OWNER.store(NO_OWNER, Ordering::Release);
            CLASS.release::<KernelArch>();
        }
    }
}

/// Whether this hart is in the middle of a `print!`. Allocation paths
/// check it in debug builds: nothing may allocate while holding the
/// console, since an allocator lock holder may be waiting for it.
pub fn held_by_this_hart() -> bool {
    hart::current_id().is_some_and(|me| OWNER.load(Ordering::Relaxed) == me)
}

struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let uart = UART.get();
        for byte in text.bytes() {
            let put = |b: u8| match uart {
                Some(uart) => uart.put(b),
                None => sbi::legacy_putchar(b),
            };
            if byte == b'\n' {
                put(b'\r');
            }
            put(byte);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let _guard = ConsoleGuard::lock();
    // Writing to the UART cannot fail; a formatting error of a Display impl
    // is not worth a panic on the console path.
    let _ = Console.write_fmt(args);
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Seconds since the platform timer started, split for printing.
pub fn uptime() -> Option<(u64, u32)> {
    let hz = TIMEBASE_HZ.load(Ordering::Relaxed);
    if hz == 0 {
        return None;
    }
    let ticks = cpu::ticks();
    Some((ticks / hz, ((ticks % hz) * 1_000_000 / hz) as u32))
}

struct KernelLogger;

impl log::Log for KernelLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= filter::level_for(metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // The time is read with the console held, so lines from several
        // harts come out in time order.
        let _guard = ConsoleGuard::lock();
        let (secs, micros) = uptime().unwrap_or((0, 0));
        let hart = crate::arch::trap::HartDisplay(hart::current_id());
        let module = record.target().rsplit("::").next().unwrap_or("");
        crate::println!(
            "[{secs:>4}.{micros:06} h{hart}] {:<5} {module}: {}",
            record.level(),
            record.args()
        );
    }

    fn flush(&self) {}
}

static LOGGER: KernelLogger = KernelLogger;

/// Installs the `log` backend with the levels of `spec` (whose targets
/// were checked); timestamps use `timebase_hz`.
pub fn init_logging(spec: &bootargs::LogSpec<'_>, timebase_hz: u64) {
    TIMEBASE_HZ.store(timebase_hz, Ordering::Relaxed);
    // Only fails if a logger is already set, i.e. on a second call, which
    // would only change the levels: do that.
    let _ = log::set_logger(&LOGGER);
    filter::apply(spec);
}
