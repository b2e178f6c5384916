//! RISC-V 64 (S-mode under OpenSBI, Sv39): boot entry, boot page table,
//! trap handling, per-hart data, timer, MMU switch and TLB shootdown, and
//! SBI wrappers.

pub mod boot_page_table;
pub mod cpu;
mod dispatch;
pub mod entry;
pub mod fault_catch;
pub mod hart;
pub mod mmu;
pub mod sbi;
pub mod smp;
pub mod timer;
pub mod trap;

/// Where the high half begins: virtual = physical + `KERNEL_OFFSET` for all
/// memory the kernel reaches directly (the boot table's linear map, and the
/// kernel image, linked at 0xffff_ffc0_8020_0000 for physical 0x8020_0000).
pub const KERNEL_OFFSET: usize = 0xffff_ffc0_0000_0000;

/// Sv39 base page size.
pub const PAGE_SIZE: usize = 4096;

/// The virtual address through which the kernel reaches physical `pa`.
/// Valid for `pa` inside the boot table's linear map (see
/// [`boot_page_table::LINEAR_MAP_BYTES`]).
pub const fn phys_to_virt(pa: usize) -> usize {
    pa + KERNEL_OFFSET
}

/// The physical address behind a kernel virtual address of the linear map.
pub const fn virt_to_phys(va: usize) -> usize {
    va - KERNEL_OFFSET
}
