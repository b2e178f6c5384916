//! Unique-ID allocation over a bitmap.
