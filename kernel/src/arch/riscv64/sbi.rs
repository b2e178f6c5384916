//! The few SBI calls the kernel makes today, as last resorts: printing before
//! the UART is known, and powering off when the device tree has no test
//! device. The normal paths are the NS16550A driver and the `sifive,test`
//! device; the SBI reset loses the failure status on QEMU's firmware.

/// Prints one byte through the legacy SBI console (fallback only).
pub fn legacy_putchar(byte: u8) {
    #[allow(
        deprecated,
        reason = "DBCN, its replacement, is absent from QEMU 7.2's OpenSBI 1.1"
    )]
    sbi_rt::legacy::console_putchar(usize::from(byte));
}

/// Asks the firmware to power off; returns only if the call failed.
pub fn system_off(failure: bool) {
    if failure {
        sbi_rt::system_reset(sbi_rt::Shutdown, sbi_rt::SystemFailure);
    } else {
        sbi_rt::system_reset(sbi_rt::Shutdown, sbi_rt::NoReason);
    }
}
