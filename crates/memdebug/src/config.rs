//! The knobs of a debug layer besides its flags.

use crate::DebugFlags;

/// How a debug layer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebugConfig {
    /// Which checks run.
    pub flags: DebugFlags,
    /// Allocations of at least this size (bytes, or pages for page layers)
    /// record their call site when `TRACK` is on; 0 tracks all of them.
    pub track_threshold: usize,
    /// Bytes of red zone on each side of an object (rounded up to 8).
    pub redzone: usize,
    /// The most memory (bytes, or pages for page layers) held back in
    /// quarantine before the oldest freed block is given back.
    pub quarantine_limit: usize,
}

impl DebugConfig {
    /// A byte layer with the given flags and the defaults: every
    /// allocation tracked, 16-byte red zones, 256 KiB of quarantine.
    pub const fn bytes(flags: DebugFlags) -> Self {
        DebugConfig {
            flags,
            track_threshold: 0,
            redzone: 16,
            quarantine_limit: 256 * 1024,
        }
    }

    /// A page layer with the given flags and the defaults: every allocation
    /// tracked, 64 pages of quarantine.
    pub const fn pages(flags: DebugFlags) -> Self {
        DebugConfig {
            flags,
            track_threshold: 0,
            redzone: 0,
            quarantine_limit: 64,
        }
    }
}
