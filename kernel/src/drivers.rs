//! Device drivers for what QEMU `virt` offers and the device tree describes.

pub mod ns16550a;
pub mod plic;
pub mod sifive_test;
