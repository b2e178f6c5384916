//! The linear-scan page allocator: one state byte per page, scanned first
//! fit from the bottom on every allocation. The simplest correct page
//! allocator, and the baseline the benchmark sets the buddy and bitmap
//! allocators against.
//!
//! [`LinearMeta`] is the algorithm (the [`FirstFit`] trait); the public
//! type below checks and counts each request through [`ZonedPages`].

use core::ops::Range;

use super::DEFAULT_PAGE_SIZE;
use super::zone::ZoneMeta;
use super::zoned::{FirstFit, ZonedPages};
use crate::stats::{PageStats, PageStatsSource};
use crate::{AllocError, AllocResult, BaseAllocator, PageAllocator};

/// The page is handed out.
const TAKEN: u8 = 1;
/// The page is the first of a live allocation.
const FIRST: u8 = 2;

/// A linear zone's metadata: `states[i]` describes page `base_pfn + i`.
pub(crate) struct LinearMeta {
    states: *mut u8,
    pages: usize,
}

impl ZoneMeta for LinearMeta {
    fn trailing_bytes(pages: usize) -> usize {
        pages
    }

    unsafe fn new(trailing: *mut u8, _base_pfn: usize, pages: usize) -> Self {
        Self {
            states: trailing,
            pages,
        }
    }
}

impl LinearMeta {
    fn states(&self) -> &[u8] {
        // SAFETY: `pages` bytes reserved by `trailing_bytes`, owned by the zone.
        unsafe { core::slice::from_raw_parts(self.states, self.pages) }
    }

    fn states_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(self.states, self.pages) }
    }
}

impl FirstFit for LinearMeta {
    /// Scans every page from the bottom.
    fn find(&mut self, base_pfn: usize, count: usize, align_pages: usize) -> Option<usize> {
        let states = self.states();
        let mut start = 0;
        while count <= self.pages - start.min(self.pages) {
            if !(base_pfn + start).is_multiple_of(align_pages) {
                start += 1;
                continue;
            }
            match states[start..start + count]
                .iter()
                .position(|&s| s & TAKEN != 0)
            {
                None => return Some(start),
                Some(taken) => start += taken + 1,
            }
        }
        None
    }

    fn all_free(&self, page: usize, count: usize) -> bool {
        self.states()[page..page + count].iter().all(|&s| s == 0)
    }

    fn allocate(&mut self, page: usize, count: usize) {
        let states = self.states_mut();
        states[page..page + count].fill(TAKEN);
        states[page] = TAKEN | FIRST;
    }

    fn check_live(&self, page: usize, count: usize) -> AllocResult {
        let states = self.states();
        if states[page] & TAKEN == 0 {
            return Err(AllocError::DoubleFree);
        }
        if states[page] & FIRST == 0 || count > self.pages - page {
            return Err(AllocError::NotAllocated);
        }
        let end = page + count;
        if states[page + 1..end].iter().any(|&s| s != TAKEN) || states.get(end) == Some(&TAKEN) {
            return Err(AllocError::NotAllocated);
        }
        Ok(())
    }

    fn release(&mut self, page: usize, count: usize) {
        self.states_mut()[page..page + count].fill(0);
    }

    fn for_each_free_run(&self, mut f: impl FnMut(usize, usize)) {
        let states = self.states();
        let mut page = 0;
        while page < states.len() {
            let run = states[page..].iter().take_while(|&&s| s == 0).count();
            if run > 0 {
                f(page, run);
            }
            page += run.max(1);
        }
    }
}

/// A first-fit allocator over one state byte per page (metadata: one byte
/// per page, 0.025% with 4 KiB pages). Every allocation scans from the
/// bottom of the first region: O(pages). Errors as for
/// [`BitmapPageAllocator`](super::BitmapPageAllocator).
pub struct LinearPageAllocator<const PAGE_SIZE: usize = DEFAULT_PAGE_SIZE> {
    pages: ZonedPages<LinearMeta>,
}

// SAFETY: the zones are memory the allocator owns exclusively (the
// `add_memory` contract); nothing in them is tied to a thread.
unsafe impl<const P: usize> Send for LinearPageAllocator<P> {}

impl LinearPageAllocator {
    /// An empty allocator of 4 KiB pages.
    pub const fn new() -> Self {
        Self::with_page_size()
    }
}

impl Default for LinearPageAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl<const PAGE_SIZE: usize> LinearPageAllocator<PAGE_SIZE> {
    /// An empty allocator of `PAGE_SIZE`-byte pages.
    pub const fn with_page_size() -> Self {
        const { assert!(PAGE_SIZE.is_power_of_two() && PAGE_SIZE >= 64) };
        Self {
            pages: ZonedPages::new(),
        }
    }

    /// The managed byte ranges, one per region, in address order (each
    /// region minus its metadata and unaligned edges).
    pub fn regions(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.pages.regions(PAGE_SIZE)
    }
}

impl<const PAGE_SIZE: usize> BaseAllocator for LinearPageAllocator<PAGE_SIZE> {
    /// # Safety
    /// As for [`BaseAllocator::add_memory`]; `start` must also carry exposed
    /// provenance (`ptr.expose_provenance()`), since the metadata is
    /// written through it.
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.pages.add_free(start, size, PAGE_SIZE) }
    }
}

impl<const PAGE_SIZE: usize> PageAllocator for LinearPageAllocator<PAGE_SIZE> {
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        self.pages.alloc_first_fit(count, align, PAGE_SIZE)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        self.pages.alloc_fixed(addr, count, align, PAGE_SIZE)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        self.pages.dealloc(addr, count, PAGE_SIZE)
    }

    fn total_pages(&self) -> usize {
        self.pages.total_pages
    }

    fn used_pages(&self) -> usize {
        self.pages.used_pages
    }
}

impl<const PAGE_SIZE: usize> PageStatsSource for LinearPageAllocator<PAGE_SIZE> {
    /// Walks each zone's free runs and reports each as the maximal aligned
    /// blocks a buddy would hold.
    fn page_stats(&self) -> PageStats {
        self.pages.page_stats()
    }
}
