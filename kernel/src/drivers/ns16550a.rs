//! NS16550A UART, polled transmit and interrupt-driven receive: the kernel
//! console. Register stride and access width come from the device tree
//! (`reg-shift`, `reg-io-width`).

use core::ptr::{read_volatile, write_volatile};

const THR: usize = 0; // transmit holding (write, DLAB=0)
const RBR: usize = 0; // receive buffer (read, DLAB=0)
const DLL: usize = 0; // divisor latch low (DLAB=1)
const IER: usize = 1; // interrupt enable (DLAB=0)
const DLM: usize = 1; // divisor latch high (DLAB=1)
const FCR: usize = 2; // FIFO control
const LCR: usize = 3; // line control
const MCR: usize = 4; // modem control
const LSR: usize = 5; // line status

const LCR_8N1: u8 = 0b11;
const LCR_DLAB: u8 = 1 << 7;
const FCR_ENABLE_AND_CLEAR: u8 = 0b111;
const MCR_DTR_RTS: u8 = 0b11;
const MCR_LOOPBACK: u8 = 1 << 4;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_DATA_READY: u8 = 1 << 0;
const IER_RX_AVAILABLE: u8 = 1 << 0;

const BAUD: u32 = 115_200;

/// A UART at a mapped virtual address.
#[derive(Clone, Copy, Debug)]
pub struct Ns16550a {
    base: usize,
    reg_shift: u32,
    io_width: u32,
}

impl Ns16550a {
    /// # Safety
    /// `base` must be the virtual address of an NS16550A register block,
    /// mapped for device access for the rest of the kernel's life, with
    /// registers `1 << reg_shift` bytes apart and `io_width` (1 or 4) bytes
    /// wide; no other code may drive the device.
    pub const unsafe fn new(base: usize, reg_shift: u32, io_width: u32) -> Self {
        Self {
            base,
            reg_shift,
            io_width,
        }
    }

    /// 8N1, FIFOs on, interrupts off, and the divisor for 115200 baud if the
    /// input clock is known (QEMU ignores it, real hardware needs it).
    pub fn init(&self, clock_hz: Option<u32>) {
        self.write(IER, 0);
        if let Some(divisor) = clock_hz
            .map(|hz| hz / (16 * BAUD))
            .filter(|&d| d > 0 && d <= 0xffff)
        {
            self.write(LCR, LCR_DLAB);
            self.write(DLL, divisor as u8);
            self.write(DLM, (divisor >> 8) as u8);
        }
        self.write(LCR, LCR_8N1);
        self.write(FCR, FCR_ENABLE_AND_CLEAR);
        self.write(MCR, MCR_DTR_RTS);
    }

    /// Sends one byte, waiting for room in the transmitter.
    pub fn put(&self, byte: u8) {
        while self.read(LSR) & LSR_THR_EMPTY == 0 {
            core::hint::spin_loop();
        }
        self.write(THR, byte);
    }

    /// The next received byte, if one is waiting.
    pub fn get(&self) -> Option<u8> {
        (self.read(LSR) & LSR_DATA_READY != 0).then(|| self.read(RBR))
    }

    /// Raises the UART's interrupt line while received data waits (the
    /// interrupt stays asserted until [`get`](Self::get) drained it).
    pub fn enable_rx_interrupt(&self) {
        self.write(IER, IER_RX_AVAILABLE);
    }

    /// Loopback mode: what is sent is received instead of leaving the
    /// UART (a test drives the receive path with it).
    #[cfg_attr(
        not(feature = "ktest"),
        expect(dead_code, reason = "the in-kernel tests are its only user")
    )]
    pub fn set_loopback(&self, on: bool) {
        let mcr = if on {
            MCR_DTR_RTS | MCR_LOOPBACK
        } else {
            MCR_DTR_RTS
        };
        self.write(MCR, mcr);
    }

    fn register(&self, index: usize) -> usize {
        self.base + (index << self.reg_shift)
    }

    fn read(&self, index: usize) -> u8 {
        let addr = self.register(index);
        // SAFETY: `new`'s contract: the register block is mapped and ours,
        // and accesses use the width the device tree gives.
        unsafe {
            if self.io_width == 4 {
                read_volatile(addr as *const u32) as u8
            } else {
                read_volatile(addr as *const u8)
            }
        }
    }

    fn write(&self, index: usize, value: u8) {
        let addr = self.register(index);
        // SAFETY: as in `read`.
        unsafe {
            if self.io_width == 4 {
                write_volatile(addr as *mut u32, u32::from(value));
            } else {
                write_volatile(addr as *mut u8, value);
            }
        }
    }
}
