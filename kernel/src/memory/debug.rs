//! `memdebug=` in the kernel: the checks of the `memdebug` crate wrapped
//! around the global allocator and the page allocator, chosen once at boot.
//!
//! ```text
//!   memdebug=off (default)            memdebug=poison,redzone,track,...
//!   GlobalAlloc ─► heap / pages       GlobalAlloc ─► BYTES: DebugByteAllocator<KernelHeap>
//!   pages::alloc ─► PAGES                               └─► heap / pages::alloc
//!                                     pages::alloc ─► DEBUG_PAGES: DebugPageAllocator<PlainPages>
//!                                                         └─► pages::with (the buddy/bitmap)
//! ```
//!
//! With `off` each allocation pays one relaxed load and a branch that
//! always goes the same way. With checks on, each layer sits *above* the
//! allocator it watches, behind its own `IrqTicketLock`; lock order is
//! BYTES, heap, DEBUG_PAGES, pages, then [`capture`] and the console (the
//! report sink never allocates). Tables live in pages taken at boot, so the
//! layers never allocate from what they watch. Reports go to the log and,
//! while a test has armed it, to the capture buffer.

pub mod capture;
pub mod kfence;
mod layers;
pub mod leak;
pub mod oom;
mod ratelimit;
pub mod site;

pub(super) use layers::{alloc_pages, check_free, dealloc_pages, global_alloc, global_dealloc};
pub use layers::{flush_byte_quarantine, flush_page_quarantine};
#[cfg_attr(
    not(feature = "ktest"),
    expect(
        unused_imports,
        reason = "API for kernel code; the in-kernel tests are its only user so far"
    )
)]
pub use layers::{flush_quarantines, validate};

use crate::arch::PAGE_SIZE;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
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
static BYTES_ON: AtomicBool = AtomicBool::new(false);
static PAGES_ON: AtomicBool = AtomicBool::new(false);
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
    BYTES_ON.load(Ordering::Relaxed)
}

/// Whether `pages::alloc`/`free` go through the page layer.
#[inline(always)]
pub fn pages_on() -> bool {
    PAGES_ON.load(Ordering::Relaxed)
}

/// Clock of the layers' timestamps: the `time` CSR.
fn clock() -> u64 {
    crate::arch::cpu::ticks()
}

/// Timebase ticks as microseconds since boot.
pub fn ticks_to_micros(ticks: u64) -> u64 {
    match TIMEBASE_HZ.load(Ordering::Relaxed) {
        0 => 0,
        hz => (u128::from(ticks) * 1_000_000 / u128::from(hz)) as u64,
    }
}

/// The counters of both layers (byte, page), if installed.
pub fn layers_counters() -> Option<(memdebug::Counters, memdebug::Counters)> {
    let bytes = layers::with_bytes(|layer| layer.counters())?;
    let pages = layers::with_pages(|layer| layer.counters())?;
    Some((bytes, pages))
}

fn leak_period_ticks() -> usize {
    LEAK_PERIOD.load(Ordering::Relaxed)
}

/// Installs the layers `args` asks for. Runs on the boot hart after
/// `pages::init` and before `heap::init`, so every block the layers see
/// freed was handed out through them.
pub fn init(args: DebugArgs, timebase_hz: u64) {
    TIMEBASE_HZ.store(timebase_hz, Ordering::Relaxed);
    FLAGS.store(args.flags.bits(), Ordering::Relaxed);
    LEAK_PERIOD.store(args.leak_period_ticks as usize, Ordering::Relaxed);
    TRACK_THRESHOLD.store(args.track_threshold, Ordering::Relaxed);
    if args.flags.is_empty() {
        log::info!("memdebug: off");
        return;
    }
    match layers::install(args) {
        Ok(tables) => {
            kfence::configure(args.kfence_interval);
            BYTES_ON.store(true, Ordering::Release);
            PAGES_ON.store(true, Ordering::Release);
            log::info!(
                "memdebug: {} (byte table {} blocks, page table {} blocks, {} of tables; \
                 call sites of byte blocks >= {} bytes)",
                args.flags,
                tables.byte_capacity,
                tables.page_capacity,
                crate::memory::Size((tables.pages * PAGE_SIZE) as u64),
                args.track_threshold
            );
        }
        Err(error) => {
            log::error!("memdebug: no memory for the debug tables ({error}); checks stay off")
        }
    }
}

#[cfg(feature = "ktest")]
mod bench;
#[cfg(feature = "ktest")]
mod tests;
