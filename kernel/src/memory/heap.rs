//! The kernel heap behind `#[global_allocator]`: a byte allocator chosen at
//! boot (`alloc=slab|tlsf|buddy`) that grows by taking pages from the page
//! allocator when it runs short; requests of a page or more (or aligned
//! beyond a page) get whole pages, recorded as large blocks. [`alloc`] and
//! [`dealloc`] are the one place that decides which.
//!
//! ```text
//!   heap::alloc(layout)
//!     size >= 4 KiB or align > 4 KiB ─► memory::pages (whole pages), recorded in LargeBlocks
//!     else, alloc=slab:  size <= 2 KiB ─► SlabAllocator (kmalloc classes, slabs from pages)
//!                        otherwise ─────► Tlsf (pools of 64 KiB from pages)
//!           alloc=tlsf:  Tlsf              alloc=buddy: BuddyByteAllocator
//! ```
//!
//! A large block goes back to the page allocator only if the table holds
//! it with that page count: the page allocator alone cannot tell it from a
//! slab or pool that reuses its pages, so a stale free is refused instead
//! of freeing pages under their new owner.
//!
//! One `IrqTicketLock` guards the byte allocator and the table; the page
//! allocator's lock nests inside it (order: heap, then pages), both mask
//! interrupts, so the heap works in interrupt handlers. Nothing is printed
//! under it. TLSF gives a wholly free pool back to the page allocator once
//! more than [`KEEP_FREE_BYTES`] sit idle; the slab allocator returns empty
//! slabs beyond its cache limit itself; the byte buddy keeps its pools
//! (kalloc has no pool removal for it).

use super::counters::COUNTERS;
use super::pages;
use crate::arch::PAGE_SIZE;
use crate::sync::IrqTicketLock;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::str::FromStr;
use core::sync::atomic::{AtomicUsize, Ordering};
use kalloc::byte::{BuddyByteAllocator, LargeBlocks, PageSource, SlabAllocator, Tlsf};
use kalloc::{AllocError, AllocResult, ByteAllocator};

/// `alloc=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeapKind {
    /// Slab classes up to 2 KiB, TLSF above (the default).
    #[default]
    Slab,
    Tlsf,
    Buddy,
}

impl FromStr for HeapKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "slab" => Ok(Self::Slab),
            "tlsf" => Ok(Self::Tlsf),
            "buddy" => Ok(Self::Buddy),
            _ => Err(()),
        }
    }
}

impl HeapKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Slab => "slab+tlsf",
            Self::Tlsf => "tlsf",
            Self::Buddy => "buddy",
        }
    }
}

/// Pages the smallest pool has; later pools grow with the heap (half of
/// what it holds, at most [`MAX_GROW_PAGES`]) so kalloc's fixed pool
/// table (`MAX_POOLS`) covers a large heap.
pub const GROW_PAGES: usize = 16;
pub const MAX_GROW_PAGES: usize = 512;
/// Idle pool bytes TLSF keeps before giving whole pools back.
pub const KEEP_FREE_BYTES: usize = 4 * GROW_PAGES * PAGE_SIZE;
/// Whether the slab classes serve `layout` under `alloc=slab` (TLSF serves
/// the rest of the small requests).
fn slab_serves(layout: Layout) -> bool {
    const SLAB_MAX: usize = kalloc::byte::KMALLOC_MAX;
    layout.size() <= SLAB_MAX && layout.align() <= SLAB_MAX
}

/// The slab allocator's page source: the global page allocator.
pub struct GlobalPages;

impl PageSource for GlobalPages {
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<NonNull<u8>> {
        let addr = pages::alloc_for("heap", count, align)?;
        COUNTERS.heap_pages.fetch_add(count, Ordering::Relaxed);
        NonNull::new(addr as *mut u8).ok_or(AllocError::NoMemory)
    }

    unsafe fn dealloc_pages(&mut self, pages: NonNull<u8>, count: usize) -> AllocResult {
        pages::free(pages.addr().get(), count)?;
        COUNTERS.heap_pages.fetch_sub(count, Ordering::Relaxed);
        Ok(())
    }

    fn available_pages(&self) -> usize {
        let (used, total) = pages::usage();
        total - used
    }
}

