//! The kernel console: `print!`/`println!` over the device tree's NS16550A
//! UART, and the `log` backend (timestamp and hart id on every line).
//!
//! Output before the UART is known goes through the legacy SBI console as a
//! last resort. One lock serialises whole `print!` calls across harts; a
//! hart that re-enters while holding it (a panic or fatal trap in the middle
//! of printing) writes through instead of deadlocking on itself.

use crate::arch::{cpu, hart, sbi};
use crate::drivers::ns16550a::Ns16550a;
use crate::sync::BootCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static UART: BootCell<Ns16550a> = BootCell::new();
static TIMEBASE_HZ: AtomicU64 = AtomicU64::new(0);

const NO_OWNER: usize = usize::MAX;
const UNKNOWN_HART: usize = usize::MAX - 1;
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

/// Holds the console for the duration of one `print!`.
struct ConsoleGuard {
    acquired: bool,
}

impl ConsoleGuard {
    fn lock() -> Self {
        let me = hart::current_id().unwrap_or(UNKNOWN_HART);
        loop {
            match OWNER.compare_exchange_weak(NO_OWNER, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Self { acquired: true },
                Err(owner) if owner == me => return Self { acquired: false },
                Err(_) => core::hint::spin_loop(),
            }
        }
    }
}

impl Drop for ConsoleGuard {
    fn drop(&mut self) {
        if self.acquired {
            OWNER.store(NO_OWNER, Ordering::Release);
        }
    }
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
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
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

/// Installs the `log` backend with `level`; timestamps use `timebase_hz`.
pub fn init_logging(level: log::LevelFilter, timebase_hz: u64) {
    TIMEBASE_HZ.store(timebase_hz, Ordering::Relaxed);
    // Only fails if a logger is already set, i.e. on a second call, which
    // would only change the level: do that.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
