//! Validating a free: the fast test that an address is a live object of
//! this cache (header magic, object boundary, link word), and the cold
//! path that names the error or confirms an object that only looked free.

use core::ptr::NonNull;

use super::{RETIRED, SlabCache, SlabHeader, link};
use crate::{AllocError, AllocResult};

impl SlabCache {
    /// Whether `relative`, an offset from the first object, is a multiple
    /// of the object size: exact for every `usize`.
    #[inline(always)]
    fn is_object_offset(&self, relative: usize) -> bool {
        relative
            .wrapping_mul(self.odd_inverse)
            .rotate_right(self.size_shift)
            <= self.multiple_limit
    }

    /// Checks that `ptr` is a live object of this cache; returns its slab
    /// and whether that slab is retired. `ptr` lies in `lo..hi`, the
    /// address range of every page ever taken from the source, so the
    /// header read stays in memory the slab allocator had. The common case
    /// costs a mask, the header's magic and bump, a multiply for the object
    /// boundary and the object's link word; anything else (an error, an
    /// object that may be free, a retired slab) goes to
    /// [`classify`](Self::classify).
    #[inline(always)]
    pub fn check_live(
        &self,
        ptr: NonNull<u8>,
        lo: usize,
        hi: usize,
    ) -> AllocResult<(*mut SlabHeader, bool)> {
        let addr = ptr.addr().get();
        let slab_addr = addr & !(self.slab_bytes - 1);
        if slab_addr < lo {
            return Err(AllocError::NotAllocated);
        }
        let slab = ptr.as_ptr().with_addr(slab_addr).cast::<SlabHeader>();
        let relative = (addr - slab_addr).wrapping_sub(self.first_object);
        // SAFETY: `lo <= slab_addr <= addr < hi`: the header lies in pages
        // obtained from the source, which stay mapped. The object's word
        // is read only once the magic names a slab of this cache and the
        // address is an object it handed out, so it is initialised.
        unsafe {
            if (*slab).magic == self.live_magic(slab_addr)
                && relative < (*slab).carved
                && self.is_object_offset(relative)
                && !link::may_be_free(ptr.as_ptr(), lo, hi)
            {
                return Ok((slab, false));
            }
        }
        self.classify(slab, relative, ptr.as_ptr())
    }

    /// The slow half of [`check_live`](Self::check_live): `NotAllocated`
    /// for no slab of this cache or an address that is not an object it
    /// handed out; `DoubleFree` for an object on the magazine or its
    /// slab's free list (at most `MAGAZINE_MAX + objects_per_slab` steps,
    /// only here); otherwise the object is live, in service or retired.
    #[cold]
    fn classify(
        &self,
        slab: *mut SlabHeader,
        relative: usize,
        object: *mut u8,
    ) -> AllocResult<(*mut SlabHeader, bool)> {
        let live = self.live_magic(slab.addr());
        // SAFETY: as in `check_live`, whose range checks passed: the
        // header lies in pages obtained from the source.
        let magic = unsafe { (*slab).magic };
        if magic != live && magic != live ^ RETIRED {
            return Err(AllocError::NotAllocated);
        }
        // SAFETY: a slab of this cache (its magic matched).
        if relative >= unsafe { (*slab).carved } || !self.is_object_offset(relative) {
            return Err(AllocError::NotAllocated);
        }
        if self.magazine.contains(object) || self.on_free_list(slab, object) {
            return Err(AllocError::DoubleFree);
        }
        Ok((slab, magic != live))
    }

    /// Whether `object` is on `slab`'s free list (at most
    /// `objects_per_slab` steps: error path only).
    fn on_free_list(&self, slab: *mut SlabHeader, object: *mut u8) -> bool {
        // SAFETY: `slab` is a live slab of this cache; its free list holds
        // objects of the slab linked by `link::write`.
        unsafe { link::chain((*slab).free_head, self.objects_per_slab) }.any(|free| free == object)
    }
}

#[cfg(test)]
mod tests {
    use super::super::MAX_SLAB_ORDER;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn object_offsets_are_exactly_the_multiples_of_the_size() {
        let sizes = [8, 16, 24, 40, 64, 96, 104, 192, 1000, 2048, 4000, 12345 * 8];
        for size in sizes {
            let cache = SlabCache::new("t", 0, size, 8, 4096 << MAX_SLAB_ORDER).unwrap();
            // Every offset of 64 objects natively; under Miri, each
            // object's start and its neighbours.
            let offsets: Vec<usize> = if cfg!(miri) {
                (0..8)
                    .flat_map(|k| [0, 1, 8, size / 2, size - 1].map(|d| k * size + d))
                    .collect()
            } else {
                (0..64 * size).collect()
            };
            // Offsets "below" the first object wrap to huge values.
            let wrapped =
                [1, 8, size - 1, size, size + 8, 2 * size].map(|b| 0usize.wrapping_sub(b));
            for relative in offsets.into_iter().chain(wrapped) {
                assert_eq!(
                    cache.is_object_offset(relative),
                    relative % size == 0,
                    "size {size}, offset {relative}"
                );
            }
        }
    }
}
