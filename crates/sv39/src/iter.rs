//! Iteration over every leaf mapping, in increasing virtual-address order
//! of the table indices (lower half first, then the sign-extended upper
//! half). Adjacent leaves are reported separately: merging is the caller's.

use crate::{ENTRIES, FrameSource, LEVELS, PageSize, PageTable, PhysAddr, PteFlags, VirtAddr};

/// One leaf of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First virtual byte.
    pub va: VirtAddr,
    /// First physical byte.
    pub pa: PhysAddr,
    /// Page size.
    pub size: PageSize,
    /// Leaf flags.
    pub flags: PteFlags,
}

/// Iterator over the leaves of a [`PageTable`]; see
/// [`PageTable::mappings`]. Entries with a reserved encoding are skipped
/// (`walk`/`translate` report them as `Malformed`).
pub struct Mappings<'a, F: FrameSource> {
    table: &'a PageTable<F>,
    /// The table being scanned at each level.
    tables: [PhysAddr; LEVELS],
    /// The next index to look at, per level.
    next: [usize; LEVELS],
    /// The level currently scanned.
    level: usize,
}

impl<F: FrameSource> PageTable<F> {
    /// Every leaf mapping.
    pub fn mappings(&self) -> Mappings<'_, F> {
        let root = self.root();
        Mappings {
            table: self,
            tables: [root; LEVELS],
            next: [0; LEVELS],
            level: LEVELS - 1,
        }
    }
}

impl<F: FrameSource> Iterator for Mappings<'_, F> {
    type Item = Mapping;

    fn next(&mut self) -> Option<Mapping> {
        loop {
            let level = self.level;
            let index = self.next[level];
            if index == ENTRIES {
                if level == LEVELS - 1 {
                    return None;
                }
                self.level += 1;
                continue;
            }
            self.next[level] += 1;
            let entry = self.table.read(self.tables[level], index);
            if !entry.is_valid() || entry.is_reserved_encoding() {
                continue;
            }
            if entry.is_table() {
                if level > 0 {
                    self.level -= 1;
                    self.tables[self.level] = entry.addr();
                    self.next[self.level] = 0;
                }
                continue;
            }
            let size = PageSize::at_level(level);
            if !entry.addr().is_aligned(size) {
                continue;
            }
            let low_bits = (level..LEVELS).fold(0, |va, l| {
                let index_at_l = if l == level { index } else { self.next[l] - 1 };
                va | (index_at_l << (12 + 9 * l))
            });
            return Some(Mapping {
                va: VirtAddr::from_low_bits(low_bits),
                pa: entry.addr(),
                size,
                flags: entry.flags(),
            });
        }
    }
}
