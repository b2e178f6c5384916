//! The ledger of large blocks: runs of whole pages a byte allocator takes
//! from its page source for one request and hands out as they are.
//!
//! A page source cannot tell such a block from any other pages it handed
//! out, such as a slab or a pool of the same byte allocator, so a layer
//! that passes a free of a large block straight on would accept a second
//! free once the pages serve something else, and free them under it. The
//! layer records each large block here when it hands it out and passes a
//! free on only for a block recorded with exactly that page count.
//!
//! ```text
//!   slots (pages taken from the source, a power of two of them)
//!   ┌──────────┬──────────┬──────────┬──────────┬─────
//!   │ start  n │    0     │ start  n │ start  n │ ...      start 0 = empty
//!   └──────────┴──────────┴──────────┴──────────┴─────
//!     home slot = hash(start); linear probing
//! ```
//!
//! Open addressing with linear probing, at most half full, so a lookup
//! reads one or two slots; removal shifts later entries of the same probe
//! run back (no tombstones). The table grows by doubling (its pages come
//! from the same source) and gives its pages back when it empties.

use core::ptr::NonNull;

use super::PageSource;
use crate::{AllocError, AllocResult};

/// One recorded block: its start address (0 marks an empty slot: no page
/// run starts at address 0) and its page count.
#[derive(Clone, Copy)]
struct Slot {
    start: usize,
    pages: usize,
}

const EMPTY: Slot = Slot { start: 0, pages: 0 };

/// The live large blocks of one byte allocator, keyed by start address.
pub struct LargeBlocks {
    /// `capacity` slots in pages of the source; dangling while empty.
    slots: NonNull<Slot>,
    capacity: usize,
    len: usize,
    /// Pages of all recorded blocks.
    pages: usize,
}

// SAFETY: the table owns its slot pages (taken from a page source the
// owner of the table also owns); nothing else points into them.
unsafe impl Send for LargeBlocks {}

impl Default for LargeBlocks {
    fn default() -> Self {
        Self::new()
    }
}

impl LargeBlocks {
    /// An empty table; it takes no pages until the first block.
    pub const fn new() -> Self {
        Self {
            slots: NonNull::dangling(),
            capacity: 0,
            len: 0,
            pages: 0,
        }
    }

    /// Blocks recorded.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no block is recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pages of all recorded blocks.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Pages the table itself holds (its slots).
    pub fn table_pages<P: PageSource>(&self) -> usize {
        Self::pages_for::<P>(self.capacity)
    }

    /// Checks that a block of exactly `pages` pages starts at `start`:
    /// `NotAllocated` otherwise (no such block, or one of another size).
    pub fn check(&self, start: usize, pages: usize) -> AllocResult {
        match self.find(start) {
            Some(index) if self.slot(index).pages == pages => Ok(()),
            _ => Err(AllocError::NotAllocated),
        }
    }

    /// The page count of the block starting at `start`, if one does.
    pub fn pages_at(&self, start: usize) -> Option<usize> {
        self.find(start).map(|index| self.slot(index).pages)
    }

