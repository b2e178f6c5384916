//! [`PageTable`]: the tree of Sv39 tables rooted at one frame, and its
//! single-page operations (walk, translate, map, unmap, protect).

use core::mem::ManuallyDrop;

use crate::{
    ENTRIES, FrameSource, LEVELS, PAGE_SIZE, PageSize, PageTableEntry, PagingError, PhysAddr,
    PteFlags, Translation, Unmapped, VirtAddr, Walk, WalkEnd, WalkStep,
};

/// An Sv39 address space: a root table frame plus the frame source its
/// tables come from.
///
/// Invariants kept by every operation: each table frame is referenced by
/// exactly one entry (or is the root); no table other than the root is
/// empty (`unmap` frees tables that become empty); an error leaves the
/// tree exactly as it was.
///
/// TLB: no method flushes. After `map`, `unmap` or `protect` of `va`, run
/// `sfence.vma va` on every hart that may use this table (remote harts via
/// SBI RFENCE) before relying on the change; after an `unmap` that freed
/// tables, the freed frames may still sit in page-walk caches, so flush
/// before they can be reused.
pub struct PageTable<F: FrameSource> {
    root: PhysAddr,
    frames: F,
}

impl<F: FrameSource> PageTable<F> {
    /// An empty address space with a fresh root table.
    pub fn new(mut frames: F) -> Result<Self, PagingError> {
        let root = alloc_zeroed_table(&mut frames).ok_or(PagingError::OutOfFrames)?;
        Ok(Self { root, frames })
    }

    /// Adopts an existing tree; its tables will be freed through `frames`
    /// when the `PageTable` drops.
    ///
    /// # Safety
    /// `root` and every table it reaches must be well-formed tables whose
    /// frames `frames` handed out, referenced by nothing else.
    pub unsafe fn from_root(root: PhysAddr, frames: F) -> Self {
        Self { root, frames }
    }

    /// Gives up ownership of the tree without freeing it (for the table
    /// the kernel runs on forever), returning the root and the source.
    pub fn into_parts(self) -> (PhysAddr, F) {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so `frames` is moved out once.
        (this.root, unsafe { core::ptr::read(&this.frames) })
    }

    /// The root table's frame.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The `satp` value selecting this table in Sv39 mode with `asid`.
    pub fn satp(&self, asid: u16) -> usize {
        (8 << 60) | ((asid as usize) << 44) | self.root.ppn()
    }

    /// The frame source.
    pub fn frames(&self) -> &F {
        &self.frames
    }

    /// The frame source, mutably (e.g. to allocate the data frames the
    /// caller maps).
    pub fn frames_mut(&mut self) -> &mut F {
        &mut self.frames
    }

    pub(crate) fn read(&self, table: PhysAddr, index: usize) -> PageTableEntry {
        debug_assert!(index < ENTRIES);
        let entries = self.frames.phys_to_virt(table).cast::<u64>();
        // SAFETY: `table` is a live table frame (FrameSource contract) and
        // `index < 512`, so the slot is inside it; volatile because the
        // hardware walker shares these words.
        PageTableEntry::from_bits(unsafe { entries.add(index).read_volatile() })
    }

    fn write(&mut self, table: PhysAddr, index: usize, entry: PageTableEntry) {
        debug_assert!(index < ENTRIES);
        let entries = self.frames.phys_to_virt(table).cast::<u64>();
        // SAFETY: as in `read`; `&mut self` makes this the only writer, and
        // a single aligned 64-bit store is never seen torn by the walker.
        unsafe { entries.add(index).write_volatile(entry.bits()) }
    }

    fn is_empty_table(&self, table: PhysAddr) -> bool {
        (0..ENTRIES).all(|index| !self.read(table, index).is_valid())
    }

    /// Follows `va` through the levels as the hardware would.
    pub fn walk(&self, va: VirtAddr) -> Walk {
        let mut steps = [None; LEVELS];
        let mut table = self.root;
        for level in (0..LEVELS).rev() {
            let index = va.index(level);
            let entry = self.read(table, index);
            steps[LEVELS - 1 - level] = Some(WalkStep {
                level,
                table,
                index,
                entry,
            });
            let end = if !entry.is_valid() {
                WalkEnd::Invalid { level }
            } else if entry.is_reserved_encoding() || (entry.is_table() && level == 0) {
                WalkEnd::Malformed { level }
            } else if entry.is_leaf() {
                let size = PageSize::at_level(level);
                if !entry.addr().is_aligned(size) {
                    WalkEnd::Malformed { level }
                } else {
                    let pa = PhysAddr::new(entry.addr().as_usize() + va.offset_in(size)).expect(
                        "an aligned 56-bit page base plus an in-page offset stays below 2^56",
                    );
                    WalkEnd::Leaf(Translation {
                        pa,
                        flags: entry.flags(),
                        size,
                    })
                }
            } else {
                table = entry.addr();
                continue;
            };
            return Walk { va, steps, end };
        }
        unreachable!("level 0 always ends the walk")
    }

