//! Host memory for the byte-allocator tests: an aligned, zeroed arena and
//! a simple page source over it (first fit, exact-block checks).

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::BTreeMap;
use std::ptr::NonNull;

use kalloc::byte::PageSource;
use kalloc::{AllocError, AllocResult};

/// Alignment of every arena: slabs up to this size are naturally aligned.
pub const ARENA_ALIGN: usize = 1 << 21;
pub const PAGE: usize = 4096;

/// A zeroed, `ARENA_ALIGN`-aligned host buffer, freed on drop.
pub struct Arena {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Arena {
    pub fn new(size: usize) -> Self {
        let layout = Layout::from_size_align(size, ARENA_ALIGN).unwrap();
        // SAFETY: `layout` has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("host allocation");
        Self { ptr, layout }
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// A pointer `offset` bytes into the arena, with the arena's provenance.
    pub fn at(&self, offset: usize) -> NonNull<u8> {
        assert!(offset <= self.len());
        // SAFETY: in bounds of the arena's allocation (checked above).
        unsafe { self.ptr.add(offset) }
    }

    pub fn range(&self) -> (usize, usize) {
        let start = self.ptr.addr().get();
        (start, start + self.len())
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A test page source over an [`Arena`]: first fit over a page map, every
/// block recorded so a wrong `dealloc_pages` is an error, never a leak.
pub struct HostPages {
    base: NonNull<u8>,
    in_use: Vec<bool>,
    blocks: BTreeMap<usize, usize>,
    free: usize,
    _owned: Option<Arena>,
}

impl HostPages {
    /// A page source over a fresh arena of `bytes`.
    pub fn new(bytes: usize) -> Self {
        let arena = Arena::new(bytes);
        // SAFETY: the arena moves into the page source and lives as long.
        let mut pages = unsafe { Self::over(&arena) };
        pages._owned = Some(arena);
        pages
    }

    /// A page source over memory it does not own (benchmarks reuse one
    /// arena, already faulted in, for every run).
    ///
    /// # Safety
    /// `arena` outlives the page source and nothing else uses it meanwhile.
    pub unsafe fn over(arena: &Arena) -> Self {
        let pages = arena.len() / PAGE;
        Self {
            base: arena.at(0),
            in_use: vec![false; pages],
            blocks: BTreeMap::new(),
            free: pages,
            _owned: None,
        }
    }

    pub fn total_pages(&self) -> usize {
        self.in_use.len()
    }

    pub fn range(&self) -> (usize, usize) {
        let start = self.base.addr().get();
        (start, start + self.in_use.len() * PAGE)
    }

    pub fn available_pages_public(&self) -> usize {
        self.free
    }

    /// A pointer to the first page, with the arena's provenance.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Takes exactly the `count` pages at `addr`, as another user of the
    /// same pages would: `NoMemory` if any is in use.
    pub fn alloc_at(&mut self, addr: usize, count: usize) -> AllocResult<NonNull<u8>> {
        let (start, end) = self.range();
        if count == 0 || addr < start || addr + count * PAGE > end {
            return Err(AllocError::OutOfRange);
        }
        if !(addr - start).is_multiple_of(PAGE) {
            return Err(AllocError::InvalidParam);
        }
        let first = (addr - start) / PAGE;
        if self.in_use[first..first + count].iter().any(|&u| u) {
            return Err(AllocError::NoMemory);
        }
        self.in_use[first..first + count].fill(true);
        self.blocks.insert(first, count);
        self.free -= count;
        // SAFETY: page `first` lies inside the arena.
        Ok(unsafe { self.base.add(first * PAGE) })
    }
}

impl PageSource for HostPages {
    const PAGE_SIZE: usize = PAGE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<NonNull<u8>> {
        if count == 0 || !align.is_power_of_two() || align > ARENA_ALIGN {
            return Err(AllocError::InvalidParam);
        }
        let step = (align / PAGE).max(1);
        let pages = self.in_use.len();
        let mut first = 0;
        while first + count <= pages {
            if let Some(busy) = self.in_use[first..first + count].iter().position(|&u| u) {
                first = (first + busy + 1).next_multiple_of(step);
                continue;
            }
            self.in_use[first..first + count].fill(true);
            self.blocks.insert(first, count);
            self.free -= count;
            // SAFETY: page `first` lies inside the arena.
            return Ok(unsafe { self.base.add(first * PAGE) });
        }
        Err(AllocError::NoMemory)
    }

    unsafe fn dealloc_pages(&mut self, pages: NonNull<u8>, count: usize) -> AllocResult {
        let (start, end) = self.range();
        let addr = pages.addr().get();
        if addr < start || addr >= end {
            return Err(AllocError::OutOfRange);
        }
        if !(addr - start).is_multiple_of(PAGE) {
            return Err(AllocError::NotAllocated);
        }
        let first = (addr - start) / PAGE;
        match self.blocks.get(&first) {
            Some(&n) if n == count => {}
            _ => return Err(AllocError::NotAllocated),
        }
        self.blocks.remove(&first);
        self.in_use[first..first + count].fill(false);
        self.free += count;
        Ok(())
    }

    fn available_pages(&self) -> usize {
        self.free
    }
}
