//! The kernel's allocators as `workload` targets (the global allocator,
//! the page allocator), the mailboxes that hand blocks from one hart to
//! the next (cross-hart frees), and the counter snapshot that the
//! workloads compare before and after a run: the concurrency tests, the
//! stress mode and the monitor's `bench` all drive the same pieces.

use crate::arch::PAGE_SIZE;
use crate::memory::pages;
use crate::sync::IrqSpinLock;
use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use kalloc::AllocError;
use workload::{Block, Failure, Generator, Target};

/// The global allocator (`alloc::alloc`), as Rust code reaches it.
pub struct GlobalHeap;

impl Target for GlobalHeap {
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let layout = Layout::from_size_align(size, align).map_err(|_| AllocError::InvalidParam)?;
        if layout.size() == 0 {
            return Err(AllocError::InvalidParam);
        }
        // SAFETY: a non-zero size (checked above).
        NonNull::new(unsafe { alloc::alloc::alloc(layout) }).ok_or(AllocError::NoMemory)
    }

    unsafe fn free(
        &mut self,
        ptr: NonNull<u8>,
        size: usize,
        align: usize,
    ) -> Result<(), AllocError> {
        let layout = Layout::from_size_align(size, align).map_err(|_| AllocError::InvalidParam)?;
        // SAFETY: forwarded from the caller: a live block of this layout.
        unsafe { alloc::alloc::dealloc(ptr.as_ptr(), layout) };
        Ok(())
    }
}

/// The page allocator (`memory::pages`); sizes round up to whole pages,
/// alignments up to the page size.
pub struct Frames;

impl Target for Frames {
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let addr = pages::alloc(size.div_ceil(PAGE_SIZE), align.max(PAGE_SIZE))?;
        NonNull::new(addr as *mut u8).ok_or(AllocError::NoMemory)
    }

    unsafe fn free(
        &mut self,
        ptr: NonNull<u8>,
        size: usize,
        _align: usize,
    ) -> Result<(), AllocError> {
        pages::free(ptr.addr().get(), size.div_ceil(PAGE_SIZE))
    }
}

/// A block on its way to another hart.
#[derive(Clone, Copy)]
struct InFlight(Block);
// SAFETY: a live heap or page block belongs to whoever holds it; handing
// it over through the mailbox lock transfers ownership.
unsafe impl Send for InFlight {}

/// Up to `N` blocks in flight to one hart.
pub struct Mailbox<const N: usize>([Option<InFlight>; N]);

impl<const N: usize> Mailbox<N> {
    pub const fn new() -> Self {
        Mailbox([None; N])
    }

    /// Leaves `block` for the owner; gives it back if the box is full.
    fn push(&mut self, block: Block) -> Option<Block> {
        match self.0.iter_mut().find(|b| b.is_none()) {
            Some(free) => {
                *free = Some(InFlight(block));
                None
            }
            None => Some(block),
        }
    }

    pub fn pop(&mut self) -> Option<Block> {
        self.0.iter_mut().find_map(Option::take).map(|b| b.0)
    }
}

/// One hand-over step of hart `slot` among `participants`: passes a
/// victim of `generator` to the next hart's mailbox and frees (checking
/// its contents) every block the previous hart left in this one, counting
/// those in `cross_frees`.
pub fn exchange<const N: usize>(
    slot: usize,
    participants: usize,
    generator: &mut Generator<'_>,
    target: &mut impl Target,
    mail: &[IrqSpinLock<Mailbox<N>>],
    cross_frees: &AtomicU64,
) -> Result<(), Failure> {
    let next = (slot + 1) % participants;
    if next != slot
        && let Some(block) = generator.take_victim()
    {
        // The mailbox lock is released before any free (it masks interrupts).
        let refused = mail[next].lock().push(block);
        if let Some(back) = refused {
            generator.check_and_free(target, back)?;
        }
    }
    loop {
        let received = mail[slot].lock().pop();
        let Some(block) = received else { break };
        generator.check_and_free(target, block)?;
        cross_frees.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Every counter a workload run must leave as it found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub pages_used: usize,
    pub heap_pages: usize,
    pub live_blocks: usize,
    pub live_bytes: usize,
    pub large_pages: usize,
    pub heap_used_bytes: usize,
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pages used {} (heap {}, large {}), live blocks {}, live bytes {}, heap used bytes {}",
            self.pages_used,
            self.heap_pages,
            self.large_pages,
            self.live_blocks,
            self.live_bytes,
            self.heap_used_bytes
        )
    }
}

/// Gives idle heap memory back (quarantines included), then reads the
/// counters.
pub fn snapshot() -> Snapshot {
    crate::memdiag::shrink();
    Snapshot {
        pages_used: pages::usage().0,
        heap_pages: crate::memory::counters::COUNTERS
            .heap_pages
            .load(Ordering::Relaxed),
        live_blocks: crate::memory::global::stats().live_blocks() as usize,
        live_bytes: crate::memory::global::stats().live_bytes(),
        large_pages: crate::memory::counters::COUNTERS
            .large_pages
            .load(Ordering::Relaxed),
        heap_used_bytes: crate::memory::global::used_bytes(),
    }
}
