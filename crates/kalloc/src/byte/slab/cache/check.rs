//! The slow half of validating a free: whatever `check_live`'s one-branch
//! fast test did not accept comes here, to be named (`NotAllocated`,
//! `DoubleFree`) or confirmed (a live object whose data only looked like a
//! link, or an object of a retired slab), with the list lookups that make
//! double-free detection exact.

use core::sync::atomic::Ordering::Relaxed;

use super::{Live, RETIRED, SlabCache, SlabHeader};
use crate::{AllocError, AllocResult};

impl SlabCache {
    /// Names the verdict on `object` (at `offset` from the first object of
    /// `slab`): `NotAllocated` for no slab of this cache or an address
    /// that is not an object it handed out; `DoubleFree` for an object on
    /// the magazine or its slab's free list (at most `MAGAZINE_MAX +
    /// objects_per_slab` steps, only here); otherwise the object is live,
    /// in service or retired.
    ///
    /// The checks are those of `check_live`, one by one and plainly.
    #[cold]
    pub(super) fn classify(
        &self,
        slab: *mut SlabHeader,
        offset: usize,
        object: *mut u8,
    ) -> AllocResult<Live> {
        let in_service = self.stamp(slab);
        // SAFETY: as in `check_live`, whose range checks passed: the
        // header lies in pages obtained from the source.
        let stamp = unsafe { (*slab).stamp.load(Relaxed) };
        let live = if stamp == in_service {
            Live::InService(slab)
        } else if stamp == in_service ^ RETIRED {
            Live::Retired(slab)
        } else {
            return Err(AllocError::NotAllocated);
        };
        // SAFETY: a slab of this cache (its stamp matched).
        let carved = unsafe { (*slab).carved.load(Relaxed) };
        // An offset below the first object wrapped to a huge value: not a
        // multiple, or a quotient far above `carved`.
        if !offset.is_multiple_of(self.object_size) || offset / self.object_size >= carved {
            return Err(AllocError::NotAllocated);
        }
        if self.is_listed(slab, object) {
            return Err(AllocError::DoubleFree);
        }
        Ok(live)
    }

    /// Whether `object`, an object `slab` handed out, is free: parked in
    /// the magazine or on `slab`'s free list. At most `MAGAZINE_MAX +
    /// objects_per_slab` steps: the error path only.
    fn is_listed(&self, slab: *mut SlabHeader, object: *mut u8) -> bool {
        // SAFETY: `slab` is a slab of this cache (in service or retired);
        // its free list holds objects of the slab, linked by `push`.
        let on_slab_list = unsafe { (*slab).free.iter(self.objects_per_slab) }.any(|f| f == object);
        self.magazine.contains(object) || on_slab_list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::byte::MAX_CACHES;
    use std::collections::BTreeSet;

    #[test]
    fn stamps_tell_address_cache_and_state_apart() {
        // Neighbouring slab addresses of several slab sizes, every cache
        // slot, in service and retired: no two stamps are equal, and none
        // is 0 (a slab given back).
        let addresses: BTreeSet<usize> = [4096, 8192, 4096 << 6]
            .into_iter()
            .flat_map(|slab_bytes| (1..4).map(move |k| (1 << 30) + k * slab_bytes))
            .collect();
        let mut stamps = BTreeSet::new();
        for &addr in &addresses {
            let slab = core::ptr::without_provenance_mut::<SlabHeader>(addr);
            for index in 0..MAX_CACHES {
                let stamp = SlabCache::new("t", index, 64, 8, 4096).unwrap().stamp(slab);
                stamps.extend([stamp, stamp ^ RETIRED]);
            }
        }
        assert_eq!(stamps.len(), addresses.len() * MAX_CACHES * 2);
        assert!(!stamps.contains(&0));
    }
}
