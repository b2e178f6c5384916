//! Page-fault diagnosis: which region of the kernel's address space a
//! faulting address hits, named for a human ("guard page below hart 2's
//! stack", "write to .rodata", "unmapped"). The fatal-trap path prints it
//! and the expected-fault tests compare against it.

use crate::arch::{self, hart, trap::Access};
use crate::memory::{layout, paging, stacks};
use core::fmt;

/// Where a faulting address lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// The guard page below the stack of hart `hart_id`.
    StackGuard { hart_id: usize },
    /// The guard page below the trap stack of hart `hart_id`.
    TrapStackGuard { hart_id: usize },
    /// A section of the kernel image.
    Section(&'static str),
    /// RAM through the linear map.
    LinearMap,
    /// An MMIO device from the device tree.
    Device(&'static str),
    /// The `memdebug.kfence` window: a sampled block's guard page, or the
    /// page of a block already freed.
    Sampled(crate::memdiag::debug::kfence::GuardHit),
    /// Nothing is mapped there.
    Unmapped,
}

/// An access and the region it hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub access: Access,
    pub region: Region,
}

fn verb(access: Access) -> &'static str {
    match access {
        Access::Fetch => "execute from",
        Access::Load => "read from",
        Access::Store => "write to",
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.region {
            Region::StackGuard { hart_id } => {
                write!(f, "guard page below hart {hart_id}'s stack")
            }
            Region::TrapStackGuard { hart_id } => {
                write!(f, "guard page below hart {hart_id}'s trap stack")
            }
            Region::Section(name) => write!(f, "{} {name}", verb(self.access)),
            Region::LinearMap => write!(
                f,
                "{} the linear map of RAM (RW-, never executable)",
                verb(self.access)
            ),
            Region::Device(name) => write!(f, "{} device {name}", verb(self.access)),
            Region::Sampled(hit) => match hit.block {
                Some(block) => write!(
                    f,
                    "{} {} sampled block {:#x} ({} bytes) at offset {:+}",
                    verb(self.access),
                    if hit.freed {
                        "freed"
                    } else {
                        "the guard page of"
                    },
                    block.start,
                    block.size,
                    hit.offset
                ),
                None => write!(f, "{} the sampled-block window", verb(self.access)),
            },
            Region::Unmapped => f.write_str("unmapped"),
        }
    }
}

/// Names the region `addr` lies in.
pub fn region_of(addr: usize) -> Region {
    for block in hart::HARTS.iter().filter(|h| h.stack().end != 0) {
        let guard = if block.slot() == hart::BOOT_SLOT {
            layout::boot_stack_guard()
        } else {
            stacks::guard_of(block)
        };
        if guard.contains(&addr) {
            return Region::StackGuard {
                hart_id: block.hart_id(),
            };
        }
        if stacks::trap_guard_of(block).contains(&addr) {
            return Region::TrapStackGuard {
                hart_id: block.hart_id(),
            };
        }
    }
    if crate::memdiag::debug::kfence::owns(addr) {
        return Region::Sampled(crate::memdiag::debug::kfence::hit(addr));
    }
    for section in layout::sections() {
        if section.virt.contains(&addr) {
            return Region::Section(section.name);
        }
    }
    if let Some(name) = paging::device_at(addr) {
        return Region::Device(name);
    }
    if paging::is_mapped(addr) == Some(false) {
        return Region::Unmapped;
    }
    if addr >= arch::KERNEL_OFFSET && paging::is_ram(arch::virt_to_phys(addr)) {
        return Region::LinearMap;
    }
    Region::Unmapped
}

/// Prints the diagnosis of a fatal fault (`arch::trap::set_fault_explainer`).
pub fn explain(addr: usize, access: Access) {
    crate::print!("{}", diagnose(addr, access));
}

/// The diagnosis of a fault at `addr` by `access`.
pub fn diagnose(addr: usize, access: Access) -> Diagnosis {
    Diagnosis {
        access,
        region: region_of(addr),
    }
}

#[cfg(feature = "ktest")]
#[allow(
    unsafe_code,
    reason = "the tests touch guard pages and unmapped memory on purpose"
)]
mod tests;
