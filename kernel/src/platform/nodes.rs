//! Reading the individual device-tree nodes `discover` needs: cpus, the
//! console UART, the exit device, memory and reservations. Each reader
//! returns a typed error naming what is missing or malformed.

use super::{
    MAX_HARTS, MAX_RAM_REGIONS, Mmio, PlatformError, Reservations, UartInfo, check_mapped, region,
};
use crate::arch::boot_page_table::LINEAR_MAP_BYTES;
use fdt::{Fdt, node::FdtNode};
use memlayout::{PhysRange, RangeSet};

pub(super) fn harts(fdt: &Fdt<'static>) -> Result<([usize; MAX_HARTS], usize, u64), PlatformError> {
    let cpus = fdt
        .find_node("/cpus")
        .ok_or(PlatformError::Missing("/cpus node"))?;
    let default_timebase = cpus
        .property("timebase-frequency")
        .and_then(|p| p.as_usize());
    let mut ids = [0; MAX_HARTS];
    let mut count = 0;
    let mut timebase = default_timebase;
    for cpu in cpus.children() {
        let is_cpu = cpu.property("device_type").and_then(|p| p.as_str()) == Some("cpu");
        let usable = cpu
            .property("status")
            .and_then(|p| p.as_str())
            .is_none_or(|s| s == "okay" || s == "ok");
        if !is_cpu || !usable {
            continue;
        }
        let id = cpu
            .property("reg")
            .and_then(|p| p.as_usize())
            .ok_or(PlatformError::Missing("cpu `reg` (hart id)"))?;
        if count == MAX_HARTS {
            return Err(PlatformError::TooMany {
                what: "harts",
                capacity: MAX_HARTS,
            });
        }
        ids[count] = id;
        count += 1;
        timebase = timebase.or_else(|| {
            cpu.property("timebase-frequency")
                .and_then(|p| p.as_usize())
        });
    }
    if count == 0 {
        return Err(PlatformError::Missing("usable cpu node"));
    }
    let timebase = timebase
        .filter(|&hz| hz > 0)
        .ok_or(PlatformError::Missing("timebase-frequency"))?;
    Ok((ids, count, timebase as u64))
}

fn first_reg(node: FdtNode<'_, 'static>, what: &'static str) -> Result<Mmio, PlatformError> {
    let reg = node
        .reg()
        .and_then(|mut r| r.next())
        .ok_or(PlatformError::Missing(what))?;
    let mmio = Mmio {
        base: reg.starting_address as usize,
        size: reg.size.unwrap_or(0),
    };
    check_mapped(what, region(what, mmio.base, mmio.size)?)?;
    Ok(mmio)
}

fn is_16550(node: &FdtNode<'_, 'static>) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|s| s == "ns16550a" || s == "ns16550"))
}

pub(super) fn uart(fdt: &Fdt<'static>) -> Result<UartInfo, PlatformError> {
    let from_chosen = fdt
        .find_node("/chosen")
        .and_then(|n| n.property("stdout-path"))
        .and_then(|p| p.as_str())
        .and_then(|path| fdt.find_node(path.split(':').next().unwrap_or(path)))
        .filter(is_16550);
    let node = from_chosen
        .or_else(|| fdt.find_compatible(&["ns16550a", "ns16550"]))
        .ok_or(PlatformError::Missing("ns16550a UART"))?;
    let mmio = first_reg(node, "UART registers")?;
    let prop_u32 = |name| {
        node.property(name)
            .and_then(|p| p.as_usize())
            .map(|v| v as u32)
    };
    let io_width = prop_u32("reg-io-width").unwrap_or(1);
    if io_width != 1 && io_width != 4 {
        return Err(PlatformError::Missing("UART with reg-io-width 1 or 4"));
    }
    Ok(UartInfo {
        base: mmio.base,
        reg_shift: prop_u32("reg-shift").unwrap_or(0),
        io_width,
        clock_hz: prop_u32("clock-frequency"),
        path_name: node.name,
    })
}

pub(super) fn finisher(fdt: &Fdt<'static>) -> Result<Option<Mmio>, PlatformError> {
    match fdt.find_compatible(&["sifive,test1", "sifive,test0"]) {
        Some(node) => first_reg(node, "sifive,test registers").map(Some),
        None => Ok(None),
    }
}

/// RAM inside the boot map, and the number of bytes beyond it.
pub(super) fn ram(fdt: &Fdt<'static>) -> Result<(RangeSet<MAX_RAM_REGIONS>, u64), PlatformError> {
    let mut ram = RangeSet::new();
    let mut unreachable = 0;
    for node in fdt.all_nodes() {
        if node.property("device_type").and_then(|p| p.as_str()) != Some("memory") {
            continue;
        }
        for reg in node.reg().into_iter().flatten() {
            let range = region(
                "memory node",
                reg.starting_address as usize,
                reg.size.unwrap_or(0),
            )?;
            let limit = LINEAR_MAP_BYTES as u64;
            let mapped = PhysRange::new(range.start().min(limit), range.end().min(limit))
                .expect("min keeps order");
            unreachable += range.size() - mapped.size();
            ram.insert(mapped)
                .map_err(|error| PlatformError::BadRegion {
                    what: "RAM regions",
                    error,
                })?;
        }
    }
    if ram.is_empty() {
        return Err(PlatformError::Missing(
            "memory node with a non-empty reg inside the boot map",
        ));
    }
    Ok((ram, unreachable))
}

pub(super) fn reservations(fdt: &Fdt<'static>) -> Result<Reservations, PlatformError> {
    let mut reserved = Reservations::new();
    for entry in fdt.memory_reservations() {
        reserved.push(
            region("memreserve entry", entry.address() as usize, entry.size())?,
            "/memreserve/",
        )?;
    }
    if let Some(node) = fdt.find_node("/reserved-memory") {
        for child in node.children() {
            // Nodes with only `size` ask the OS to allocate; none are
            // honoured (and QEMU's firmware creates none).
            for reg in child.reg().into_iter().flatten() {
                let range = region(
                    "reserved-memory node",
                    reg.starting_address as usize,
                    reg.size.unwrap_or(0),
                )?;
                reserved.push(range, child.name)?;
            }
        }
    }
    Ok(reserved)
}
