//! The boot memory layout: the kernel image's sections (from linker
//! symbols), the reservations (firmware, kernel image, device tree and what
//! the device tree itself reserves), and the free physical ranges that are
//! left for the page allocator. The arithmetic is the host-tested
//! `memlayout` crate; this module gathers its inputs and prints the result.

use crate::arch::{self, PAGE_SIZE};
use crate::memory::Size;
use crate::platform::{Platform, PlatformError, Reservations};
use crate::sync::BootCell;
use core::ops::Range;
use log::{debug, info};
use memlayout::{PhysRange, RangeSet};

/// Capacity of the free-range table.
pub const MAX_FREE_RANGES: usize = 64;

unsafe extern "C" {
    static __kernel_start: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __boot_page_table_start: u8;
    static __boot_page_table_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    static __bss_start: u8;
    static __bss_end: u8;
    static __boot_stack_guard: u8;
    static __boot_stack_bottom: u8;
    static __boot_stack_top: u8;
    static __kernel_end: u8;
}

macro_rules! symbol_range {
    ($start:ident, $end:ident) => {
        (&raw const $start as usize)..(&raw const $end as usize)
    };
}

/// One section of the kernel image.
#[derive(Clone, Debug)]
pub struct Section {
    pub name: &'static str,
    pub virt: Range<usize>,
}

impl Section {
    pub fn phys(&self) -> Range<usize> {
        arch::virt_to_phys(self.virt.start)..arch::virt_to_phys(self.virt.end)
    }
}

/// The kernel image's sections in address order, from the linker script.
pub fn sections() -> [Section; 6] {
    [
        Section {
            name: ".text",
            virt: symbol_range!(__text_start, __text_end),
        },
        Section {
            name: ".rodata",
            virt: symbol_range!(__rodata_start, __rodata_end),
        },
        Section {
            name: ".boot_page_table",
            virt: symbol_range!(__boot_page_table_start, __boot_page_table_end),
        },
        Section {
            name: ".data",
            virt: symbol_range!(__data_start, __data_end),
        },
        Section {
            name: ".bss",
            virt: symbol_range!(__bss_start, __bss_end),
        },
        Section {
            name: "boot stack",
            virt: symbol_range!(__boot_stack_bottom, __boot_stack_top),
        },
    ]
}

/// The boot hart's stack (from the linker script).
pub fn boot_stack() -> Range<usize> {
    symbol_range!(__boot_stack_bottom, __boot_stack_top)
}

/// The unmapped page below the boot stack.
pub fn boot_stack_guard() -> Range<usize> {
    symbol_range!(__boot_stack_guard, __boot_stack_bottom)
}

/// The whole kernel image, from its first to its last byte in memory.
pub fn kernel_image_virt() -> Range<usize> {
    symbol_range!(__kernel_start, __kernel_end)
}

/// The kernel image's physical range.
pub fn kernel_image_phys() -> PhysRange {
    let virt = kernel_image_virt();
    PhysRange::new(
        arch::virt_to_phys(virt.start) as u64,
        arch::virt_to_phys(virt.end) as u64,
    )
    .expect("the linker script orders __kernel_start before __kernel_end")
}

/// What is reserved and what is free.
pub struct MemoryLayout {
    pub reserved: Reservations,
    pub free: RangeSet<MAX_FREE_RANGES>,
}

static LAYOUT: BootCell<MemoryLayout> = BootCell::new();

/// The layout, once `compute` has run at boot.
pub fn get() -> &'static MemoryLayout {
    LAYOUT
        .get()
        .expect("layout::get() before layout::compute()")
}

/// Works out the reservations and the free ranges of `platform`.
pub fn compute(platform: &Platform) -> Result<&'static MemoryLayout, PlatformError> {
    let kernel = kernel_image_phys();
    let home = platform
        .ram
        .as_slice()
        .iter()
        .find(|ram| ram.covers(kernel))
        .ok_or(PlatformError::Missing(
            "RAM region holding the kernel image",
        ))?;
    let mut reserved = Reservations::new();
    // Under the SBI boot protocol the firmware lives below the kernel's load
    // address; the device tree may or may not describe all of it.
    let below = PhysRange::new(home.start(), kernel.start()).expect("home covers kernel");
    reserved.push(below, "SBI firmware (RAM below the kernel)")?;
    reserved.push(kernel, "kernel image")?;
    reserved.push(platform.dtb, "device tree blob")?;
    for item in platform.reserved.as_slice() {
        reserved.push(item.range, item.owner)?;
    }
    let mut holes = [PhysRange::EMPTY; crate::platform::MAX_RESERVATIONS];
    for (hole, item) in holes.iter_mut().zip(reserved.as_slice()) {
        *hole = item.range;
    }
    let free = memlayout::free_ranges(
        platform.ram.as_slice(),
        &holes[..reserved.as_slice().len()],
        PAGE_SIZE as u64,
    )
    .map_err(|error| PlatformError::BadRegion {
        what: "free-range computation",
        error,
    })?;
    Ok(LAYOUT.set(MemoryLayout { reserved, free }))
}

/// Logs the layout: a summary at info, every section and range at debug.
pub fn print(platform: &Platform, layout: &MemoryLayout) {
    let image = kernel_image_virt();
    debug!(
        "kernel image {:#x}..{:#x} -> {} ({})",
        image.start,
        image.end,
        kernel_image_phys(),
        Size((image.end - image.start) as u64)
    );
    for section in sections() {
        let phys = section.phys();
        debug!(
            "  {:<17} {:#x}..{:#x} -> {:#010x}..{:#010x} {:>9}",
            section.name,
            section.virt.start,
            section.virt.end,
            phys.start,
            phys.end,
            Size((section.virt.end - section.virt.start) as u64)
        );
    }
    for ram in platform.ram.as_slice() {
        debug!(
            "RAM      {:#010x}..{:#010x} {:>9}",
            ram.start(),
            ram.end(),
            Size(ram.size())
        );
    }
    for item in layout.reserved.as_slice() {
        debug!(
            "reserved {:#010x}..{:#010x} {:>9}  {}",
            item.range.start(),
            item.range.end(),
            Size(item.range.size()),
            item.owner
        );
    }
    for free in layout.free.as_slice() {
        debug!(
            "free     {:#010x}..{:#010x} {:>9}",
            free.start(),
            free.end(),
            Size(free.size())
        );
    }
    let total = layout.free.total_size();
    info!(
        "free total {} in {} ranges ({} pages of {} KiB), of {} RAM; kernel image {}",
        Size(total),
        layout.free.len(),
        total / PAGE_SIZE as u64,
        PAGE_SIZE / 1024,
        Size(platform.ram.total_size()),
        Size((image.end - image.start) as u64)
    );
}

#[cfg(feature = "ktest")]
mod tests;
