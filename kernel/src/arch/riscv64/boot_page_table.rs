//! The stage-1 boot page table: one 4 KiB Sv39 root table, built at compile
//! time and placed by the linker script, holding only 1 GiB leaves.
//!
//! ```text
//!   index   virtual gigabyte            physical gigabyte   why
//!   0       0x0000_0000                 0x0000_0000          identity: MMIO (UART, test device)
//!   2       0x8000_0000                 0x8000_0000          identity: RAM, so `_start` survives the satp write
//!   0x100+g 0xffff_ffc0_0000_0000+g GiB g GiB, g < 64        high half: linear map of the first 64 GiB
//! ```
//!
//! The high half therefore maps the MMIO gigabyte at 0x100 and the first RAM
//! gigabyte at 0x102 (the kernel image), and reaches RAM up to 64 GiB of
//! physical address space (QEMU places the device tree near the top of RAM
//! or of the first 3 GiB, so larger `MEM=` need the gigabytes above 0x102;
//! RAM beyond the map is left unused with a warning). Every leaf is V|R|W|X|A|D|G: A
//! and D are preset because hardware may fault instead of setting them.
//! The final, permission-tight kernel table replaces this one once the page
//! allocator runs.

use super::KERNEL_OFFSET;

pub const PTE_V: u64 = 1 << 0;
pub const PTE_R: u64 = 1 << 1;
pub const PTE_W: u64 = 1 << 2;
pub const PTE_X: u64 = 1 << 3;
pub const PTE_G: u64 = 1 << 5;
pub const PTE_A: u64 = 1 << 6;
pub const PTE_D: u64 = 1 << 7;
const PTE_PPN_SHIFT: u32 = 10;

/// Flags of every boot-table leaf.
pub const BOOT_LEAF_FLAGS: u64 = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D | PTE_G;

pub const GIGABYTE: usize = 1 << 30;
const ENTRIES: usize = 512;

/// Root-table indices mapped one-to-one (virtual gigabyte = physical).
pub const IDENTITY_INDICES: [usize; 2] = [0, 2];

/// Number of physical gigabytes reachable through the high-half linear map.
pub const LINEAR_MAP_GIGABYTES: usize = 64;

/// Bytes of physical address space reachable through `phys_to_virt`.
pub const LINEAR_MAP_BYTES: usize = LINEAR_MAP_GIGABYTES * GIGABYTE;

/// Root-table index of the first high-half gigabyte.
pub const HIGH_HALF_FIRST_INDEX: usize = (KERNEL_OFFSET >> 30) & (ENTRIES - 1);

/// A root page table, aligned as the MMU requires.
#[repr(C, align(4096))]
pub struct RootTable(pub [u64; ENTRIES]);

/// The boot table. `_start` writes its physical address to satp.
#[unsafe(link_section = ".boot_page_table")]
pub static BOOT_PAGE_TABLE: RootTable = RootTable::boot();

impl RootTable {
    /// The boot table's contents, as described in the module docs.
    const fn boot() -> Self {
        let mut entries = [0u64; ENTRIES];
        let mut i = 0;
        while i < IDENTITY_INDICES.len() {
            entries[IDENTITY_INDICES[i]] = gigapage_leaf(IDENTITY_INDICES[i]);
            i += 1;
        }
        let mut gigabyte = 0;
        while gigabyte < LINEAR_MAP_GIGABYTES {
            entries[HIGH_HALF_FIRST_INDEX + gigabyte] = gigapage_leaf(gigabyte);
            gigabyte += 1;
        }
        Self(entries)
    }
}

/// A 1 GiB leaf for physical gigabyte `gigabyte`.
const fn gigapage_leaf(gigabyte: usize) -> u64 {
    let ppn = (gigabyte * GIGABYTE / super::PAGE_SIZE) as u64;
    (ppn << PTE_PPN_SHIFT) | BOOT_LEAF_FLAGS
}

#[cfg(feature = "ktest")]
mod tests;
