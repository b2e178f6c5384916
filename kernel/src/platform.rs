//! Platform discovery: everything the kernel learns from the device tree
//! OpenSBI hands over (RAM, reservations, harts, timer, UART, exit device,
//! boot arguments). Nothing about the machine is hard-coded; QEMU's `-m` and
//! `-smp` show up here.

use crate::arch::{self, boot_page_table::LINEAR_MAP_BYTES, phys_to_virt};
use crate::sync::BootCell;
use core::fmt;
use fdt::Fdt;
use memlayout::{LayoutError, PhysRange, RangeSet};

/// Capacity limits of the fixed-size tables below (no heap at boot).
pub const MAX_HARTS: usize = 64;
pub const MAX_RAM_REGIONS: usize = 16;
pub const MAX_RESERVATIONS: usize = 32;

/// An MMIO register block.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    pub base: usize,
    pub size: usize,
}

/// The console UART as the device tree describes it.
#[derive(Clone, Copy, Debug)]
pub struct UartInfo {
    pub base: usize,
    pub reg_shift: u32,
    pub io_width: u32,
    pub clock_hz: Option<u32>,
    pub path_name: &'static str,
}

/// A region of RAM that must not be handed out, and who owns it.
#[derive(Clone, Copy, Debug)]
pub struct Reservation {
    pub range: PhysRange,
    pub owner: &'static str,
}

/// A fixed-capacity list of reservations.
#[derive(Clone, Copy, Debug)]
pub struct Reservations {
    items: [Reservation; MAX_RESERVATIONS],
    len: usize,
}

impl Reservations {
    pub const fn new() -> Self {
        const NONE: Reservation = Reservation {
            range: PhysRange::EMPTY,
            owner: "",
        };
        Self {
            items: [NONE; MAX_RESERVATIONS],
            len: 0,
        }
    }

    pub fn push(&mut self, range: PhysRange, owner: &'static str) -> Result<(), PlatformError> {
        if self.len == MAX_RESERVATIONS {
            return Err(PlatformError::TooMany {
                what: "reserved regions",
                capacity: MAX_RESERVATIONS,
            });
        }
        self.items[self.len] = Reservation { range, owner };
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[Reservation] {
        &self.items[..self.len]
    }
}

impl Default for Reservations {
    fn default() -> Self {
        Self::new()
    }
}

/// What the kernel knows about the machine.
pub struct Platform {
    /// The parsed tree, for drivers that look up their own nodes.
    pub fdt: Fdt<'static>,
    pub model: &'static str,
    /// The device-tree blob itself.
    pub dtb: PhysRange,
    hart_ids: [usize; MAX_HARTS],
    hart_count: usize,
    pub timebase_hz: u64,
    pub uart: UartInfo,
    /// The `sifive,test` exit device, if any.
    pub finisher: Option<Mmio>,
    pub ram: RangeSet<MAX_RAM_REGIONS>,
    /// RAM the device tree lists beyond the boot map, left unused.
    pub ram_unreachable: u64,
    /// Memory-reservation block entries and `/reserved-memory` children.
    pub reserved: Reservations,
    pub bootargs: &'static str,
}

impl Platform {
    /// Ids of the harts the device tree lists as usable, in tree order.
    pub fn hart_ids(&self) -> &[usize] {
        &self.hart_ids[..self.hart_count]
    }
}

/// Why the device tree cannot be used.
#[derive(Clone, Copy, Debug)]
pub enum PlatformError {
    OutsideLinearMap {
        what: &'static str,
        range: PhysRange,
    },
    BadBlob(fdt::FdtError),
    Missing(&'static str),
    TooMany {
        what: &'static str,
        capacity: usize,
    },
    BadRegion {
        what: &'static str,
        error: LayoutError,
    },
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutsideLinearMap { what, range } => write!(
                f,
                "{what} at {range} lies beyond the boot map's first {} GiB",
                LINEAR_MAP_BYTES >> 30
            ),
            Self::BadBlob(error) => write!(f, "not a device tree: {error}"),
            Self::Missing(what) => write!(f, "the device tree has no {what}"),
            Self::TooMany { what, capacity } => {
                write!(
                    f,
                    "more than {capacity} {what} (raise the limit in platform.rs)"
                )
            }
            Self::BadRegion { what, error } => write!(f, "bad {what}: {error}"),
        }
    }
}

