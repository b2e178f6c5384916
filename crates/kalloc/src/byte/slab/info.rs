//! One row of a `/proc/slabinfo`-style view of a slab cache.

use core::fmt;

/// Counters of one cache, as `SlabAllocator::slabinfo` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabInfo {
    /// The cache's name (`kmalloc-64`, or the name given to
    /// [`create_cache`](crate::byte::SlabAllocator::create_cache)).
    pub name: &'static str,
    /// Bytes per object (the request rounded up to the cache's alignment).
    pub object_size: usize,
    /// Objects handed out.
    pub active_objects: usize,
    /// Object slots in all slabs the cache holds.
    pub total_objects: usize,
    /// Objects one slab holds.
    pub objects_per_slab: usize,
    /// Pages one slab takes from the page source.
    pub pages_per_slab: usize,
    /// Slabs with every object in use.
    pub full_slabs: usize,
    /// Slabs with some objects in use.
    pub partial_slabs: usize,
    /// Slabs with no object in use, kept to avoid thrashing the page source.
    pub empty_slabs: usize,
}

impl SlabInfo {
    /// The column titles matching [`SlabInfo`]'s `Display` output.
    pub const TITLE: &'static str =
        "name                 objsize  active   total objs/slab pages/slab  full partial empty";
}

impl fmt::Display for SlabInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<20} {:>7} {:>7} {:>7} {:>9} {:>10} {:>5} {:>7} {:>5}",
            self.name,
            self.object_size,
            self.active_objects,
            self.total_objects,
            self.objects_per_slab,
            self.pages_per_slab,
            self.full_slabs,
            self.partial_slabs,
            self.empty_slabs
        )
    }
}
