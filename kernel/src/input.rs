//! Serial input: the console UART's receive interrupt, routed through the
//! PLIC to one hart (the shell's), fills a small ring that the shell reads
//! with [`read_byte`], sleeping in `wfi` while it is empty. Other harts
//! and every timer keep running; nothing busy-polls the UART.
//!
//! ```text
//!   UART RX ─► PLIC source (from the UART node) ─► S-context of the shell hart
//!     ─► trap: plic::on_external_interrupt ─► on_uart_interrupt: drain RBR
//!     ─► RING [.. head ─ tail ..] (256 bytes) ─► read_byte (same hart)
//! ```
//!
//! The ring is single-producer (the interrupt handler) single-consumer
//! (the shell), both on the same hart; the consumer masks interrupts only
//! to check for emptiness and sleep without missing a wake-up. A byte that
//! finds the ring full is dropped and counted ([`counters`]). Without a
//! PLIC route (no PLIC in the device tree) `read_byte` falls back to
//! polling the UART once per wake-up (timer tick), still sleeping between.

use crate::arch::cpu;
use crate::drivers::plic::{self, Plic, PlicError};
use crate::platform;
use crate::sync::KernelArch;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

const RING_BYTES: usize = 256;
static RING: [AtomicU8; RING_BYTES] = [const { AtomicU8::new(0) }; RING_BYTES];
/// Bytes ever written (producer) and read (consumer); the difference is
/// what the ring holds.
static HEAD: AtomicUsize = AtomicUsize::new(0);
static TAIL: AtomicUsize = AtomicUsize::new(0);
static OVERRUNS: AtomicU64 = AtomicU64::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);
/// Whether the receive interrupt is routed (else `read_byte` polls the
/// UART each time the hart wakes, e.g. on a timer tick).
static ROUTED: AtomicBool = AtomicBool::new(false);

/// The PLIC source of the console UART (its `interrupts` property).
fn uart_source() -> Result<usize, PlicError> {
    let platform = platform::get();
    let uart_base = platform.uart.base;
    platform
        .fdt
        .all_nodes()
        .filter(|node| {
            node.reg()
                .and_then(|mut r| r.next())
                .is_some_and(|r| r.starting_address as usize == uart_base)
        })
        .find_map(|node| node.interrupts().and_then(|mut i| i.next()))
        .ok_or(PlicError::NotFound)
}

/// Finds the PLIC, routes the UART's receive interrupt to the calling
/// hart and unmasks external interrupts here.
pub fn start() -> Result<(), PlicError> {
    let hart_id = crate::arch::hart::current().hart_id();
    let source = uart_source()?;
    let plic = match plic::get() {
        Some(plic) => plic,
        None => plic::init(Plic::discover(&platform::get().fdt)?),
    };
    log::info!(
        target: "rvos::drivers::plic",
        "{} sources, {} supervisor contexts; UART irq {source} -> hart {hart_id}",
        plic.sources(),
        plic.contexts().len()
    );
    plic::route(source, hart_id, on_uart_interrupt)?;
    if let Some(uart) = crate::console::uart() {
        uart.enable_rx_interrupt();
    }
    cpu::enable_external_interrupts();
    ROUTED.store(true, Ordering::Release);
    Ok(())
}

/// Drains the UART into the ring (interrupt context).
fn on_uart_interrupt() {
    let Some(uart) = crate::console::uart() else {
        return;
    };
    while let Some(byte) = uart.get() {
        RECEIVED.fetch_add(1, Ordering::Relaxed);
        let head = HEAD.load(Ordering::Relaxed);
        if head - TAIL.load(Ordering::Acquire) == RING_BYTES {
            OVERRUNS.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        RING[head % RING_BYTES].store(byte, Ordering::Relaxed);
        HEAD.store(head + 1, Ordering::Release);
    }
}

fn pop() -> Option<u8> {
    let tail = TAIL.load(Ordering::Relaxed);
    if HEAD.load(Ordering::Acquire) == tail {
        return None;
    }
    let byte = RING[tail % RING_BYTES].load(Ordering::Relaxed);
    TAIL.store(tail + 1, Ordering::Release);
    Some(byte)
}

/// The next input byte; the hart sleeps (`wfi`) until one arrives.
#[cfg_attr(
    feature = "ktest",
    expect(dead_code, reason = "the test build has no shell")
)]
pub fn read_byte() -> u8 {
    if !ROUTED.load(Ordering::Acquire) {
        // No PLIC route (a platform without one): poll once per wake-up,
        // i.e. per timer tick, still sleeping in between.
        loop {
            if let Some(byte) = crate::console::uart().and_then(|uart| uart.get()) {
                RECEIVED.fetch_add(1, Ordering::Relaxed);
                return byte;
            }
            cpu::wait_for_interrupt();
        }
    }
    loop {
        // Checked with interrupts masked: a byte arriving between the check
        // and the sleep leaves its interrupt pending, which ends the sleep.
        let masked = ksync::irq_save::<KernelArch>();
        let byte = pop();
        if byte.is_none() {
            cpu::wait_for_interrupt();
        }
        drop(masked);
        if let Some(byte) = byte {
            return byte;
        }
    }
}

/// Bytes received and bytes dropped because the ring was full.
#[cfg_attr(
    feature = "ktest",
    expect(dead_code, reason = "the test build has no shell")
)]
pub fn counters() -> (u64, u64) {
    (
        RECEIVED.load(Ordering::Relaxed),
        OVERRUNS.load(Ordering::Relaxed),
    )
}

#[cfg(feature = "ktest")]
mod tests {
    use super::*;
    use crate::ktest::prelude::*;

    ktest! {
        fn uart_receive_interrupt_is_routed_to_the_boot_hart() {
            kassert!(plic::get().is_some(), "the PLIC was not set up at boot");
            kassert!(uart_source().is_ok(), "the UART node has no interrupt");
            kassert!(cpu::external_interrupts_enabled(), "sie.SEIE is off on the boot hart");
            Ok(())
        }
    }

    ktest! {
        fn a_received_byte_goes_through_the_plic_into_the_ring() {
            const MARKER: u8 = 0x5a;
            let Some(uart) = crate::console::uart() else {
                return Err(crate::ktest::Failure::new(format_args!("no console UART")));
            };
            let source = uart_source().unwrap_or(0);
            let (irqs, spurious) = (plic::count(source), plic::spurious());
            while pop().is_some() {}
            uart.set_loopback(true);
            uart.put(MARKER);
            let found = wait_until(2, || pop() == Some(MARKER));
            uart.set_loopback(false);
            kassert!(found, "the looped-back byte never reached the ring within 2 s");
            kassert!(plic::count(source) > irqs, "no interrupt was claimed for irq {source}");
            kassert_eq!(plic::spurious(), spurious);
            Ok(())
        }
    }
}
