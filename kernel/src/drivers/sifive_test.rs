//! The `sifive,test` finisher device: one 32-bit register whose write ends
//! the QEMU process. `0x5555` exits with status 0; `(code << 16) | 0x3333`
//! exits with status `code`. This is the only exit path that keeps the
//! failure status under QEMU 7.2's OpenSBI.

use core::ptr::write_volatile;

const FINISHER_PASS: u32 = 0x5555;
const FINISHER_FAIL: u32 = 0x3333;

#[derive(Clone, Copy, Debug)]
pub struct SifiveTest {
    base: usize,
}

impl SifiveTest {
    /// # Safety
    /// `base` must be the mapped virtual address of a `sifive,test` device.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    /// Ends the machine with status 0. Returns only if the device ignored
    /// the write.
    pub fn pass(&self) {
        self.finish(FINISHER_PASS);
    }

    /// Ends the machine with status `code` (non-zero). Returns only if the
    /// device ignored the write.
    pub fn fail(&self, code: u16) {
        self.finish((u32::from(code) << 16) | FINISHER_FAIL);
    }

    fn finish(&self, value: u32) {
        // SAFETY: `new`'s contract: the register is mapped for device access.
        unsafe { write_volatile(self.base as *mut u32, value) };
    }
}
