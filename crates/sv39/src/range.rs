//! Mapping and unmapping whole ranges with the largest pages alignment
//! allows, all-or-nothing.

use crate::{FrameSource, PageSize, PageTable, PagingError, PhysAddr, PteFlags, VirtAddr};

/// How many pages of each size a [`map_range`](PageTable::map_range) used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeStats {
    /// 4 KiB pages.
    pub pages_4k: usize,
    /// 2 MiB pages.
    pub pages_2m: usize,
    /// 1 GiB pages.
    pub pages_1g: usize,
}

impl RangeStats {
    fn count(&mut self, size: PageSize) {
        match size {
            PageSize::Size4K => self.pages_4k += 1,
            PageSize::Size2M => self.pages_2m += 1,
            PageSize::Size1G => self.pages_1g += 1,
        }
    }
}

impl<F: FrameSource> PageTable<F> {
    /// Maps `[va, va + len)` to `[pa, pa + len)`, using at each step the
    /// largest page that `va` and `pa` are both aligned to and that fits.
    /// All three must be 4 KiB multiples and `len` nonzero.
    ///
    /// All-or-nothing: on any error every page this call mapped is
    /// unmapped again (and the tables it created freed) before returning.
    pub fn map_range(
        &mut self,
        va: VirtAddr,
        pa: PhysAddr,
        len: usize,
        flags: PteFlags,
    ) -> Result<RangeStats, PagingError> {
        check_range(va, len)?;
        for addr in [va.as_usize(), pa.as_usize(), len] {
            if addr % PageSize::Size4K.bytes() != 0 {
                return Err(PagingError::Unaligned {
                    addr,
                    required: PageSize::Size4K,
                });
            }
        }
        if pa.checked_add(len - 1).is_none() {
            return Err(PagingError::PhysAddrTooLarge {
                pa: pa.as_usize().saturating_add(len - 1),
            });
        }
        let mut stats = RangeStats::default();
        let mut offset = 0;
        while offset < len {
            let page_va = VirtAddr::new(va.as_usize() + offset)?;
            let page_pa = PhysAddr::new(pa.as_usize() + offset)?;
            let size = PageSize::LARGEST_FIRST
                .into_iter()
                .find(|size| {
                    page_va.is_aligned(*size)
                        && page_pa.is_aligned(*size)
                        && len - offset >= size.bytes()
                })
                .unwrap_or(PageSize::Size4K);
            if let Err(error) = self.map(page_va, page_pa, size, flags) {
                self.unmap_mapped_prefix(va, offset);
                return Err(error);
            }
            stats.count(size);
            offset += size.bytes();
        }
        Ok(stats)
    }

    /// Unmaps every leaf in `[va, va + len)`; leaves must lie wholly inside
    /// the range. Holes are skipped. Returns the number of leaves removed.
    ///
    /// A leaf straddling either end is an error reported before anything
    /// changes.
    pub fn unmap_range(&mut self, va: VirtAddr, len: usize) -> Result<usize, PagingError> {
        check_range(va, len)?;
        let end = va.as_usize() + len;
        for edge in [va.as_usize(), end] {
            let Ok(edge_va) = VirtAddr::new(edge) else {
                continue;
            };
            if let Ok(translation) = self.translate(edge_va)
                && !edge_va.is_aligned(translation.size)
            {
                return Err(PagingError::InsideHugePage {
                    va: edge,
                    size: translation.size,
                });
            }
        }
        let mut removed = 0;
        let mut addr = va.as_usize();
        while addr < end {
            let page = VirtAddr::new(addr)?;
            match self.unmap(page) {
                Ok(unmapped) => {
                    removed += 1;
                    addr += unmapped.size.bytes();
                }
                Err(PagingError::NotMapped { .. }) => addr += PageSize::Size4K.bytes(),
                Err(error) => return Err(error),
            }
        }
        Ok(removed)
    }

    /// Undoes the first `mapped_len` bytes of a `map_range` at `va`.
    fn unmap_mapped_prefix(&mut self, va: VirtAddr, mapped_len: usize) {
        let mut offset = 0;
        while offset < mapped_len {
            let page = VirtAddr::new(va.as_usize() + offset)
                .expect("inside a range already checked canonical");
            let unmapped = self
                .unmap(page)
                .expect("map_range rolls back only pages it mapped");
            offset += unmapped.size.bytes();
        }
    }
}

/// `[va, va + len)` is nonempty and its last byte is canonical, without
/// crossing the non-canonical hole.
fn check_range(va: VirtAddr, len: usize) -> Result<(), PagingError> {
    let bad = PagingError::BadRange {
        start: va.as_usize(),
        len,
    };
    if len == 0 {
        return Err(bad);
    }
    let last = va.checked_add(len - 1).ok_or(bad)?;
    // Both ends canonical but on different sides of the hole.
    if (last.as_usize() >> 38) & 1 != (va.as_usize() >> 38) & 1 {
        return Err(bad);
    }
    Ok(())
}
