//! The last failed global allocation, kept for the panic handler: Rust's
//! alloc error path panics with "memory allocation of N bytes failed" and
//! the panic handler calls [`print_failure_diagnosis`].

use super::HEAP;
use crate::memory::{heap, pages};
use core::alloc::Layout;
use core::sync::atomic::{AtomicUsize, Ordering};
use kalloc::AllocError;

/// The last failed request (size, align) and why.
static LAST_FAILURE_SIZE: AtomicUsize = AtomicUsize::new(0);
static LAST_FAILURE_ALIGN: AtomicUsize = AtomicUsize::new(0);
static LAST_FAILURE_ERROR: AtomicUsize = AtomicUsize::new(0);

/// Keeps the failed request for [`print_failure_diagnosis`].
pub(super) fn remember_failure(layout: Layout, error: AllocError) {
    LAST_FAILURE_SIZE.store(layout.size(), Ordering::Relaxed);
    LAST_FAILURE_ALIGN.store(layout.align(), Ordering::Relaxed);
    LAST_FAILURE_ERROR.store(error as usize + 1, Ordering::Relaxed);
}

/// Prints the last failed request and the state of physical memory; the
/// panic handler calls it for Rust's "memory allocation failed" panic.
pub fn print_failure_diagnosis() {
    let error = LAST_FAILURE_ERROR.load(Ordering::Relaxed);
    if error == 0 {
        return;
    }
    crate::println!(
        "  failed request: {} bytes, align {} (via {})",
        LAST_FAILURE_SIZE.load(Ordering::Relaxed),
        LAST_FAILURE_ALIGN.load(Ordering::Relaxed),
        match Layout::from_size_align(
            LAST_FAILURE_SIZE.load(Ordering::Relaxed),
            LAST_FAILURE_ALIGN.load(Ordering::Relaxed)
        ) {
            Ok(layout) if heap::goes_to_pages(layout) => "page allocator",
            _ => "heap",
        }
    );
    let stats = pages::stats();
    crate::print!("  free pages per order:");
    let top = stats.highest_free_order().unwrap_or(0);
    for (order, count) in stats.free_blocks.iter().enumerate().take(top + 1) {
        crate::print!(" {order}:{count}");
    }
    crate::println!();
    crate::println!(
        "  free pages {} of {}; largest free run {} pages; largest heap free block {} bytes",
        stats.free_pages,
        stats.total_pages,
        stats.largest_free_run,
        super::largest_free_block()
    );
    let heap = HEAP.stats();
    crate::println!(
        "  per-hart caches hold {} objects ({} bytes) after the drain",
        heap.cached_total(),
        heap.cached_bytes
    );
}
