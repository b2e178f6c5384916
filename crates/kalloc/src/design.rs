//! The design notes, rendered here so they travel with the crate: how each
//! allocator lays out its memory, what it checks, what it costs and why.
//! The notes link to other notes of the repository by relative paths;
//! those are at <https://github.com/rvos-kernel/rvos/tree/main/docs>.
//!
//! Compiled out when doctests are collected: the notes' code blocks are
//! drawings and shell commands, not Rust, though some carry no language
//! tag.

/// Page allocators: the zones, the buddy's lists and bitmaps, the
/// hierarchical bitmap, the linear scan, the benchmark.
pub mod page_allocators {
    #![doc = include_str!("../docs/page-allocators.md")]
}

/// Byte allocators: TLSF's block layout and invariants, the byte buddy's
/// tags, the slab's slabs, magazines and checks, fuzzing, the benchmark.
// Its drawings are fenced without a language tag, which rustdoc takes
// for Rust.
#[allow(rustdoc::invalid_rust_codeblocks)]
pub mod byte_allocators {
    #![doc = include_str!("../docs/byte-allocators.md")]
}
