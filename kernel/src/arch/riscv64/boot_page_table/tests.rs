//! In-kernel tests of the boot table, walked through the satp the MMU uses.

use super::*;
use crate::arch::phys_to_virt;
use crate::ktest::prelude::*;
use crate::platform;
use riscv::register::satp::{self, Mode};

const PTE_U: u64 = 1 << 4;
const PTE_FLAGS_MASK: u64 = 0x3ff;

/// The PPN field of an entry.
pub const fn entry_ppn(entry: u64) -> u64 {
    (entry >> PTE_PPN_SHIFT) & ((1 << 44) - 1)
}

/// The flag bits of an entry.
pub const fn entry_flags(entry: u64) -> u64 {
    entry & PTE_FLAGS_MASK
}

/// What a walk of the root table found for one virtual address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// Mapped by a gigapage leaf: the physical address and the leaf's flags.
    Leaf { phys: usize, flags: u64 },
    /// The address is not canonical for Sv39 (bits 63..39 differ from bit 38).
    NonCanonical,
    /// The root entry is invalid.
    Unmapped { index: usize },
    /// The root entry points to a next-level table; the boot table has none.
    NotAGigapage { index: usize },
    /// A malformed leaf: misaligned PPN or W without R.
    Malformed { index: usize, entry: u64 },
}

/// Walks `table` (a root table that holds only gigapage leaves, like the
/// boot table) for `va`, the way the MMU would.
pub fn walk_gigapages(table: &[u64; ENTRIES], va: usize) -> Walk {
    let sign = (va as isize) >> 38;
    if sign != 0 && sign != -1 {
        return Walk::NonCanonical;
    }
    let index = (va >> 30) & (ENTRIES - 1);
    let entry = table[index];
    if entry & PTE_V == 0 {
        return Walk::Unmapped { index };
    }
    if entry & (PTE_R | PTE_W | PTE_X) == 0 {
        return Walk::NotAGigapage { index };
    }
    let ppn = entry_ppn(entry);
    let misaligned = ppn & ((1 << 18) - 1) != 0;
    let write_only = entry & PTE_W != 0 && entry & PTE_R == 0;
    if misaligned || write_only {
        return Walk::Malformed { index, entry };
    }
    let phys = ((ppn as usize) << 12) | (va & (GIGABYTE - 1));
    Walk::Leaf {
        phys,
        flags: entry_flags(entry),
    }
}

/// The boot table as every hart's entry code enables it (the kernel table
/// replaces it once the page allocator runs).
pub fn active_root_table() -> &'static [u64; ENTRIES] {
    &BOOT_PAGE_TABLE.0
}

ktest! {
    fn satp_selects_sv39_and_the_boot_table() {
        let satp = satp::Satp::from_bits(crate::arch::entry::BOOT_ENTRY_SATP.load(core::sync::atomic::Ordering::Relaxed));
        kassert_eq!(satp.mode(), Mode::Sv39);
        let table_virt = &raw const BOOT_PAGE_TABLE as usize;
        kassert_eq!(satp.ppn() * crate::arch::PAGE_SIZE, table_virt - KERNEL_OFFSET);
        Ok(())
    }
}

ktest! {
    fn every_root_entry_matches_the_design() {
        let table = active_root_table();
        for (index, &entry) in table.iter().enumerate() {
            let expected_gigabyte = if IDENTITY_INDICES.contains(&index) {
                Some(index)
            } else if (HIGH_HALF_FIRST_INDEX..HIGH_HALF_FIRST_INDEX + LINEAR_MAP_GIGABYTES)
                .contains(&index)
            {
                Some(index - HIGH_HALF_FIRST_INDEX)
            } else {
                None
            };
            match expected_gigabyte {
                None => kassert_eq!(entry, 0, "root entry {index:#x} should be empty"),
                Some(gigabyte) => {
                    kassert_eq!(
                        entry_flags(entry),
                        PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D | PTE_G,
                        "flags of root entry {index:#x}"
                    );
                    kassert_eq!(
                        entry_ppn(entry),
                        (gigabyte * GIGABYTE / 4096) as u64,
                        "PPN of root entry {index:#x}"
                    );
                }
            }
        }
        kassert_eq!(entry_ppn(table[2]), 0x80000);
        kassert_eq!(entry_ppn(table[0x102]), 0x80000);
        kassert_eq!(entry_ppn(table[0x100]), 0);
        kassert!(table[0] & PTE_U == 0 && table[0x102] & PTE_U == 0, "boot leaves must not be user pages");
        Ok(())
    }
}

ktest! {
    fn walk_translates_kernel_and_devices() {
        let table = active_root_table();
        let start = crate::memory::layout::kernel_image_virt().start;
        kassert_eq!(walk_gigapages(table, start), Walk::Leaf { phys: 0x8020_0000, flags: BOOT_LEAF_FLAGS });
        kassert_eq!(walk_gigapages(table, 0x8020_0000), Walk::Leaf { phys: 0x8020_0000, flags: BOOT_LEAF_FLAGS });
        let uart = platform::get().uart.base;
        kassert_eq!(walk_gigapages(table, phys_to_virt(uart)), Walk::Leaf { phys: uart, flags: BOOT_LEAF_FLAGS });
        kassert_eq!(walk_gigapages(table, 0x4000_0000), Walk::Unmapped { index: 1 });
        kassert_eq!(walk_gigapages(table, 0x0000_0040_0000_0000), Walk::NonCanonical);
        kassert_eq!(
            walk_gigapages(table, KERNEL_OFFSET + LINEAR_MAP_BYTES),
            Walk::Unmapped { index: HIGH_HALF_FIRST_INDEX + LINEAR_MAP_GIGABYTES }
        );
        Ok(())
    }
}

ktest! {
    fn linear_map_covers_all_ram_and_the_device_tree() {
        let table = active_root_table();
        let platform = platform::get();
        let mut checked = 0;
        for region in platform.ram.as_slice().iter().copied().chain([platform.dtb]) {
            for pa in [region.start(), region.end() - 1] {
                let pa = pa as usize;
                kassert_eq!(
                    walk_gigapages(table, phys_to_virt(pa)),
                    Walk::Leaf { phys: pa, flags: BOOT_LEAF_FLAGS },
                    "high-half alias of {pa:#x}"
                );
                checked += 1;
            }
        }
        kassert!(checked >= 4, "expected RAM and DTB bounds, checked {checked}");
        Ok(())
    }
}
