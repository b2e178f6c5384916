//! The monitor's `meminfo`, `buddyinfo` and `slabinfo` read the way tools
//! read Linux's `/proc` files, and checked byte for byte against the
//! format strings Linux prints them with:
//!
//! - `/proc/meminfo` (procps' `meminfo.c`, `free`): a key up to the colon,
//!   whitespace, a decimal number, then ` kB` or nothing (a count, as
//!   `HugePages_Total`); Linux prints `show_val_kb`'s `%-16s%8lu kB`
//!   (`HardwareCorrupted: %5lu kB` the one exception);
//! - `/proc/buddyinfo`: `Node %d, zone %8s ` and `%6lu ` per order
//!   (mm/vmstat.c `frag_show_print`, trailing space included);
//! - `/proc/slabinfo` 2.1 (slabtop's `sscanf`): the version line, the `#`
//!   header, then `%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u :
//!   slabdata %6lu %6lu %6lu` (mm/slab_common.c `cache_show`).
//!
//! A reader that accepts a line and a re-print that reproduces it exactly
//! together pin the format: no extra text, units or padding get through.

/// A meminfo line: key, value, and whether it is in kB (else a count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemLine {
    pub key: String,
    pub value: u64,
    pub kb: bool,
}

/// The value of `key` in kB (or as a count).
pub fn mem_value(lines: &[MemLine], key: &str) -> Option<u64> {
    lines.iter().find(|l| l.key == key).map(|l| l.value)
}

/// Reads `/proc/meminfo` text as procps does; `Err` names the first line
/// a reader would choke on. With `exact`, each line must also be what
/// Linux's format strings print for its key and value.
pub fn parse_meminfo(text: &str, exact: bool) -> Result<Vec<MemLine>, String> {
    let mut lines = Vec::new();
    for line in text.lines() {
        let (key, rest) = line
            .split_once(':')
            .ok_or(format!("meminfo line without a colon: {line:?}"))?;
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "meminfo key {key:?} is empty or has spaces: {line:?}"
            ));
        }
        let mut words = rest.split_whitespace();
        let value = words
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(format!("meminfo value is not a number: {line:?}"))?;
        let kb = match (words.next(), words.next()) {
            (None, _) => false,
            (Some("kB"), None) => true,
            _ => return Err(format!("meminfo line has more than `value [kB]`: {line:?}")),
        };
        if exact {
            let printed = print_meminfo(key, value, kb);
            if printed != line {
                return Err(format!(
                    "meminfo line {line:?} differs from Linux's {printed:?}"
                ));
            }
        }
        if lines.iter().any(|l: &MemLine| l.key == key) {
            return Err(format!("meminfo key {key} appears twice"));
        }
        lines.push(MemLine {
            key: key.to_string(),
            value,
            kb,
        });
    }
    Ok(lines)
}

/// One meminfo line as Linux prints it.
fn print_meminfo(key: &str, value: u64, kb: bool) -> String {
    let unit = if kb { " kB" } else { "" };
    if key == "HardwareCorrupted" {
        return format!("{key}: {value:>5}{unit}");
    }
    format!("{:<16}{value:>8}{unit}", format!("{key}:"))
}

/// One zone of `/proc/buddyinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub node: u32,
    pub zone: String,
    pub free_blocks: Vec<u64>,
}

impl Zone {
    /// Free pages the counts describe: sum of count x 2^order.
    pub fn free_pages(&self) -> u64 {
        self.free_blocks
            .iter()
            .enumerate()
            .map(|(order, count)| count << order)
            .sum()
    }
}

/// Reads `/proc/buddyinfo`; with `exact`, each line must be what
/// `frag_show_print` prints (trailing space included).
pub fn parse_buddyinfo(text: &str, exact: bool) -> Result<Vec<Zone>, String> {
    let mut zones = Vec::new();
    for line in text.lines() {
        let bad = || format!("buddyinfo line is not `Node N, zone NAME counts...`: {line:?}");
        let mut words = line.split_whitespace();
        if words.next() != Some("Node") {
            return Err(bad());
        }
        let node = words
            .next()
            .and_then(|w| w.strip_suffix(','))
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        if words.next() != Some("zone") {
            return Err(bad());
        }
        let zone = words.next().ok_or_else(bad)?.to_string();
        let free_blocks = words
            .map(|w| w.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        if free_blocks.is_empty() {
            return Err(bad());
        }
        if exact {
            let mut printed = format!("Node {node}, zone {zone:>8} ");
            for count in &free_blocks {
                printed.push_str(&format!("{count:>6} "));
            }
            if printed != line {
                return Err(format!(
                    "buddyinfo line {line:?} differs from Linux's {printed:?}"
                ));
            }
        }
        zones.push(Zone {
            node,
            zone,
            free_blocks,
        });
    }
    Ok(zones)
}

pub const SLABINFO_VERSION: &str = "slabinfo - version: 2.1";
pub const SLABINFO_HEADER: &str = "# name            <active_objs> <num_objs> <objsize> \
     <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata \
     <active_slabs> <num_slabs> <sharedavail>";

/// One `/proc/slabinfo` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabRow {
    pub name: String,
    pub active_objs: u64,
    pub num_objs: u64,
    pub objsize: u64,
    pub objperslab: u64,
    pub pagesperslab: u64,
    pub tunables: [u64; 3],
    pub active_slabs: u64,
    pub num_slabs: u64,
    pub sharedavail: u64,
}

