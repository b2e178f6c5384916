//! A cache's row of `slabinfo`: its slabs sorted into full, partial and
//! empty as a reader of the counters expects, with parked objects counted
//! as free.

use super::SlabCache;
use crate::byte::slab::info::SlabInfo;

impl SlabCache {
    /// The cache's `slabinfo` row.
    pub fn info(&self) -> SlabInfo {
        let [full_slabs, partial_slabs, empty_slabs] = self.state_counts();
        SlabInfo {
            name: self.name,
            object_size: self.object_size,
            active_objects: self.active_objects(),
            total_objects: self.slab_count() * self.objects_per_slab,
            objects_per_slab: self.objects_per_slab,
            pages_per_slab: self.pages_per_slab,
            full_slabs,
            partial_slabs,
            empty_slabs,
        }
    }

    /// Slabs per state (full, partial, empty), the current slab included,
    /// with parked objects counted as free: a slab's `in_use` counts them
    /// (so it is never released under the magazine), `slabinfo` does not.
    /// O(parked^2), at most `MAGAZINE_MAX^2` steps: statistics only.
    fn state_counts(&self) -> [usize; 3] {
        let mut counts = self.counts;
        if !self.current.is_null() {
            // SAFETY: a non-null current slab is a slab in service of this cache.
            counts[self.list_for(unsafe { (*self.current).in_use })] += 1;
        }
        for (position, object) in self.magazine.objects().enumerate() {
            let slab = self.slab_of(object);
            // Each slab once, at its first (most recent) parked object.
            if self
                .magazine
                .objects()
                .take(position)
                .any(|earlier| self.slab_of(earlier) == slab)
            {
                continue;
            }
            let parked = self
                .magazine
                .objects()
                .filter(|&other| self.slab_of(other) == slab)
                .count();
            // SAFETY: a slab holding a parked object is a live slab of
            // this cache.
            let in_use = unsafe { (*slab).in_use };
            counts[self.list_for(in_use)] -= 1;
            counts[self.list_for(in_use - parked)] += 1;
        }
        counts
    }
}
