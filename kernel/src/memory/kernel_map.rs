//! The plan of the final kernel address space: every range the stage-2
//! page table maps, with its permissions, computed from the linker
//! symbols, the device tree and the hart stacks. Everything lives at
//! `virt = phys + KERNEL_OFFSET`, so the plan is a list of physical ranges
//! with permissions; what it leaves out is unmapped.
//!
//! ```text
//!   image sections      .text R-X  .rodata R--  .boot_page_table R--
//!                       .data RW-  .bss RW-  boot stack RW-
//!                       (the boot stack's guard page: not mapped)
//!   linear map of RAM   RW-  = every RAM region minus the firmware below
//!                       the kernel, the image, and each hart's guard page
//!   devices             RW-  = every device-tree `reg` outside RAM
//! ```
//!
//! No range is both writable and executable; only `.text` is executable.

use crate::arch::{self, PAGE_SIZE, hart};
use crate::memory::{layout, stacks};
use crate::platform::{self, PlatformError};
use core::fmt;
use memlayout::{PhysRange, RangeSet};

/// Permissions of a mapping: read-execute, read-only, read-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perms {
    Rx,
    Ro,
    Rw,
}

#[cfg_attr(
    not(feature = "ktest"),
    expect(dead_code, reason = "tests use them now, the stage-2 mapper next")
)]
impl Perms {
    pub fn writable(self) -> bool {
        self == Self::Rw
    }
    pub fn executable(self) -> bool {
        self == Self::Rx
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rx => "R-X",
            Self::Ro => "R--",
            Self::Rw => "RW-",
        })
    }
}

/// One mapped range.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    pub what: &'static str,
    pub phys: PhysRange,
    pub perms: Perms,
}

impl Mapping {
    pub fn virt_start(&self) -> usize {
        arch::phys_to_virt(self.phys.start() as usize)
    }
}

/// Capacity of the plan.
pub const MAX_MAPPINGS: usize = 160;
/// Capacity of the linear-map and device sets.
const MAX_PIECES: usize = 96;

/// The whole plan.
pub struct Plan {
    items: [Mapping; MAX_MAPPINGS],
    len: usize,
}

impl Plan {
    pub fn as_slice(&self) -> &[Mapping] {
        &self.items[..self.len]
    }

    fn push(
        &mut self,
        what: &'static str,
        phys: PhysRange,
        perms: Perms,
    ) -> Result<(), PlatformError> {
        if phys.is_empty() {
            return Ok(());
        }
        if self.len == MAX_MAPPINGS {
            return Err(PlatformError::TooMany {
                what: "kernel mappings",
                capacity: MAX_MAPPINGS,
            });
        }
        self.items[self.len] = Mapping { what, phys, perms };
        self.len += 1;
        Ok(())
    }

    /// The mapping holding physical `pa`, if any.
    #[cfg_attr(
        not(feature = "ktest"),
        expect(dead_code, reason = "tests use it now, fault diagnosis next")
    )]
    pub fn find(&self, pa: usize) -> Option<&Mapping> {
        self.as_slice().iter().find(|m| m.phys.contains(pa as u64))
    }
}

fn phys_of(virt: core::ops::Range<usize>) -> PhysRange {
    PhysRange::new(
        arch::virt_to_phys(virt.start) as u64,
        arch::virt_to_phys(virt.end) as u64,
    )
    .expect("linker ranges are ordered")
}

fn layout_error(what: &'static str) -> impl Fn(memlayout::LayoutError) -> PlatformError {
    move |error| PlatformError::BadRegion { what, error }
}

/// Every guard page: below each hart's stack and trap stack.
fn guard_pages() -> impl Iterator<Item = PhysRange> {
    hart::HARTS
        .iter()
        .filter(|h| h.stack().end != 0)
        .flat_map(|block| {
            let guard = if block.slot() == hart::BOOT_SLOT {
                layout::boot_stack_guard()
            } else {
                stacks::guard_of(block)
            };
            [guard, stacks::trap_guard_of(block)]
        })
        .filter(|guard| !guard.is_empty())
        .map(phys_of)
}

/// What the plan calls a piece of the linear map of RAM.
pub const LINEAR_MAP: &str = "linear map";

/// Computes the plan (after the hart stacks are allocated).
pub fn plan() -> Result<Plan, PlatformError> {
    let platform = platform::get();
    let mut plan = Plan {
        items: [Mapping {
            what: "",
            phys: PhysRange::EMPTY,
            perms: Perms::Ro,
        }; MAX_MAPPINGS],
        len: 0,
    };
    for section in layout::sections() {
        let perms = match section.name {
            ".text" => Perms::Rx,
            ".rodata" | ".boot_page_table" => Perms::Ro,
            _ => Perms::Rw,
        };
        plan.push(section.name, phys_of(section.virt), perms)?;
    }

    let mut linear = RangeSet::<MAX_PIECES>::new();
    for ram in platform.ram.as_slice() {
        linear.insert(*ram).map_err(layout_error("linear map"))?;
    }
    let image = layout::kernel_image_phys();
    let firmware = platform
        .ram
        .as_slice()
        .iter()
        .find(|ram| ram.covers(image))
        .map(|home| PhysRange::new(home.start(), image.start()).expect("home covers image"));
    if let Some(firmware) = firmware {
        linear
            .remove(firmware)
            .map_err(layout_error("linear map"))?;
    }
    linear.remove(image).map_err(layout_error("linear map"))?;
    for guard in guard_pages() {
        linear.remove(guard).map_err(layout_error("linear map"))?;
    }
    for piece in linear.as_slice() {
        plan.push(LINEAR_MAP, *piece, Perms::Rw)?;
    }

    let mut devices = RangeSet::<MAX_PIECES>::new();
    for node in platform.fdt.all_nodes() {
        let name = node.name;
        if name.starts_with("memory") || name.starts_with("cpu") {
            continue;
        }
        let Some(regs) = node.reg() else { continue };
        for reg in regs {
            let Some(size) = reg.size.filter(|&s| s > 0) else {
                continue;
            };
            let start = reg.starting_address as u64;
            let Ok(range) = PhysRange::from_base_size(start, size as u64) else {
                continue;
            };
            let Ok(range) = PhysRange::new(
                range.start() & !(PAGE_SIZE as u64 - 1),
                range.end().next_multiple_of(PAGE_SIZE as u64),
            ) else {
                continue;
            };
            let outside_ram = !platform.ram.as_slice().iter().any(|r| r.overlaps(range));
            let reachable = range.end() <= arch::boot_page_table::LINEAR_MAP_BYTES as u64;
            if outside_ram && reachable {
                devices.insert(range).map_err(layout_error("device map"))?;
            }
        }
    }
    for piece in devices.as_slice() {
        plan.push("devices", *piece, Perms::Rw)?;
    }
    Ok(plan)
}

#[cfg(feature = "ktest")]
mod tests;
