//! What `memdebug=` chose at boot, readable everywhere in the debug code
//! without going through its root module: the flags, the companions'
//! values, the clock of the timestamps, and whether each layer is
//! plugged in.

use crate::memory::hooks;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use memdebug::DebugFlags;

/// What `memdebug=` and its companions asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugArgs {
    pub flags: DebugFlags,
    /// `memdebug.track=BYTES`: byte allocations at least this large record
    /// their call site (page allocations always do when `track` is on).
    pub track_threshold: usize,
    /// `memdebug.leakwatch=TICKS`: timer ticks (of the boot hart) between
    /// two leak checks under `leakcheck`.
    pub leak_period_ticks: u32,
    /// `memdebug.kfence=N`: every N-th byte allocation gets a page of its
    /// own against an unmapped guard page (0: none).
    pub kfence_interval: usize,
}

impl Default for DebugArgs {
    fn default() -> Self {
        DebugArgs {
            flags: DebugFlags::empty(),
            track_threshold: DEFAULT_TRACK_THRESHOLD,
            leak_period_ticks: 100,
            kfence_interval: 0,
        }
    }
}

/// Every allocation in the test build; in a normal build only those large
/// enough to matter for leaks, so tracking stays cheap.
pub const DEFAULT_TRACK_THRESHOLD: usize = if cfg!(feature = "ktest") { 0 } else { 256 };

static FLAGS: AtomicU32 = AtomicU32::new(0);
static TIMEBASE_HZ: AtomicU64 = AtomicU64::new(0);
static LEAK_PERIOD: AtomicUsize = AtomicUsize::new(0);
static TRACK_THRESHOLD: AtomicUsize = AtomicUsize::new(0);

/// The checks chosen at boot.
pub fn flags() -> DebugFlags {
    DebugFlags::from_bits_truncate(FLAGS.load(Ordering::Relaxed))
}

/// Whether a byte block of `size` bytes records its call site.
#[cfg_attr(
    not(feature = "ktest"),
    expect(dead_code, reason = "the in-kernel tests are its only user so far")
)]
pub fn tracks(size: usize) -> bool {
    flags().contains(DebugFlags::TRACK) && size >= TRACK_THRESHOLD.load(Ordering::Relaxed)
}

/// Whether the global allocator goes through the byte layer.
#[inline(always)]
pub fn bytes_on() -> bool {
    hooks::BYTE_LAYER.get().is_some()
}

/// Whether `pages::alloc`/`free` go through the page layer.
#[inline(always)]
pub fn pages_on() -> bool {
    hooks::PAGE_LAYER.get().is_some()
}

/// Clock of the layers' timestamps: the `time` CSR.
pub fn clock() -> u64 {
    crate::arch::cpu::ticks()
}

/// Timebase ticks as microseconds since boot.
pub fn ticks_to_micros(ticks: u64) -> u64 {
    match TIMEBASE_HZ.load(Ordering::Relaxed) {
        0 => 0,
        hz => (u128::from(ticks) * 1_000_000 / u128::from(hz)) as u64,
    }
}

pub fn leak_period_ticks() -> usize {
    LEAK_PERIOD.load(Ordering::Relaxed)
}

/// Records what `args` chose and the timebase, before any layer is built.
pub fn configure(args: DebugArgs, timebase_hz: u64) {
    TIMEBASE_HZ.store(timebase_hz, Ordering::Relaxed);
    FLAGS.store(args.flags.bits(), Ordering::Relaxed);
    LEAK_PERIOD.store(args.leak_period_ticks as usize, Ordering::Relaxed);
    TRACK_THRESHOLD.store(args.track_threshold, Ordering::Relaxed);
}