/// Reads `/proc/slabinfo` 2.1 as slabtop does; with `exact`, each row
/// must be what `cache_show` prints.
pub fn parse_slabinfo(text: &str, exact: bool) -> Result<Vec<SlabRow>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(SLABINFO_VERSION) {
        return Err(format!("slabinfo does not start with {SLABINFO_VERSION:?}"));
    }
    if lines.next() != Some(SLABINFO_HEADER) {
        return Err("slabinfo's second line is not Linux's `# name ...` header".into());
    }
    let mut rows = Vec::new();
    for line in lines {
        let bad = || {
            format!(
                "slabinfo row does not scan as `%s %lu %lu %u %u %u : tunables %u %u %u : slabdata %lu %lu %lu`: {line:?}"
            )
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() != 16
            || words[6] != ":"
            || words[7] != "tunables"
            || words[11] != ":"
            || words[12] != "slabdata"
        {
            return Err(bad());
        }
        let number = |i: usize| words[i].parse::<u64>().map_err(|_| bad());
        let row = SlabRow {
            name: words[0].to_string(),
            active_objs: number(1)?,
            num_objs: number(2)?,
            objsize: number(3)?,
            objperslab: number(4)?,
            pagesperslab: number(5)?,
            tunables: [number(8)?, number(9)?, number(10)?],
            active_slabs: number(13)?,
            num_slabs: number(14)?,
            sharedavail: number(15)?,
        };
        if exact {
            let printed = format!(
                "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
                row.name,
                row.active_objs,
                row.num_objs,
                row.objsize,
                row.objperslab,
                row.pagesperslab,
                row.tunables[0],
                row.tunables[1],
                row.tunables[2],
                row.active_slabs,
                row.num_slabs,
                row.sharedavail
            );
            if printed != line {
                return Err(format!(
                    "slabinfo row {line:?} differs from Linux's {printed:?}"
                ));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Linux prints `/proc/meminfo`, `/proc/buddyinfo` and
    /// `/proc/slabinfo` (two zones, a count without a unit, the one
    /// `%5lu` key; the figures are made up): the readers accept them and
    /// re-print them exactly.
    const LINUX_MEMINFO: &str = "MemTotal:       16318616 kB\n\
MemFree:         1012756 kB\n\
MemAvailable:    9651284 kB\n\
SUnreclaim:       191072 kB\n\
KernelStack:       19968 kB\n\
HardwareCorrupted:     0 kB\n\
HugePages_Total:       0\n\
DirectMap2M:    12498944 kB\n\
DirectMap1G:     4194304 kB\n";
    const LINUX_BUDDYINFO: &str = "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      2 \n\
Node 0, zone   Normal   3012   1534    824    433    232    101     45     12      3      1    105 \n";
    const LINUX_SLABINFO: &str = "slabinfo - version: 2.1\n\
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
kmalloc-8k           164    168   8192    4    8 : tunables    0    0    0 : slabdata     42     42      0\n\
kmalloc-64         13248  13248     64   64    1 : tunables    0    0    0 : slabdata    207    207      0\n";

    #[test]
    fn linux_s_own_output_reads_and_reprints_exactly() {
        let mem = parse_meminfo(LINUX_MEMINFO, true).unwrap();
        assert_eq!(mem_value(&mem, "MemAvailable"), Some(9651284));
        assert_eq!(mem_value(&mem, "HugePages_Total"), Some(0));
        assert!(!mem.iter().find(|l| l.key == "HugePages_Total").unwrap().kb);
        let zones = parse_buddyinfo(LINUX_BUDDYINFO, true).unwrap();
        assert_eq!(zones[1].zone, "Normal");
        assert_eq!(zones[0].free_pages(), 256 + 512 + 2 * 1024);
        let rows = parse_slabinfo(LINUX_SLABINFO, true).unwrap();
        assert_eq!(rows[1].name, "kmalloc-64");
        assert_eq!(rows[0].pagesperslab, 8);
    }

    #[test]
    fn notes_units_and_padding_linux_does_not_print_are_refused() {
        for bad in [
            "WatermarkHigh:      2148 kB  above high",
            "HeapUsed:        128 B",
            "HeapAllocator:  slab+tlsf",
            "FreePages 31949",
        ] {
            assert!(parse_meminfo(bad, false).is_err(), "{bad}");
        }
        // Readable, but not Linux's padding.
        assert!(parse_meminfo("MemFree:  12 kB", false).is_ok());
        assert!(parse_meminfo("MemFree:  12 kB", true).is_err());
        // buddyinfo: the old `%7lu` columns and a comment line.
        assert!(parse_buddyinfo("Node 0, zone   Normal       1      2", true).is_err());
        assert!(parse_buddyinfo("# orders 0..=13", false).is_err());
        assert!(parse_slabinfo("slabinfo: the kernel heap is `tlsf`", false).is_err());
    }
}
