//! Architecture support. RVOS runs on 64-bit RISC-V only; everything that
//! knows about CSRs, SBI, trap frames or the boot assembly lives below
//! `riscv64/`, and the rest of the kernel uses it through this module.

pub mod riscv64;

pub use riscv64::*;