/// The byte allocator `alloc=` picked, with its pools.
#[allow(
    clippy::large_enum_variant,
    reason = "one static instance; boxing it would need the heap it implements"
)]
pub enum Heap {
    Slab {
        slab: SlabAllocator<GlobalPages>,
        tlsf: Tlsf,
    },
    Tlsf(Tlsf),
    Buddy(BuddyByteAllocator),
}

/// The byte allocator and the record of the large blocks the heap handed
/// out as whole pages.
struct HeapState {
    bytes: Heap,
    large: LargeBlocks,
}

static HEAP: IrqTicketLock<Option<HeapState>> = IrqTicketLock::new("heap", None);

/// Installs the byte allocator; before this every allocation fails.
/// Never inlined: the allocator is built on the stack (tens of KiB) and
/// would otherwise stay in the boot function's frame under every test.
#[inline(never)]
pub fn init(kind: HeapKind) {
    let heap = match kind {
        HeapKind::Slab => Heap::Slab {
            slab: SlabAllocator::new(GlobalPages),
            tlsf: Tlsf::new(),
        },
        HeapKind::Tlsf => Heap::Tlsf(Tlsf::new()),
        HeapKind::Buddy => Heap::Buddy(BuddyByteAllocator::new()),
    };
    let mut slot = HEAP.lock();
    assert!(slot.is_none(), "heap initialised twice");
    *slot = Some(HeapState {
        bytes: heap,
        large: LargeBlocks::new(),
    });
    drop(slot);
    KIND.store(kind as usize + 1, Ordering::Release);
    log::info!(
        "kernel heap: {} (grows from the page allocator)",
        kind.name()
    );
}

static KIND: AtomicUsize = AtomicUsize::new(0);

/// The heap `alloc=` picked, once initialised.
pub fn kind() -> Option<HeapKind> {
    match KIND.load(Ordering::Acquire) {
        1 => Some(HeapKind::Slab),
        2 => Some(HeapKind::Tlsf),
        3 => Some(HeapKind::Buddy),
        _ => None,
    }
}

/// Whether `layout` bypasses the byte allocator: the one routing test of
/// the heap ([`alloc`], [`dealloc`], and every label that names a path).
pub fn goes_to_pages(layout: Layout) -> bool {
    layout.size() >= PAGE_SIZE || layout.align() > PAGE_SIZE
}

/// Pages a request that [`goes_to_pages`] takes.
pub fn pages_for(layout: Layout) -> usize {
    layout.size().div_ceil(PAGE_SIZE).max(1)
}

/// Takes a fresh pool of pages and hands it to `add`.
fn grow(add: impl FnOnce(NonNull<u8>, usize) -> AllocResult, pages: usize) -> AllocResult {
    let mut source = GlobalPages;
    let pool = source.alloc_pages(pages, PAGE_SIZE)?;
    if let Err(error) = add(pool, pages * PAGE_SIZE) {
        // SAFETY: the pool was just taken and never handed out.
        unsafe { source.dealloc_pages(pool, pages)? };
        return Err(error);
    }
    Ok(())
}

/// Allocates from a pool-based allocator, growing it once on `NoMemory`.
/// Generic over kalloc's `ByteAllocator` (growth is `add_memory`), so a
/// `memdebug::DebugByteAllocator` around the chosen allocator fits here.
fn alloc_growing<A: ByteAllocator>(allocator: &mut A, layout: Layout) -> AllocResult<NonNull<u8>> {
    match allocator.alloc(layout) {
        Err(AllocError::NoMemory) => {
            let pages =
                (COUNTERS.heap_pages.load(Ordering::Relaxed) / 2).clamp(GROW_PAGES, MAX_GROW_PAGES);
            grow(
                // SAFETY: the pool comes fresh from the page allocator, lies
                // in the linear map and is owned by the heap from now on.
                |pool, bytes| unsafe { allocator.add_memory(pool.addr().get(), bytes) },
                pages,
            )?;
            allocator.alloc(layout)
        }
        result => result,
    }
}

