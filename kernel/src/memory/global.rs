//! `#[global_allocator]`: Rust's `alloc` (Vec, Box, BTreeMap, String) on
//! every hart and in interrupt handlers, over `memory::heap` (small
//! blocks) and `memory::pages` (a page or more).
//!
//! A failed allocation returns null, so `try_reserve` and the kernel's
//! fallible helpers ([`try_box`]) see an error they can handle. Each
//! failure is recorded; if nobody handles it, Rust's alloc error path
//! panics with "memory allocation of N bytes failed" and the panic handler
//! calls [`print_failure_diagnosis`]: the request, free pages per order and
//! the largest free block.

use super::{debug, heap, pages, stats};
use alloc::boxed::Box;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};
use kalloc::AllocError;

struct KernelAllocator;

#[global_allocator]
static GLOBAL: KernelAllocator = KernelAllocator;

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

fn record_failure(layout: Layout, error: AllocError) {
    remember_failure(layout, error);
    // Counts the failure and logs the OOM report.
    debug::oom::allocation_failed(layout, error, memdebug::CallSite::Unknown);
}

/// A block for `layout` was handed out: the live counters and the
/// watermark.
pub(super) fn note_alloc(layout: Layout) {
    heap::COUNTERS.live_blocks.fetch_add(1, Ordering::Relaxed);
    let live = heap::COUNTERS
        .live_bytes
        .fetch_add(layout.size(), Ordering::Relaxed);
    stats::note_alloc(live + layout.size());
}

/// A block for `layout` came back.
pub(super) fn note_free(layout: Layout) {
    heap::COUNTERS.live_blocks.fetch_sub(1, Ordering::Relaxed);
    heap::COUNTERS
        .live_bytes
        .fetch_sub(layout.size(), Ordering::Relaxed);
    stats::note_free();
}

// SAFETY: blocks come from `heap::alloc`, which hands out disjoint blocks
// that satisfy the layout, and go back to `heap::dealloc` with the same
// layout (or through the debug layer, which wraps the same heap).
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if debug::bytes_on() {
            // A tail call: the layer reads our caller's return address.
            return debug::global_alloc(layout);
        }
        let result = if !heap::goes_to_pages(layout) && super::faults::slab_alloc_fails(layout) {
            Err(AllocError::NoMemory)
        } else {
            heap::alloc(layout)
        };
        match result {
            Ok(ptr) => {
                note_alloc(layout);
                ptr.as_ptr()
            }
            Err(error) => {
                record_failure(layout, error);
                ptr::null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if debug::bytes_on() {
            // SAFETY: forwarded from the caller; the layer refuses (and
            // reports) a pointer it did not hand out. A tail call, as above.
            return unsafe { debug::global_dealloc(ptr, layout) };
        }
        let block = NonNull::new(ptr).expect("GlobalAlloc::dealloc of null");
        // SAFETY: the caller frees a block `alloc` returned for `layout`.
        if let Err(error) = unsafe { heap::dealloc(block, layout) } {
            panic!(
                "kernel heap: free of {ptr:p} ({} bytes, align {}) refused: {error}",
                layout.size(),
                layout.align()
            );
        }
        note_free(layout);
    }
}

/// The verdict a free of `ptr` with `layout` would get from the global
/// allocator, without freeing: `Ok` if it is a live block of this layout
/// (a second free of a block since handed out again), else the error the
/// free would be refused with. With `memdebug=` on, the refusal is
/// reported like a refused free.
///
/// # Safety
/// `ptr` was returned by the global allocator (it may have been freed
/// since).
#[track_caller]
pub unsafe fn check_free(ptr: NonNull<u8>, layout: Layout) -> Result<(), AllocError> {
    if debug::bytes_on() {
        return debug::check_free(ptr, layout, memdebug::CallSite::caller());
    }
    // SAFETY: forwarded from the caller; without the debug layer the
    // global allocator is the heap.
    unsafe { heap::check_dealloc(ptr, layout) }
}

/// Why a fallible allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocFailure {
    pub layout: Layout,
}

/// `Box::new` that reports failure instead of stopping the kernel
/// (`Box::try_new` is not stable yet).
pub fn try_box<T>(value: T) -> Result<Box<T>, AllocFailure> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(value));
    }
    // SAFETY: non-zero size checked above.
    let ptr = unsafe { alloc::alloc::alloc(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(AllocFailure { layout });
    }
    // SAFETY: `ptr` is a fresh, suitably aligned block for one `T`, which
    // `Box` frees with the same layout through the global allocator.
    unsafe {
        ptr.write(value);
        Ok(Box::from_raw(ptr))
    }
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
        heap::largest_free_block()
    );
}

#[cfg(feature = "ktest")]
mod concurrency;
#[cfg(feature = "ktest")]
mod tests;
