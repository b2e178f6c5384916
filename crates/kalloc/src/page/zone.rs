//! Zones: one per region handed to `add_memory`, each with its header and
//! its algorithm's metadata stored at the start of the region itself, linked
//! in address order. Shared by the three page allocators.
//!
//! ```text
//!  region as given:  start                                        start+size
//!                    |<-unaligned->|                              |<-unal.->|
//!  zone:             | head pad    | Zone<M> | M's bitmaps/arrays | pad |  pages (base_pfn ..) ...  |
//!                                  ^ page aligned                       ^ page aligned
//! ```
//! The metadata pages are not managed pages: they are never handed out and
//! an address inside them is not the start of any block.

use core::mem::{align_of, size_of};
use core::ptr;

use crate::{AllocError, AllocResult};

/// An algorithm's per-zone metadata, built over memory carved from the
/// zone's own region.
pub(crate) trait ZoneMeta: Sized {
    /// Bytes of trailing storage the metadata needs for a zone of at most
    /// `pages` pages (any base).
    fn trailing_bytes(pages: usize) -> usize;

    /// Builds the metadata for pages `[base_pfn, base_pfn + pages)` over
    /// `trailing`, which holds `trailing_bytes(pages)` zeroed bytes aligned
    /// to 8. The pages start out allocated; the allocator frees them next.
    ///
    /// # Safety
    /// `trailing` is valid for that many bytes for as long as the zone
    /// exists, and used only through the returned value.
    unsafe fn new(trailing: *mut u8, base_pfn: usize, pages: usize) -> Self;
}

/// A zone header, stored at the (page-aligned) start of its region.
pub(crate) struct Zone<M> {
    /// The region exactly as given to `add_memory`.
    pub span_start: usize,
    pub span_end: usize,
    /// First managed page frame number (address / page size).
    pub base_pfn: usize,
    /// Managed pages.
    pub pages: usize,
    next: *mut Zone<M>,
    pub meta: M,
}

impl<M> Zone<M> {
    pub fn end_pfn(&self) -> usize {
        self.base_pfn + self.pages
    }

    /// Whether the page frames `[pfn, pfn + count)` are all managed here.
    pub fn contains_pfns(&self, pfn: usize, count: usize) -> bool {
        pfn >= self.base_pfn && count <= self.end_pfn() - pfn.min(self.end_pfn())
    }
}

/// The zones of one allocator, sorted by address. The allocator owns them.
pub(crate) struct ZoneList<M> {
    head: *mut Zone<M>,
}

impl<M: ZoneMeta> ZoneList<M> {
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
        }
    }

    /// The zones in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Zone<M>> {
        let mut cur = self.head;
        core::iter::from_fn(move || {
            // SAFETY: every non-null link points to a zone built by `add`,
            // which lives as long as the allocator; the shared borrow of
            // `self` excludes mutation meanwhile.
            let zone = unsafe { cur.as_ref()? };
            cur = zone.next;
            Some(zone)
        })
    }

    /// Calls `f` on each zone in address order until it returns `Some`.
    pub fn find_map_mut<T>(&mut self, mut f: impl FnMut(&mut Zone<M>) -> Option<T>) -> Option<T> {
        let mut cur = self.head;
        // SAFETY: as in `iter`; the exclusive borrow of `self` makes each
        // zone reference the only live one.
        while let Some(zone) = unsafe { cur.as_mut() } {
            if let Some(v) = f(zone) {
                return Some(v);
            }
            cur = zone.next;
        }
        None
    }

    /// The zone whose region (as given, metadata included) contains `addr`.
    pub fn zone_of_addr(&mut self, addr: usize) -> Option<&mut Zone<M>> {
        let zone = self.find_map_mut(|z| {
            (z.span_start <= addr && addr < z.span_end).then_some(z as *mut Zone<M>)
        })?;
        // SAFETY: a zone pointer from the list; see `find_map_mut`.
        Some(unsafe { &mut *zone })
    }

    /// The zone managing every page of `[pfn, pfn + count)`, if one does.
    pub fn zone_of_pfns(&mut self, pfn: usize, count: usize) -> Option<&mut Zone<M>> {
        let zone =
            self.find_map_mut(|z| z.contains_pfns(pfn, count).then_some(z as *mut Zone<M>))?;
        // SAFETY: as in `zone_of_addr`.
        Some(unsafe { &mut *zone })
    }

    /// Turns `[start, start + size)` into a new zone with metadata at its
    /// start and links it in. Rejects overflow, overlap and regions too
    /// small to hold the metadata and one page.
    ///
    /// # Safety
    /// The range is valid, writable memory that nothing else uses for as
    /// long as the allocator exists, and `start` carries exposed provenance.
    pub unsafe fn add(
        &mut self,
        start: usize,
        size: usize,
        page_size: usize,
    ) -> AllocResult<&mut Zone<M>> {
        let end = start.checked_add(size).ok_or(AllocError::InvalidParam)?;
        if size == 0 {
            return Err(AllocError::InvalidParam);
        }
        if self
            .iter()
            .any(|z| z.span_start < end && start < z.span_end)
        {
            return Err(AllocError::MemoryOverlap);
        }
        let first = start
            .checked_next_multiple_of(page_size)
            .ok_or(AllocError::InvalidParam)?;
        let last = end - end % page_size;
        if first >= last {
            return Err(AllocError::InvalidParam);
        }
        let total_pages = (last - first) / page_size;
        let header = size_of::<Zone<M>>().next_multiple_of(8);
        let trailing = M::trailing_bytes(total_pages);
        let meta_pages = (header + trailing).div_ceil(page_size);
        if meta_pages >= total_pages || align_of::<Zone<M>>() > page_size {
            return Err(AllocError::InvalidParam);
        }
        let base: *mut u8 = ptr::with_exposed_provenance_mut(first);
        // SAFETY: `[first, first + meta_pages * page_size)` lies inside the
        // caller's region (checked above), which we own from now on.
        unsafe { ptr::write_bytes(base, 0, header + trailing) };
        let pages = total_pages - meta_pages;
        let base_pfn = first / page_size + meta_pages;
        // SAFETY: the trailing bytes follow the header inside the zeroed
        // metadata area, 8-aligned because `first` is page aligned.
        let meta = unsafe { M::new(base.add(header), base_pfn, pages) };
        let zone = base.cast::<Zone<M>>();
        // Keep the list sorted: find the link after which the zone goes.
        let mut link: *mut *mut Zone<M> = &mut self.head;
        // SAFETY: `link` is `self.head` or the `next` field of a live zone.
        unsafe {
            while !(*link).is_null() && (**link).span_start < start {
                link = &mut (**link).next;
            }
            zone.write(Zone {
                span_start: start,
                span_end: end,
                base_pfn,
                pages,
                next: *link,
                meta,
            });
            *link = zone;
        }
        // SAFETY: just written, owned by the list.
        Ok(unsafe { &mut *zone })
    }
}
