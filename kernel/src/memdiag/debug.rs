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
//! The layers plug in through `memory::hooks` (`BYTE_LAYER`,
//! `PAGE_LAYER`): with `off` each allocation pays one load and a branch
//! that always goes the same way. With checks on, each layer sits *above*
//! the allocator it watches, behind its own `IrqTicketLock`; lock order is
//! BYTES, heap, DEBUG_PAGES, pages; reports are queued under those locks
//! and published ([`capture`], the console) after they are released. Tables live in pages taken at boot, so the
//! layers never allocate from what they watch. Reports go to the log
//! (through `memdiag::ratelimit`) and, while a test has armed it, to the
//! capture buffer.

pub mod capture;
mod config;
pub mod kfence;
mod layers;
pub mod leak;
pub mod oom;
mod report;
pub mod site;

pub use config::{DebugArgs, bytes_on, flags, pages_on};

/// The log target of memdebug's reports: shown as `memdebug`, covered by
/// `log=memdiag:...`.
pub const MEMDEBUG: &str = "rvos::memdiag::memdebug";
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
use crate::memory::hooks;

/// The counters of both layers (byte, page), if installed.
pub fn layers_counters() -> Option<(memdebug::Counters, memdebug::Counters)> {
    let bytes = layers::with_bytes(|layer| layer.counters())?;
    let pages = layers::with_pages(|layer| layer.counters())?;
    Some((bytes, pages))
}

/// Installs the layers `args` asks for. Runs on the boot hart after
/// `pages::init` and before `global::init`, so every block the layers see
/// freed was handed out through them.
pub fn init(args: DebugArgs, timebase_hz: u64) {
    config::configure(args, timebase_hz);
    if args.flags.is_empty() {
        log::info!(target: MEMDEBUG, "off");
        return;
    }
    match layers::install(args) {
        Ok(tables) => {
            kfence::configure(args.kfence_interval);
            hooks::BYTE_LAYER.set(hooks::ByteLayer {
                alloc: layers::global_alloc,
                dealloc: layers::global_dealloc,
                check_free: layers::check_free,
            });
            hooks::PAGE_LAYER.set(hooks::PageLayer {
                alloc: layers::alloc_pages,
                free: layers::dealloc_pages,
            });
            log::info!(
                target: MEMDEBUG,
                "{} (byte table {} blocks, page table {} blocks, {} of tables; \
                 call sites of byte blocks >= {} bytes)",
                args.flags,
                tables.byte_capacity,
                tables.page_capacity,
                crate::memory::Size((tables.pages * PAGE_SIZE) as u64),
                args.track_threshold
            );
        }
        Err(error) => {
            log::error!(
                target: MEMDEBUG,
                "no memory for the debug tables ({error}); checks stay off"
            )
        }
    }
}

#[cfg(feature = "ktest")]
mod bench;
#[cfg(feature = "ktest")]
mod tests;