    /// The physical address, flags and page size mapping `va`.
    pub fn translate(&self, va: VirtAddr) -> Result<Translation, PagingError> {
        let walk = self.walk(va);
        match walk.end {
            WalkEnd::Leaf(translation) => Ok(translation),
            WalkEnd::Invalid { .. } => Err(PagingError::NotMapped { va: va.as_usize() }),
            WalkEnd::Malformed { level } => Err(malformed(&walk, level)),
        }
    }

    /// Maps the page of `size` at `va` to `pa` with `flags` (V, A and D
    /// are added; G and U are the caller's choice).
    ///
    /// Errors, leaving the table unchanged: unaligned `va`/`pa`, flags that
    /// are not a legal leaf, an existing leaf anywhere above or at the
    /// slot, an existing table where a huge page should go, or no frame
    /// for a needed table (frames allocated by this call are returned).
    pub fn map(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        size: PageSize,
        flags: PteFlags,
    ) -> Result<(), PagingError> {
        let leaf = leaf_entry(pa, flags)?;
        if !va.is_aligned(size) {
            return Err(PagingError::Unaligned {
                addr: va.as_usize(),
                required: size,
            });
        }
        if !pa.is_aligned(size) {
            return Err(PagingError::Unaligned {
                addr: pa.as_usize(),
                required: size,
            });
        }
        let target = size.level();
        // Read-only descent: find the deepest existing table on the path.
        let mut table = self.root;
        let mut level = LEVELS - 1;
        while level > target {
            let entry = self.read(table, va.index(level));
            if !entry.is_valid() {
                break;
            }
            if entry.is_reserved_encoding() {
                return Err(PagingError::Malformed { level, entry });
            }
            if entry.is_leaf() {
                return Err(PagingError::AlreadyMapped {
                    va: va.as_usize(),
                    existing: PageSize::at_level(level),
                });
            }
            table = entry.addr();
            level -= 1;
        }
        if level == target {
            let entry = self.read(table, va.index(level));
            if entry.is_leaf() {
                return Err(PagingError::AlreadyMapped {
                    va: va.as_usize(),
                    existing: size,
                });
            }
            if entry.is_table() {
                return Err(PagingError::TableInTheWay {
                    va: va.as_usize(),
                    level,
                });
            }
            self.write(table, va.index(level), leaf);
            return Ok(());
        }
        // Tables for levels `level - 1` down to `target` are missing.
        // Allocate them all before touching the tree, build the new branch
        // bottom-up, and link it with one final store.
        let needed = level - target;
        let mut fresh = [PhysAddr::new(0).expect("zero is a valid address"); LEVELS - 1];
        for slot in 0..needed {
            match alloc_zeroed_table(&mut self.frames) {
                Some(frame) => fresh[slot] = frame,
                None => {
                    for &frame in &fresh[..slot] {
                        // SAFETY: allocated just above and never linked.
                        unsafe { self.frames.dealloc_frame(frame) };
                    }
                    return Err(PagingError::OutOfFrames);
                }
            }
        }
        self.write(fresh[needed - 1], va.index(target), leaf);
        for slot in (0..needed - 1).rev() {
            let child_level = level - 1 - slot;
            self.write(
                fresh[slot],
                va.index(child_level),
                PageTableEntry::table(fresh[slot + 1]),
            );
        }
        self.write(table, va.index(level), PageTableEntry::table(fresh[0]));
        Ok(())
    }