    /// Makes room for one more block, growing the table if needed, so the
    /// following [`insert_reserved`](Self::insert_reserved) cannot fail.
    /// `NoMemory` if the table is full and the source has no pages for a
    /// larger one.
    pub fn reserve<P: PageSource>(&mut self, source: &mut P) -> AllocResult {
        if (self.len + 1) * 2 <= self.capacity {
            return Ok(());
        }
        let wanted = (self.capacity * 2).max(Self::min_capacity::<P>());
        match self.rebuild(source, wanted) {
            Ok(()) => Ok(()),
            // A denser table still works while one slot stays empty to end
            // every probe run.
            Err(_) if self.len + 2 <= self.capacity => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Records a block of `pages` pages at `start` (non-zero).
    ///
    /// # Panics
    /// If no [`reserve`](Self::reserve) made room for it, or `start` is
    /// already recorded: both are bugs of the caller.
    pub fn insert_reserved(&mut self, start: usize, pages: usize) {
        assert!(
            start != 0 && self.len + 2 <= self.capacity.max(1),
            "LargeBlocks::insert_reserved without reserve"
        );
        let mask = self.capacity - 1;
        let mut index = self.home(start);
        loop {
            let slot = self.slot(index);
            assert!(slot.start != start, "large block {start:#x} recorded twice");
            if slot.start == 0 {
                break;
            }
            index = (index + 1) & mask;
        }
        self.set(index, Slot { start, pages });
        self.len += 1;
        self.pages += pages;
    }

    /// Forgets the block at `start`, which [`check`](Self::check) just
    /// accepted, and returns its page count; the table shrinks (or gives
    /// all its pages back) as it empties.
    pub fn remove<P: PageSource>(&mut self, source: &mut P, start: usize) -> Option<usize> {
        let index = self.find(start)?;
        let pages = self.slot(index).pages;
        self.remove_at(index);
        self.len -= 1;
        self.pages -= pages;
        if self.len == 0 {
            self.release(source);
        } else if self.len * 8 < self.capacity && self.capacity > Self::min_capacity::<P>() {
            // Best effort: a table that cannot shrink keeps working as is.
            let _kept_larger = self.rebuild(source, self.capacity / 2);
        }
        Some(pages)
    }

    /// Gives the table's pages back if no block is recorded.
    pub fn release<P: PageSource>(&mut self, source: &mut P) {
        if self.len != 0 || self.capacity == 0 {
            return;
        }
        let pages = self.table_pages::<P>();
        // SAFETY: the slots are exactly the `pages` pages `rebuild` took
        // from this source, and no slot is read any more.
        if unsafe { source.dealloc_pages(self.slots.cast(), pages) }.is_ok() {
            self.slots = NonNull::dangling();
            self.capacity = 0;
        }
        // A refused free keeps the (empty) table: nothing is lost, and the
        // next release tries again.
    }

    fn min_capacity<P: PageSource>() -> usize {
        (P::PAGE_SIZE / size_of::<Slot>()).max(2)
    }

    fn pages_for<P: PageSource>(capacity: usize) -> usize {
        (capacity * size_of::<Slot>()).div_ceil(P::PAGE_SIZE)
    }

    /// Moves every entry into a fresh table of `capacity` slots (a power of
    /// two) and gives the old one back. On any failure the old table stays.
    fn rebuild<P: PageSource>(&mut self, source: &mut P, capacity: usize) -> AllocResult {
        debug_assert!(capacity.is_power_of_two() && capacity > self.len * 2);
        let pages = Self::pages_for::<P>(capacity);
        let fresh = source.alloc_pages(pages, P::PAGE_SIZE)?.cast::<Slot>();
        let old = core::mem::replace(
            self,
            Self {
                slots: fresh,
                capacity,
                len: 0,
                pages: 0,
            },
        );
        for index in 0..capacity {
            self.set(index, EMPTY);
        }
        for index in 0..old.capacity {
            let slot = old.slot(index);
            if slot.start != 0 {
                self.insert_reserved(slot.start, slot.pages);
            }
        }
        if old.capacity == 0 {
            return Ok(());
        }
        let old_pages = old.table_pages::<P>();
        // SAFETY: the old slots are exactly the pages an earlier `rebuild`
        // took from this source, and nothing reads them any more.
        let freed = unsafe { source.dealloc_pages(old.slots.cast(), old_pages) };
        if let Err(error) = freed {
            // Keep the old table and give the fresh one back instead.
            let fresh_table = core::mem::replace(self, old);
            // SAFETY: as above, for the fresh slots just taken.
            let _ = unsafe { source.dealloc_pages(fresh.cast(), fresh_table.table_pages::<P>()) };
            return Err(error);
        }
        Ok(())
    }

    /// The slot index holding `start`, if recorded.
    fn find(&self, start: usize) -> Option<usize> {
        if self.capacity == 0 || start == 0 {
            return None;
        }
        let mask = self.capacity - 1;
        let mut index = self.home(start);
        loop {
            let slot = self.slot(index);
            if slot.start == start {
                return Some(index);
            }
            if slot.start == 0 {
                return None;
            }
            index = (index + 1) & mask;
        }
    }

    /// Empties slot `index` and shifts later entries of its probe run back
    /// into the hole when their home slot allows it (Knuth's algorithm R),
    /// so every entry stays reachable from its home without tombstones.
    fn remove_at(&mut self, index: usize) {
        let mask = self.capacity - 1;
        let mut hole = index;
        let mut next = index;
        loop {
            next = (next + 1) & mask;
            let slot = self.slot(next);
            if slot.start == 0 {
                break;
            }
            let from_home = next.wrapping_sub(self.home(slot.start)) & mask;
            let from_hole = next.wrapping_sub(hole) & mask;
            // The hole lies between the entry's home and the entry.
            if from_home >= from_hole {
                self.set(hole, slot);
                hole = next;
            }
        }
        self.set(hole, EMPTY);
    }

    /// Fibonacci hashing: the top bits of the address times 2^64/phi pick
    /// the slot (they depend on every bit of the address, so the zero low
    /// bits of a page address do not matter).
    fn home(&self, start: usize) -> usize {
        const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
        let bits = self.capacity.trailing_zeros();
        ((start as u64).wrapping_mul(GOLDEN) >> (64 - bits)) as usize
    }

    fn slot(&self, index: usize) -> Slot {
        debug_assert!(index < self.capacity);
        // SAFETY: `index < capacity`, and the slots are `capacity`
        // initialised `Slot`s in pages this table owns.
        unsafe { self.slots.add(index).read() }
    }

    fn set(&mut self, index: usize, slot: Slot) {
        debug_assert!(index < self.capacity);
        // SAFETY: as in `slot`; `&mut self` makes this the only access.
        unsafe { self.slots.add(index).write(slot) }
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{Layout, alloc, dealloc};
    use std::vec::Vec;

    use super::LargeBlocks;
    use crate::page::BuddyPageAllocator;
    use crate::{AllocError, BaseAllocator, PageAllocator};

    const PAGE: usize = 4096;

    /// A buddy page allocator over `pages` host pages, freed on drop.
    struct Arena {
        base: *mut u8,
        layout: Layout,
        pages: BuddyPageAllocator,
    }

    impl Arena {
        fn new(pages: usize) -> Self {
            let layout = Layout::from_size_align(pages * PAGE, PAGE).unwrap();
            // SAFETY: non-zero size.
            let base = unsafe { alloc(layout) };
            assert!(!base.is_null());
            let mut allocator = BuddyPageAllocator::new();
            // SAFETY: the buffer is ours until `drop`, and only the
            // allocator uses it.
            unsafe { allocator.add_memory(base.expose_provenance(), pages * PAGE) }.unwrap();
            Self {
                base,
                layout,
                pages: allocator,
            }
        }
    }

    impl Drop for Arena {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { dealloc(self.base, self.layout) };
        }
    }

    #[test]
    fn a_block_is_accepted_only_with_its_page_count() {
        let mut arena = Arena::new(64);
        let mut table = LargeBlocks::new();
        table.reserve(&mut arena.pages).unwrap();
        table.insert_reserved(0x1000_0000, 3);
        assert_eq!(table.check(0x1000_0000, 3), Ok(()));
        assert_eq!(table.check(0x1000_0000, 2), Err(AllocError::NotAllocated));
        assert_eq!(table.check(0x1000_1000, 1), Err(AllocError::NotAllocated));
        assert_eq!(table.pages_at(0x1000_0000), Some(3));
        assert_eq!((table.len(), table.pages()), (1, 3));
    }

    #[test]
    fn the_table_grows_shrinks_and_gives_its_pages_back() {
        let mut arena = Arena::new(256);
        let free_before = arena.pages.available_pages();
        let mut table = LargeBlocks::new();
        let starts: Vec<usize> = (1..=2000).map(|i| i * PAGE * 3).collect();
        for &start in &starts {
            table.reserve(&mut arena.pages).unwrap();
            table.insert_reserved(start, 1 + start % 5);
        }
        assert!(table.table_pages::<BuddyPageAllocator>() >= 2000 * 2 * 16 / PAGE);
        // Remove in an order unrelated to insertion, checking that every
        // remaining block is still found after each backward shift.
        for (step, &start) in starts.iter().enumerate().rev().step_by(2) {
            assert_eq!(table.remove(&mut arena.pages, start), Some(1 + start % 5));
            assert_eq!(
                table.check(start, 1 + start % 5),
                Err(AllocError::NotAllocated)
            );
            if step % 97 == 0 {
                for &other in starts.iter().take(step).step_by(2) {
                    assert_eq!(table.pages_at(other), Some(1 + other % 5));
                }
            }
        }
        for &start in starts.iter().rev().skip(1).step_by(2) {
            assert!(table.remove(&mut arena.pages, start).is_some());
        }
        assert!(table.is_empty());
        assert_eq!(table.table_pages::<BuddyPageAllocator>(), 0);
        assert_eq!(arena.pages.available_pages(), free_before);
    }

    #[test]
    fn a_full_source_fails_the_reservation_not_the_table() {
        let mut arena = Arena::new(8);
        let mut taken = Vec::new();
        while let Ok(page) = arena.pages.alloc_pages(1, PAGE) {
            taken.push(page);
        }
        let mut table = LargeBlocks::new();
        assert_eq!(table.reserve(&mut arena.pages), Err(AllocError::NoMemory));
        assert!(table.is_empty());
        arena.pages.dealloc_pages(taken.pop().unwrap(), 1).unwrap();
        table.reserve(&mut arena.pages).unwrap();
    }
}
