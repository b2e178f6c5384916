//! Byte-granular allocators: TLSF, buddy and slab.