    /// Removes the leaf that starts at `va`, frees the tables that become
    /// empty (never the root), and reports what was mapped.
    pub fn unmap(&mut self, va: VirtAddr) -> Result<Unmapped, PagingError> {
        let (path, leaf_level, entry) = self.find_leaf_start(va)?;
        self.write(
            path[leaf_level].0,
            path[leaf_level].1,
            PageTableEntry::INVALID,
        );
        let mut tables_freed = 0;
        for level in leaf_level..LEVELS - 1 {
            let table = path[level].0;
            if !self.is_empty_table(table) {
                break;
            }
            let (parent, index) = path[level + 1];
            self.write(parent, index, PageTableEntry::INVALID);
            // SAFETY: the only entry referencing `table` was just cleared,
            // and the table came from this source.
            unsafe { self.frames.dealloc_frame(table) };
            tables_freed += 1;
        }
        Ok(Unmapped {
            pa: entry.addr(),
            size: PageSize::at_level(leaf_level),
            flags: entry.flags(),
            tables_freed,
        })
    }

    /// Replaces the flags of the leaf that starts at `va` (V, A, D added)
    /// and returns its previous translation.
    pub fn protect(&mut self, va: VirtAddr, flags: PteFlags) -> Result<Translation, PagingError> {
        let (path, leaf_level, entry) = self.find_leaf_start(va)?;
        let leaf = leaf_entry(entry.addr(), flags)?;
        self.write(path[leaf_level].0, path[leaf_level].1, leaf);
        Ok(Translation {
            pa: entry.addr(),
            flags: entry.flags(),
            size: PageSize::at_level(leaf_level),
        })
    }

    /// The `(table, index)` of each level on the way to the leaf starting
    /// at `va`, indexed by level, plus the leaf's level and entry.
    fn find_leaf_start(
        &self,
        va: VirtAddr,
    ) -> Result<(LevelPath, usize, PageTableEntry), PagingError> {
        let walk = self.walk(va);
        let mut path = [(self.root, 0); LEVELS];
        for step in walk.steps() {
            path[step.level] = (step.table, step.index);
        }
        match walk.end {
            WalkEnd::Leaf(translation) => {
                let size = translation.size;
                if !va.is_aligned(size) {
                    return Err(PagingError::InsideHugePage {
                        va: va.as_usize(),
                        size,
                    });
                }
                let level = size.level();
                Ok((path, level, self.read(path[level].0, path[level].1)))
            }
            WalkEnd::Invalid { .. } => Err(PagingError::NotMapped { va: va.as_usize() }),
            WalkEnd::Malformed { level } => Err(malformed(&walk, level)),
        }
    }
}

impl<F: FrameSource> Drop for PageTable<F> {
    /// Frees every table frame (not the frames the leaves map: those belong
    /// to the caller).
    fn drop(&mut self) {
        for root_index in 0..ENTRIES {
            let entry = self.read(self.root, root_index);
            if !entry.is_table() {
                continue;
            }
            let middle = entry.addr();
            for middle_index in 0..ENTRIES {
                let entry = self.read(middle, middle_index);
                if entry.is_table() {
                    // SAFETY: a level-0 table of this tree, referenced only
                    // here, and the tree is going away.
                    unsafe { self.frames.dealloc_frame(entry.addr()) };
                }
            }
            // SAFETY: as above, for the level-1 table.
            unsafe { self.frames.dealloc_frame(middle) };
        }
        // SAFETY: as above, for the root.
        unsafe { self.frames.dealloc_frame(self.root) };
    }
}

/// `(table, index)` per level, indexed by level.
type LevelPath = [(PhysAddr, usize); LEVELS];

fn malformed(walk: &Walk, level: usize) -> PagingError {
    let entry = walk
        .steps()
        .find(|step| step.level == level)
        .map_or(PageTableEntry::INVALID, |step| step.entry);
    PagingError::Malformed { level, entry }
}

/// The leaf entry for `pa` with the caller's `flags` plus V, A and D
/// (hardware need not set A/D itself; setting them up front avoids the
/// fault an implementation without hardware A/D update would raise).
fn leaf_entry(pa: PhysAddr, flags: PteFlags) -> Result<PageTableEntry, PagingError> {
    if !flags.is_valid_leaf() {
        return Err(PagingError::InvalidFlags {
            flags: flags.bits(),
        });
    }
    Ok(PageTableEntry::new(
        pa,
        flags | PteFlags::V | PteFlags::A | PteFlags::D,
    ))
}

fn alloc_zeroed_table<F: FrameSource>(frames: &mut F) -> Option<PhysAddr> {
    let frame = frames.alloc_frame()?;
    debug_assert!(
        frame.is_aligned(PageSize::Size4K),
        "FrameSource returned unaligned frame {frame}"
    );
    // SAFETY: a fresh frame is ours to write (FrameSource contract).
    unsafe { frames.phys_to_virt(frame).write_bytes(0, PAGE_SIZE) };
    Some(frame)
}
