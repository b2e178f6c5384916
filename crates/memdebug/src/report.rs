//! What a debug layer says when it catches something: one [`Report`] per
//! event, naming what happened, where, who, and what the layer did about it.

use core::fmt;

use crate::CallSite;

/// The history of the block a report is about, as far as it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockInfo {
    /// First byte of the block as its owner sees it.
    pub start: usize,
    /// Size requested (bytes for byte layers, pages for page layers).
    pub size: usize,
    /// Alignment requested.
    pub align: usize,
    /// Sequence number of the allocation (1 = first allocation ever).
    pub seq: u64,
    /// Who allocated it.
    pub alloc_site: CallSite,
    /// When it was allocated (clock ticks).
    pub alloc_time: u64,
    /// Who freed it, if it has been freed.
    pub free_site: CallSite,
    /// When it was freed (clock ticks), if it has been.
    pub free_time: u64,
}

/// Which side of an object a red zone guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Before the object: an underflow.
    Front,
    /// After the object: an overflow.
    Rear,
}

/// Up to 16 bytes found where a pattern was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundBytes {
    bytes: [u8; 16],
    len: u8,
}

impl FoundBytes {
    /// Copies up to 16 bytes of `found`.
    pub fn new(found: &[u8]) -> FoundBytes {
        let len = found.len().min(16);
        let mut bytes = [0; 16];
        bytes[..len].copy_from_slice(&found[..len]);
        FoundBytes {
            bytes,
            len: len as u8,
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// A free of a block that is already free (and still in quarantine,
    /// so its history is known).
    DoubleFree,
    /// A free of an address inside a live block, not at its start.
    InteriorFree {
        /// The address's offset from the block's start.
        offset: usize,
    },
    /// A free of an address that is no block this layer knows of.
    UnknownFree,
    /// A free whose size or alignment differs from the allocation.
    WrongLayout {
        /// The size the free named.
        size: usize,
        /// The alignment the free named.
        align: usize,
    },
    /// A free of an address outside every region the layer manages.
    OutOfRange,
    /// A freed block's poison was overwritten while in quarantine.
    WriteAfterFree {
        /// Offset of the first changed byte from the block's start.
        offset: usize,
        /// The poison byte that should be there.
        expected: u8,
        /// The bytes found from that offset.
        found: FoundBytes,
    },
    /// A red zone was overwritten. `offset` is relative to the object start
    /// (negative in the front zone, `>= size` in the rear zone).
    RedZone {
        /// Which zone.
        side: Side,
        /// Offset of the first changed byte from the object's start.
        offset: isize,
        /// The red-zone byte that should be there.
        expected: u8,
        /// The bytes found from that offset.
        found: FoundBytes,
    },
    /// The inner allocator could not satisfy a request.
    OutOfMemory {
        /// The size asked for.
        size: usize,
        /// The alignment asked for.
        align: usize,
        /// What the inner allocator had handed out.
        used: usize,
        /// What it could still hand out.
        available: usize,
    },
    /// The layer's table of live blocks is full; the request was refused.
    TableFull {
        /// How many blocks the table holds.
        capacity: usize,
    },
}

/// What a layer counts sizes in (alignments are always bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A byte layer's sizes.
    Bytes,
    /// A page layer's sizes.
    Pages,
}

/// `count` of `unit`, singular for one: "1 page", "48 bytes".
struct Amount(usize, Unit);

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Amount(count, unit) = *self;
        let (one, many) = match unit {
            Unit::Bytes => ("byte", "bytes"),
            Unit::Pages => ("page", "pages"),
        };
        write!(f, "{count} {}", if count == 1 { one } else { many })
    }
}

/// What the layer did about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The operation was refused; the allocator is unchanged.
    Refused,
    /// The corruption was reported, the pattern restored and the operation
    /// carried out.
    Repaired,
    /// The allocation failed with an error the caller can handle.
    Failed,
}

/// One event caught by a debug layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The layer's name (e.g. `kheap`, `pages`).
    pub layer: &'static str,
    /// What the report's sizes count: the kind's and the block's.
    pub unit: Unit,
    /// What happened.
    pub kind: ReportKind,
    /// The address the operation named.
    pub addr: usize,
    /// Who performed the operation.
    pub site: CallSite,
    /// The block involved, when known.
    pub block: Option<BlockInfo>,
    /// What the layer did about it.
    pub action: Action,
}

/// Where reports go (the kernel logs them; tests collect them).
///
/// A layer calls its sink in the middle of an operation, with whatever
/// lock guards the layer still held. A sink must therefore not block,
/// print, allocate or wait for another CPU: a console lock taken here
/// closes a deadlock with any CPU that allocates while printing. Queue
/// the report ([`ReportQueue`]) and emit it once the lock is released.
pub trait ReportSink {
    /// Receives one report.
    fn report(&mut self, report: &Report);
}

/// A sink that keeps up to `N` reports for the owner to emit after it
/// released the layer's lock; reports beyond `N` are counted, not kept.
#[derive(Debug, Clone, Copy)]
pub struct ReportQueue<const N: usize> {
    reports: [Option<Report>; N],
    len: usize,
    dropped: usize,
}

