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

use super::counters::{self, COUNTERS};
use super::{heap, hooks, pages};
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
fn remember_failure(layout: Layout, error: AllocError) {
    LAST_FAILURE_SIZE.store(layout.size(), Ordering::Relaxed);
    LAST_FAILURE_ALIGN.store(layout.align(), Ordering::Relaxed);
    LAST_FAILURE_ERROR.store(error as usize + 1, Ordering::Relaxed);
}

#[cold]
#[inline(never)]
fn record_failure(layout: Layout, error: AllocError, caller: usize) {
    remember_failure(layout, error);
    COUNTERS.failures.fetch_add(1, Ordering::Relaxed);
    if let Some(checks) = hooks::CHECKS.get() {
        (checks.allocation_failed)(layout, error, caller);
    }
}

/// Whether the checks fail this heap request on purpose (fault injection).
fn fails_on_purpose(layout: Layout) -> bool {
    hooks::FAIL_HEAP_ALLOC_ARMED.load(Ordering::Relaxed)
        && !heap::goes_to_pages(layout)
        && hooks::CHECKS
            .get()
            .is_some_and(|checks| (checks.fail_heap_alloc)(layout))
}

// SAFETY: blocks come from `heap::alloc`, which hands out disjoint blocks
// that satisfy the layout, and go back to `heap::dealloc` with the same
// layout; or from the debug layer, which wraps the same heap and keeps
// both promises.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // First thing, while `ra` still holds it: who allocates.
        let caller = crate::arch::cpu::return_address();
        let result = if fails_on_purpose(layout) {
            Err(AllocError::NoMemory)
        } else if let Some(layer) = hooks::BYTE_LAYER.get() {
            (layer.alloc)(layout, caller)
        } else {
            heap::alloc(layout)
        };
        match result {
            Ok(block) => {
                counters::note_alloc(layout);
                block.as_ptr()
            }
            Err(error) => {
                record_failure(layout, error, caller);
                ptr::null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let caller = crate::arch::cpu::return_address();
        let block = NonNull::new(ptr).expect("GlobalAlloc::dealloc of null");
        let Some(layer) = hooks::BYTE_LAYER.get() else {
            // SAFETY: the caller frees a block `alloc` returned for `layout`.
            if let Err(error) = unsafe { heap::dealloc(block, layout) } {
                panic!(
                    "kernel heap: free of {ptr:p} ({} bytes, align {}) refused: {error}",
                    layout.size(),
                    layout.align()
                );
            }
            counters::note_free(layout);
            return;
        };
        // SAFETY: forwarded from the caller. The layer reports and refuses
        // a block it did not hand out, and the kernel goes on.
        if unsafe { (layer.dealloc)(block, layout, caller) }.is_ok() {
            counters::note_free(layout);
        }
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
unsafe fn check_free(ptr: NonNull<u8>, layout: Layout) -> Result<(), AllocError> {
    if let Some(layer) = hooks::BYTE_LAYER.get() {
        return (layer.check_free)(ptr, layout, memdebug::CallSite::caller());
    }
    // SAFETY: forwarded from the caller; without the debug layer the
    // global allocator is the heap.
    unsafe { heap::check_dealloc(ptr, layout) }
}

/// A block of the global allocator held by address rather than by a Rust
/// type (the monitor's `alloc` and `free`, the workload targets). Freeing
/// consumes it, so it is freed once, with the layout it was allocated
/// with; what is left, a [`FreedBlock`], can only ask for a verdict.
#[derive(Debug)]
pub struct Block {
    start: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a `Block` owns its allocation as a `Box` does; the global
// allocator may free it from any hart.
unsafe impl Send for Block {}

impl Block {
    /// Allocates `layout` from the global allocator; `None` for a zero
    /// size or when the allocation fails (reported as any failure is).
    pub fn alloc(layout: Layout) -> Option<Self> {
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: a non-zero size (checked above).
        let start = NonNull::new(unsafe { alloc::alloc::alloc(layout) })?;
        Some(Self { start, layout })
    }

    pub fn addr(&self) -> usize {
        self.start.addr().get()
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Frees the block.
    pub fn free(self) -> FreedBlock {
        // SAFETY: the block came from the global allocator with this
        // layout and, consumed here, is freed once.
        unsafe { alloc::alloc::dealloc(self.start.as_ptr(), self.layout) };
        FreedBlock {
            start: self.start,
            layout: self.layout,
        }
    }
}

/// Where a freed [`Block`] was. Only the global allocator's blocks leave
/// one, which is what makes asking for the verdict on a second free safe.
#[derive(Clone, Copy, Debug)]
pub struct FreedBlock {
    start: NonNull<u8>,
    layout: Layout,
}

// SAFETY: only an address and a layout; nothing is reached through them.
unsafe impl Send for FreedBlock {}

impl FreedBlock {
    /// The verdict the global allocator would give a second free of this
    /// block, without freeing ([`check_free`]).
    #[track_caller]
    pub fn check_free(&self) -> Result<(), AllocError> {
        // SAFETY: the address came from the global allocator (a `Block`).
        unsafe { check_free(self.start, self.layout) }
    }
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
mod tests;
