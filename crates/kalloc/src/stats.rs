//! Page statistics shared by every page allocator: buddyinfo and fragmentation indices.
