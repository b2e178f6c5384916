//! Where the heap's memory comes from and goes back to: the page source
//! of the slab allocator ([`GlobalPages`]), the pools the pool-based byte
//! allocators (TLSF, byte buddy) grow by, and the idle TLSF pools given
//! back. Every move is counted for the heap's notice; all of it runs
//! under the heap's lock.

use super::notice::{PageMoves, RefusedPool};
use super::{GROW_PAGES, MAX_GROW_PAGES};
use crate::arch::PAGE_SIZE;
use crate::memory::counters::COUNTERS;
use crate::memory::pages;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use kalloc::byte::{PageSource, Tlsf};
use kalloc::{AllocError, AllocResult, ByteAllocator};

/// The slab allocator's page source: the global page allocator, counting
/// what it moved for the heap's notice. Called under the heap's lock, so
/// through the page allocator's untraced entry points.
#[derive(Default)]
pub struct GlobalPages {
    pub moves: PageMoves,
}

impl PageSource for GlobalPages {
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<NonNull<u8>> {
        let addr = pages::alloc_untraced("heap", count, align)?;
        COUNTERS.heap_pages.fetch_add(count, Ordering::Relaxed);
        self.moves.take(count);
        NonNull::new(addr as *mut u8).ok_or(AllocError::NoMemory)
    }

    unsafe fn dealloc_pages(&mut self, pages: NonNull<u8>, count: usize) -> AllocResult {
        pages::free_untraced(pages.addr().get(), count)?;
        COUNTERS.heap_pages.fetch_sub(count, Ordering::Relaxed);
        self.moves.give(count);
        Ok(())
    }

    fn available_pages(&self) -> usize {
        let (used, total) = pages::usage();
        total - used
    }
}

/// Takes a fresh pool of pages and hands it to `add`; the pool counts in
/// `moves` once the allocator took it.
fn grow(
    add: impl FnOnce(NonNull<u8>, usize) -> AllocResult,
    pages: usize,
    moves: &mut PageMoves,
) -> AllocResult {
    let mut source = GlobalPages::default();
    let pool = source.alloc_pages(pages, PAGE_SIZE)?;
    if let Err(error) = add(pool, pages * PAGE_SIZE) {
        // SAFETY: the pool was just taken and never handed out.
        unsafe { source.dealloc_pages(pool, pages)? };
        return Err(error);
    }
    moves.take(pages);
    Ok(())
}

/// Allocates from a pool-based allocator, growing it once on `NoMemory`.
/// Generic over kalloc's `ByteAllocator` (growth is `add_memory`), so a
/// `memdebug::DebugByteAllocator` around the chosen allocator fits here.
pub(super) fn alloc_growing<A: ByteAllocator>(
    allocator: &mut A,
    layout: Layout,
    moves: &mut PageMoves,
) -> AllocResult<NonNull<u8>> {
    match allocator.alloc(layout) {
        Err(AllocError::NoMemory) => {
            let pages =
                (COUNTERS.heap_pages.load(Ordering::Relaxed) / 2).clamp(GROW_PAGES, MAX_GROW_PAGES);
            grow(
                // SAFETY: the pool comes fresh from the page allocator, lies
                // in the linear map and is owned by the heap from now on.
                |pool, bytes| unsafe { allocator.add_memory(pool.addr().get(), bytes) },
                pages,
                moves,
            )?;
            allocator.alloc(layout)
        }
        result => result,
    }
}

/// Gives wholly free TLSF pools back while more than `keep` bytes sit
/// idle, counting them in `moves`. A pool the page allocator refuses goes
/// back into TLSF and ends the loop.
pub(super) fn trim_tlsf(
    tlsf: &mut Tlsf,
    keep: usize,
    moves: &mut PageMoves,
) -> Option<RefusedPool> {
    while tlsf.available_bytes() > keep {
        let (pool, bytes) = tlsf.take_free_pool()?;
        let mut source = GlobalPages::default();
        // SAFETY: the pool was taken from the page allocator by `grow` with
        // exactly this size, and TLSF no longer uses it.
        if let Err(error) = unsafe { source.dealloc_pages(pool, bytes / PAGE_SIZE) } {
            // SAFETY: the pool is the one TLSF just gave up, still owned by
            // the heap and unused.
            let kept = unsafe { tlsf.add_pool(pool, bytes) };
            debug_assert!(kept.is_ok(), "TLSF refused its own pool back");
            return Some(RefusedPool {
                addr: pool.addr().get(),
                pages: bytes / PAGE_SIZE,
                error,
            });
        }
        moves.give(bytes / PAGE_SIZE);
    }
    None
}
