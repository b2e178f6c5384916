//! What the three page allocators share around their per-zone algorithm:
//! the zone list with its page counters, `regions()`, the argument checks
//! that `alloc_pages`, `alloc_pages_at` and `dealloc_pages` make before the
//! algorithm sees a request, and the whole request path of the first-fit
//! algorithms (bitmap, linear scan) through [`FirstFit`].

use core::ops::Range;

use super::check_align;
use super::zone::{Zone, ZoneList, ZoneMeta};
use crate::stats::{ORDERS, PageStats};
use crate::{AllocError, AllocResult};

/// A zone list and the page counters of one allocator.
pub(crate) struct ZonedPages<M> {
    pub zones: ZoneList<M>,
    /// Managed pages, over all zones.
    pub total_pages: usize,
    /// Pages handed out, over all zones.
    pub used_pages: usize,
}

impl<M: ZoneMeta> ZonedPages<M> {
    pub const fn new() -> Self {
        Self {
            zones: ZoneList::new(),
            total_pages: 0,
            used_pages: 0,
        }
    }

    /// The managed byte ranges, one per zone, in address order.
    pub fn regions(&self, page_size: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        self.zones
            .iter()
            .map(move |z| z.base_pfn * page_size..z.end_pfn() * page_size)
    }

    /// Adds the region `[start, start + size)` as a zone and counts its pages.
    ///
    /// # Safety
    /// As for [`ZoneList::add`].
    pub unsafe fn add(
        &mut self,
        start: usize,
        size: usize,
        page_size: usize,
    ) -> AllocResult<&mut Zone<M>> {
        // SAFETY: forwarded from the caller.
        let zone = unsafe { self.zones.add(start, size, page_size)? };
        self.total_pages += zone.pages;
        Ok(zone)
    }

    /// `alloc_pages_at`'s argument checks: a bad alignment, a zero count or
    /// an `addr` off the alignment is `InvalidParam`; pages not all managed
    /// by one zone are `OutOfRange`. Returns the zone and the page index.
    #[inline]
    pub fn fixed_target(
        &mut self,
        addr: usize,
        count: usize,
        align: usize,
        page_size: usize,
    ) -> AllocResult<(&mut Zone<M>, usize)> {
        check_align(align, page_size)?;
        if count == 0 || !addr.is_multiple_of(align.max(page_size)) {
            return Err(AllocError::InvalidParam);
        }
        let pfn = addr / page_size;
        let zone = self
            .zones
            .zone_of_pfns(pfn, count)
            .ok_or(AllocError::OutOfRange)?;
        let page = pfn - zone.base_pfn;
        Ok((zone, page))
    }

    /// `dealloc_pages`'s argument checks: `addr` outside every region as
    /// given is `OutOfRange`; a zero count, an unaligned `addr` or one in
    /// the metadata or the unaligned edges is `NotAllocated`. Returns the
    /// zone and the page index; whether a live allocation starts there is
    /// the algorithm's to check.
    #[inline]
    pub fn free_target(
        &mut self,
        addr: usize,
        count: usize,
        page_size: usize,
    ) -> AllocResult<(&mut Zone<M>, usize)> {
        let zone = self
            .zones
            .zone_of_addr(addr)
            .ok_or(AllocError::OutOfRange)?;
        let pfn = addr / page_size;
        if count == 0 || !addr.is_multiple_of(page_size) || !zone.contains_pfns(pfn, 1) {
            return Err(AllocError::NotAllocated);
        }
        let page = pfn - zone.base_pfn;
        Ok((zone, page))
    }
}

/// A first-fit algorithm over one zone's pages, indexed from 0 (the zone's
/// `base_pfn`). It decides; [`ZonedPages`] checks arguments and counts.
pub(crate) trait FirstFit: ZoneMeta {
    /// The lowest page index of `count` free pages whose frame
    /// (`base_pfn` + index) is a multiple of `align_pages`.
    fn find(&mut self, base_pfn: usize, count: usize, align_pages: usize) -> Option<usize>;
    /// Whether every page of `[page, page + count)` is free (in the zone).
    fn all_free(&self, page: usize, count: usize) -> bool;
    /// Hands out the free pages `[page, page + count)` as one allocation.
    fn allocate(&mut self, page: usize, count: usize);
    /// `Ok` iff `[page, page + count)` is exactly one live allocation;
    /// `DoubleFree` if page `page` is free, `NotAllocated` otherwise.
    fn check_live(&self, page: usize, count: usize) -> AllocResult;
    /// Takes back the live allocation `[page, page + count)`.
    fn release(&mut self, page: usize, count: usize);
    /// Calls `f(first_page, len)` for every maximal free run, in order.
    fn for_each_free_run(&self, f: impl FnMut(usize, usize));
}

impl<M: FirstFit> ZonedPages<M> {
    /// `add_memory` of a first-fit allocator: the new zone's pages, which
    /// start out allocated, are all released.
    ///
    /// # Safety
    /// As for [`ZoneList::add`].
    pub unsafe fn add_free(&mut self, start: usize, size: usize, page_size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        let zone = unsafe { self.add(start, size, page_size)? };
        zone.meta.release(0, zone.pages);
        Ok(())
    }

    /// `alloc_pages` of a first-fit allocator: the first zone with a fit.
    #[inline]
    pub fn alloc_first_fit(
        &mut self,
        count: usize,
        align: usize,
        page_size: usize,
    ) -> AllocResult<usize> {
        let align_pages = 1 << check_align(align, page_size)?;
        if count == 0 {
            return Err(AllocError::InvalidParam);
        }
        let pfn = self
            .zones
            .find_map_mut(|zone: &mut Zone<M>| {
                let page = zone.meta.find(zone.base_pfn, count, align_pages)?;
                zone.meta.allocate(page, count);
                Some(zone.base_pfn + page)
            })
            .ok_or(AllocError::NoMemory)?;
        self.used_pages += count;
        Ok(pfn * page_size)
    }

    /// `alloc_pages_at` of a first-fit allocator.
    #[inline]
    pub fn alloc_fixed(
        &mut self,
        addr: usize,
        count: usize,
        align: usize,
        page_size: usize,
    ) -> AllocResult<usize> {
        let (zone, page) = self.fixed_target(addr, count, align, page_size)?;
        if !zone.meta.all_free(page, count) {
            return Err(AllocError::NoMemory);
        }
        zone.meta.allocate(page, count);
        self.used_pages += count;
        Ok(addr)
    }

    /// `dealloc_pages` of a first-fit allocator: every check before any
    /// change.
    #[inline]
    pub fn dealloc(&mut self, addr: usize, count: usize, page_size: usize) -> AllocResult {
        let (zone, page) = self.free_target(addr, count, page_size)?;
        zone.meta.check_live(page, count)?;
        zone.meta.release(page, count);
        self.used_pages -= count;
        Ok(())
    }

    /// The statistics of a first-fit allocator: each free run reported as
    /// the maximal aligned blocks a buddy would hold.
    pub fn page_stats(&self) -> PageStats {
        let mut stats = PageStats::empty(self.total_pages);
        for zone in self.zones.iter() {
            zone.meta.for_each_free_run(|start, len| {
                stats.add_free_run(zone.base_pfn + start, len, ORDERS - 1)
            });
        }
        stats
    }
}