impl<const N: usize> Default for ReportQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ReportQueue<N> {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            reports: [None; N],
            len: 0,
            dropped: 0,
        }
    }

    /// Whether nothing waits to be emitted (no report kept or dropped).
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.dropped == 0
    }

    /// Empties the queue into what it returns: the reports in arrival
    /// order, and how many did not fit. The iterator owns its reports
    /// (`use<N>`: it does not borrow the queue).
    pub fn take(&mut self) -> (impl Iterator<Item = Report> + use<N>, usize) {
        let taken = core::mem::take(self);
        let dropped = taken.dropped;
        (taken.reports.into_iter().take(taken.len).flatten(), dropped)
    }
}

impl<const N: usize> ReportSink for ReportQueue<N> {
    fn report(&mut self, report: &Report) {
        match self.reports.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(*report);
                self.len += 1;
            }
            None => self.dropped += 1,
        }
    }
}

/// A sink that drops every report (the layer still refuses bad operations).
#[derive(Debug, Default, Clone, Copy)]
pub struct IgnoreReports;

impl ReportSink for IgnoreReports {
    fn report(&mut self, _: &Report) {}
}

impl<S: ReportSink + ?Sized> ReportSink for &mut S {
    fn report(&mut self, report: &Report) {
        (**self).report(report)
    }
}

impl fmt::Display for FoundBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (layer, addr, unit) = (self.layer, self.addr, self.unit);
        match self.kind {
            ReportKind::DoubleFree => write!(f, "[{layer}] double free of {addr:#x}")?,
            ReportKind::InteriorFree { offset } => write!(
                f,
                "[{layer}] invalid free of {addr:#x}: offset +{offset:#x} inside a live block"
            )?,
            ReportKind::UnknownFree => write!(
                f,
                "[{layer}] invalid free of {addr:#x}: not a block this allocator handed out"
            )?,
            ReportKind::WrongLayout { size, align } => write!(
                f,
                "[{layer}] invalid free of {addr:#x}: freed as {} (align {align}), \
                 allocated with a different size or alignment",
                Amount(size, unit)
            )?,
            ReportKind::OutOfRange => write!(
                f,
                "[{layer}] invalid free of {addr:#x}: outside every managed region"
            )?,
            ReportKind::WriteAfterFree {
                offset,
                expected,
                found,
            } => write!(
                f,
                "[{layer}] write after free in block {addr:#x} at offset +{offset:#x}: \
                 expected {expected:02x}, found {found}"
            )?,
            ReportKind::RedZone {
                side,
                offset,
                expected,
                found,
            } => {
                let what = match side {
                    Side::Front => "underflow",
                    Side::Rear => "overflow",
                };
                write!(
                    f,
                    "[{layer}] buffer {what} of block {addr:#x}: red zone byte at offset \
                     {offset:+} overwritten (expected {expected:02x}, found {found})"
                )?
            }
            ReportKind::OutOfMemory {
                size,
                align,
                used,
                available,
            } => write!(
                f,
                "[{layer}] out of memory: request of {} (align {align}) failed; \
                 {} in use, {available} available",
                Amount(size, unit),
                Amount(used, unit)
            )?,
            ReportKind::TableFull { capacity } => write!(
                f,
                "[{layer}] debug table full ({capacity} live blocks): request refused"
            )?,
        }
        write!(f, "\n  by {}", self.site)?;
        if let Some(block) = &self.block {
            write!(
                f,
                "\n  block {:#x}, size {}, align {}, allocation #{} by {} at t={}",
                block.start,
                Amount(block.size, unit),
                block.align,
                block.seq,
                block.alloc_site,
                block.alloc_time
            )?;
            if block.free_site.is_known() || block.free_time != 0 {
                write!(
                    f,
                    "\n  freed by {} at t={}",
                    block.free_site, block.free_time
                )?;
            }
        }
        f.write_str(match self.action {
            Action::Refused => "\n  action: refused, allocator unchanged",
            Action::Repaired => "\n  action: pattern restored, operation completed",
            Action::Failed => "\n  action: allocation failed with an error",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn sizes_name_their_unit_singular_for_one() {
        let block = BlockInfo {
            start: 0x1000,
            size: 1,
            align: 4096,
            ..BlockInfo::default()
        };
        let report = |unit, kind| Report {
            layer: "t",
            unit,
            kind,
            addr: 0x1000,
            site: CallSite::Unknown,
            block: Some(block),
            action: Action::Refused,
        };
        let wrong = ReportKind::WrongLayout { size: 2, align: 1 };
        let pages = report(Unit::Pages, wrong).to_string();
        assert!(pages.contains("freed as 2 pages (align 1)"), "{pages}");
        assert!(
            pages.contains("block 0x1000, size 1 page, align 4096,"),
            "{pages}"
        );
        let bytes = report(Unit::Bytes, wrong).to_string();
        assert!(
            bytes.contains("freed as 2 bytes") && bytes.contains("size 1 byte,"),
            "{bytes}"
        );
    }
}