/// A pool the page allocator refused to take back: TLSF keeps it (nothing
/// is lost), and the refusal is logged once the heap lock is released.
#[derive(Clone, Copy)]
struct RefusedPool {
    addr: usize,
    pages: usize,
    error: AllocError,
}

/// Gives wholly free TLSF pools back while more than `keep` bytes sit
/// idle. A pool the page allocator refuses goes back into TLSF and ends
/// the loop.
fn trim_tlsf(tlsf: &mut Tlsf, keep: usize) -> Option<RefusedPool> {
    while tlsf.available_bytes() > keep {
        let (pool, bytes) = tlsf.take_free_pool()?;
        // SAFETY: the pool was taken from the page allocator by `grow` with
        // exactly this size, and TLSF no longer uses it.
        if let Err(error) = unsafe { GlobalPages.dealloc_pages(pool, bytes / PAGE_SIZE) } {
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
    }
    None
}

fn log_refused(refused: Option<RefusedPool>) {
    if let Some(pool) = refused {
        log::error!(
            "kernel heap: the page allocator refused the idle pool {:#x} ({} pages): {}; \
             the heap keeps it",
            pool.addr,
            pool.pages,
            pool.error
        );
    }
}

/// Allocates a block for `layout` (non-zero size): from the byte
/// allocator below a page, else whole pages recorded as a large block.
pub fn alloc(layout: Layout) -> AllocResult<NonNull<u8>> {
    debug_assert!(
        !crate::console::held_by_this_hart(),
        "kernel heap: allocation while printing ({} bytes)",
        layout.size()
    );
    let mut guard = HEAP.lock();
    let state = guard.as_mut().ok_or(AllocError::NoMemory)?;
    if goes_to_pages(layout) {
        return state.alloc_large(layout);
    }
    match &mut state.bytes {
        Heap::Slab { slab, .. } if slab_serves(layout) => slab.alloc(layout),
        Heap::Slab { tlsf, .. } | Heap::Tlsf(tlsf) => alloc_growing(tlsf, layout),
        Heap::Buddy(buddy) => alloc_growing(buddy, layout),
    }
}

/// Frees a block [`alloc`] returned for `layout`. A block the heap does
/// not hold as live with that layout is refused with an error, and
/// nothing changes.
///
/// # Safety
/// If `ptr` is a live block of the heap, the caller owns it and no longer
/// uses it.
pub unsafe fn dealloc(ptr: NonNull<u8>, layout: Layout) -> AllocResult {
    let mut guard = HEAP.lock();
    let state = guard.as_mut().ok_or(AllocError::OutOfRange)?;
    if goes_to_pages(layout) {
        return state.dealloc_large(ptr, layout);
    }
    // SAFETY: forwarded from the caller.
    let refused = unsafe {
        match &mut state.bytes {
            Heap::Slab { slab, .. } if slab_serves(layout) => {
                return slab.dealloc(ptr, layout);
            }
            Heap::Slab { tlsf, .. } | Heap::Tlsf(tlsf) => {
                tlsf.dealloc(ptr, layout)?;
                trim_tlsf(tlsf, KEEP_FREE_BYTES)
            }
            Heap::Buddy(buddy) => return buddy.dealloc(ptr, layout),
        }
    };
    drop(guard);
    log_refused(refused);
    Ok(())
}

/// The verdict [`dealloc`] would give for `ptr` and `layout`, without
/// freeing: `Ok` for a live block of this layout, else the same error.
///
/// # Safety
/// `ptr` was returned by [`alloc`] (it may have been freed since): the
/// byte allocators read their own metadata around it.
pub unsafe fn check_dealloc(ptr: NonNull<u8>, layout: Layout) -> AllocResult {
    let mut guard = HEAP.lock();
    let state = guard.as_mut().ok_or(AllocError::OutOfRange)?;
    if goes_to_pages(layout) {
        return state.large.check(ptr.addr().get(), pages_for(layout));
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        match &mut state.bytes {
            Heap::Slab { slab, .. } if slab_serves(layout) => slab.check_dealloc(ptr, layout),
            Heap::Slab { tlsf, .. } | Heap::Tlsf(tlsf) => tlsf.check_dealloc(ptr, layout),
            Heap::Buddy(buddy) => buddy.check_dealloc(ptr, layout),
        }
    }
}

impl HeapState {
    /// Whole pages for `layout`, recorded before they are handed out. Out
    /// of line: the byte allocators' path stays short.
    #[inline(never)]
    fn alloc_large(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        let count = pages_for(layout);
        self.large.reserve(&mut GlobalPages)?;
        let addr = match pages::alloc(count, layout.align().max(PAGE_SIZE)) {
            Ok(addr) => addr,
            Err(error) => {
                // A table taken for this block alone goes back with it.
                self.large.release(&mut GlobalPages);
                return Err(error);
            }
        };
        self.large.insert_reserved(addr, count);
        COUNTERS.large_pages.fetch_add(count, Ordering::Relaxed);
        NonNull::new(addr as *mut u8).ok_or(AllocError::NoMemory)
    }

    /// Gives a large block back, only if it is recorded with the page
    /// count of `layout`: the page allocator alone cannot tell it from a
    /// slab or pool that reuses its pages. Out of line, as `alloc_large`.
    #[inline(never)]
    fn dealloc_large(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let (addr, count) = (ptr.addr().get(), pages_for(layout));
        self.large.check(addr, count)?;
        pages::free(addr, count)?;
        self.large.remove(&mut GlobalPages, addr);
        COUNTERS.large_pages.fetch_sub(count, Ordering::Relaxed);
        Ok(())
    }
}

/// Gives every empty slab, idle TLSF pool and the empty large-block table
/// back to the page allocator.
pub fn shrink() {
    let mut guard = HEAP.lock();
    let Some(state) = guard.as_mut() else {
        return;
    };
    state.large.release(&mut GlobalPages);
    let refused = match &mut state.bytes {
        Heap::Slab { slab, tlsf } => {
            slab.shrink();
            trim_tlsf(tlsf, 0)
        }
        Heap::Tlsf(tlsf) => trim_tlsf(tlsf, 0),
        Heap::Buddy(_) => None,
    };
    drop(guard);
    log_refused(refused);
}

/// Memory failure: retires the slab holding linear-map address `addr`, if
/// one does (`memory::badmem`). Its objects are never handed out again; its
/// pages go back when its last object is freed.
pub fn retire_slab_at(addr: usize) -> bool {
    let Some(page) = NonNull::new(addr as *mut u8) else {
        return false;
    };
    match HEAP.lock().as_mut().map(|state| &mut state.bytes) {
        Some(Heap::Slab { slab, .. }) => slab.retire_slab_at(page),
        _ => false,
    }
}

/// Bytes the byte allocators hand out right now (their own accounting).
pub fn used_bytes() -> usize {
    let guard = HEAP.lock();
    match guard.as_ref().map(|state| &state.bytes) {
        Some(Heap::Slab { slab, tlsf }) => slab.used_bytes() + tlsf.used_bytes(),
        Some(Heap::Tlsf(tlsf)) => tlsf.used_bytes(),
        Some(Heap::Buddy(buddy)) => buddy.used_bytes(),
        None => 0,
    }
}

/// The largest block the byte allocator could hand out without growing
/// (TLSF exactly; the others by their free bytes).
pub fn largest_free_block() -> usize {
    let guard = HEAP.lock();
    match guard.as_ref().map(|state| &state.bytes) {
        Some(Heap::Slab { tlsf, .. }) | Some(Heap::Tlsf(tlsf)) => tlsf.largest_free_block(),
        Some(Heap::Buddy(buddy)) => {
            let mut counts = [0usize; 48];
            buddy.free_blocks_per_order(&mut counts);
            counts
                .iter()
                .rposition(|&n| n != 0)
                .map_or(0, |order| kalloc::byte::BUDDY_UNIT << order)
        }
        None => 0,
    }
}

/// Calls `f` with each slab cache's figures (`alloc=slab` only), under the
/// heap lock: `f` must not allocate.
pub fn for_each_slab_cache(mut f: impl FnMut(&kalloc::byte::SlabInfo)) {
    let guard = HEAP.lock();
    if let Some(Heap::Slab { slab, .. }) = guard.as_ref().map(|state| &state.bytes) {
        for info in slab.slabinfo() {
            f(&info);
        }
    }
}
