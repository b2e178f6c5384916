//! The linear-scan page allocator: the original RVOS allocator, one state
//! byte per page scanned first fit from the bottom on every allocation.
//! Kept as the baseline the buddy and bitmap allocators are measured against.

use core::ops::Range;

use super::zone::{Zone, ZoneList, ZoneMeta};
use super::{DEFAULT_PAGE_SIZE, check_align};
use crate::stats::{ORDERS, PageStats, PageStatsSource};
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

    /// First fit: scans every page from the bottom.
    fn find(&self, base_pfn: usize, count: usize, align_pages: usize) -> Option<usize> {
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
}

/// A first-fit allocator over one state byte per page (metadata: one byte
/// per page, 0.025% with 4 KiB pages). Every allocation scans from the
/// bottom of the first region: O(pages). Errors as for
/// [`BitmapPageAllocator`](super::BitmapPageAllocator).
pub struct LinearPageAllocator<const PAGE_SIZE: usize = DEFAULT_PAGE_SIZE> {
    zones: ZoneList<LinearMeta>,
    total_pages: usize,
    used_pages: usize,
}

// SAFETY: the zones are memory the allocator owns exclusively.
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
            zones: ZoneList::new(),
            total_pages: 0,
            used_pages: 0,
        }
    }

    /// The managed byte ranges, one per region, in address order.
    pub fn regions(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.zones
            .iter()
            .map(|z| z.base_pfn * PAGE_SIZE..z.end_pfn() * PAGE_SIZE)
    }
}

impl<const PAGE_SIZE: usize> BaseAllocator for LinearPageAllocator<PAGE_SIZE> {
    /// # Safety
    /// As for [`BaseAllocator::add_memory`].
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.add_memory(start, size) }
    }

    /// # Safety
    /// As for [`BaseAllocator::add_memory`]; `start` must carry exposed
    /// provenance, since the metadata is written through it.
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        let zone = unsafe { self.zones.add(start, size, PAGE_SIZE)? };
        self.total_pages += zone.pages;
        Ok(())
    }
}

impl<const PAGE_SIZE: usize> PageAllocator for LinearPageAllocator<PAGE_SIZE> {
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        let align_order = check_align::<PAGE_SIZE>(align)?;
        if count == 0 {
            return Err(AllocError::InvalidParam);
        }
        let align_pages = 1 << align_order;
        let pfn = self
            .zones
            .find_map_mut(|zone: &mut Zone<LinearMeta>| {
                let page = zone.meta.find(zone.base_pfn, count, align_pages)?;
                zone.meta.allocate(page, count);
                Some(zone.base_pfn + page)
            })
            .ok_or(AllocError::NoMemory)?;
        self.used_pages += count;
        Ok(pfn * PAGE_SIZE)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        check_align::<PAGE_SIZE>(align)?;
        if count == 0 || !addr.is_multiple_of(align.max(PAGE_SIZE)) {
            return Err(AllocError::InvalidParam);
        }
        let pfn = addr / PAGE_SIZE;
        let zone = self
            .zones
            .zone_of_pfns(pfn, count)
            .ok_or(AllocError::OutOfRange)?;
        let page = pfn - zone.base_pfn;
        if zone.meta.states()[page..page + count]
            .iter()
            .any(|&s| s != 0)
        {
            return Err(AllocError::NoMemory);
        }
        zone.meta.allocate(page, count);
        self.used_pages += count;
        Ok(addr)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        let zone = self
            .zones
            .zone_of_addr(addr)
            .ok_or(AllocError::OutOfRange)?;
        let pfn = addr / PAGE_SIZE;
        if count == 0 || !addr.is_multiple_of(PAGE_SIZE) || !zone.contains_pfns(pfn, 1) {
            return Err(AllocError::NotAllocated);
        }
        let page = pfn - zone.base_pfn;
        zone.meta.check_live(page, count)?;
        zone.meta.states_mut()[page..page + count].fill(0);
        self.used_pages -= count;
        Ok(())
    }

    fn total_pages(&self) -> usize {
        self.total_pages
    }

    fn used_pages(&self) -> usize {
        self.used_pages
    }
}

impl<const PAGE_SIZE: usize> PageStatsSource for LinearPageAllocator<PAGE_SIZE> {
    /// Scans every state byte (O(pages)).
    fn page_stats(&self) -> PageStats {
        let mut stats = PageStats::empty(self.total_pages);
        for zone in self.zones.iter() {
            let states = zone.meta.states();
            let mut page = 0;
            while page < states.len() {
                let run = states[page..].iter().take_while(|&&s| s == 0).count();
                if run > 0 {
                    stats.add_free_run(zone.base_pfn + page, run, ORDERS - 1);
                }
                page += run.max(1);
            }
        }
        stats
    }
}
