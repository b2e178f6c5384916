//! Page-granular allocators: buddy (default), hierarchical bitmap, linear-scan baseline.
