//! Byte-granular allocators: TLSF (the kernel heap), a binary buddy (the
//! reference for internal fragmentation) and a slab allocator with named
//! caches and `kmalloc` size classes, all behind [`ByteAllocator`].
//!
//! [`ByteAllocator`]: crate::ByteAllocator

mod buddy;
mod large;
mod pool_table;
mod slab;
mod tlsf;

pub use buddy::{BUDDY_UNIT, BuddyByteAllocator};
pub use large::LargeBlocks;
pub use pool_table::MAX_POOLS;
pub use slab::{
    CacheId, KMALLOC_CLASSES, KMALLOC_MAX, KMALLOC_SIZES, MAGAZINE_MAX, MAX_CACHES,
    MAX_EMPTY_SLABS, ObjectProbe, PageSource, SlabAllocator, SlabInfo, kmalloc_cache_name,
    kmalloc_class, kmalloc_class_layout, kmalloc_small_class, mark_live, mark_parked,
};
pub use tlsf::{TLSF_GRANULE, TLSF_HEADER, TLSF_MIN_BLOCK, Tlsf};