static PLATFORM: BootCell<Platform> = BootCell::new();

/// The platform, if `discover` has run (for diagnostics that may run
/// before it).
pub fn try_get() -> Option<&'static Platform> {
    PLATFORM.get()
}

/// The platform, once `discover` has run (it runs first thing at boot).
pub fn get() -> &'static Platform {
    PLATFORM
        .get()
        .expect("platform::get() before platform::discover()")
}

pub(crate) fn check_mapped(
    what: &'static str,
    range: PhysRange,
) -> Result<PhysRange, PlatformError> {
    if range.end() > LINEAR_MAP_BYTES as u64 {
        return Err(PlatformError::OutsideLinearMap { what, range });
    }
    Ok(range)
}

pub(crate) fn region(
    what: &'static str,
    base: usize,
    size: usize,
) -> Result<PhysRange, PlatformError> {
    PhysRange::from_base_size(base as u64, size as u64)
        .map_err(|error| PlatformError::BadRegion { what, error })
}

/// Parses the device tree at physical `dtb_phys` and records the result.
pub fn discover(dtb_phys: usize) -> Result<&'static Platform, PlatformError> {
    const HEADER_SIZE: usize = 40;
    check_mapped(
        "device tree header",
        region("device tree", dtb_phys, HEADER_SIZE)?,
    )?;
    // SAFETY: the header lies in the linear map (checked above); `from_ptr`
    // reads the header and, after checking the magic, `totalsize` bytes,
    // which we check before trusting.
    let header = unsafe { Fdt::from_ptr(phys_to_virt(dtb_phys) as *const u8) }
        .map_err(PlatformError::BadBlob)?;
    let dtb = check_mapped(
        "device tree",
        region("device tree", dtb_phys, header.total_size())?,
    )?;
    // SAFETY: the whole blob lies in the linear map and in RAM the kernel
    // never hands out (it is reserved below), so it lives as long as the
    // kernel and nobody writes to it.
    let blob: &'static [u8] = unsafe {
        core::slice::from_raw_parts(phys_to_virt(dtb_phys) as *const u8, header.total_size())
    };
    let fdt = Fdt::new(blob).map_err(PlatformError::BadBlob)?;

    let (hart_ids, hart_count, timebase_hz) = harts(&fdt)?;
    let (ram, ram_unreachable) = ram(&fdt)?;
    let platform = Platform {
        model: fdt
            .find_node("/")
            .and_then(|n| n.property("model"))
            .and_then(|p| p.as_str())
            .unwrap_or("unknown machine"),
        dtb,
        hart_ids,
        hart_count,
        timebase_hz,
        uart: uart(&fdt)?,
        finisher: finisher(&fdt)?,
        ram,
        ram_unreachable,
        reserved: reservations(&fdt)?,
        bootargs: fdt
            .find_node("/chosen")
            .and_then(|n| n.property("bootargs"))
            .and_then(|p| p.as_str())
            .unwrap_or(""),
        fdt,
    };
    Ok(PLATFORM.set(platform))
}

/// The exit device alone, for reporting a failed `discover` with a real
/// failure status.
pub fn emergency_finisher(dtb_phys: usize) -> Option<Mmio> {
    let header = region("device tree", dtb_phys, 40).ok()?;
    check_mapped("device tree header", header).ok()?;
    // SAFETY: as in `discover`: the header is mapped; `from_ptr` checks the
    // magic before reading `totalsize` bytes.
    let fdt = unsafe { Fdt::from_ptr(phys_to_virt(dtb_phys) as *const u8) }.ok()?;
    check_mapped(
        "device tree",
        region("device tree", dtb_phys, fdt.total_size()).ok()?,
    )
    .ok()?;
    finisher(&fdt).ok().flatten()
}

/// The arch module's idea of where RAM is mapped must agree with ours.
const _: () = assert!(arch::KERNEL_OFFSET.is_multiple_of(1 << 30));

mod nodes;
#[cfg(feature = "ktest")]
mod tests;

use nodes::{finisher, harts, ram, reservations, uart};
