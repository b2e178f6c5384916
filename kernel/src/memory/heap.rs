//! The kernel heap's shared layer: the byte allocator chosen at boot
//! (`alloc=slab|tlsf|buddy`) that grows by taking pages from the page
//! allocator when it runs short, and whole pages for requests of a page or
//! more (or aligned beyond a page), recorded as large blocks. [`HeapState`]
//! is kheap's depot: the global allocator (`memory::global`) keeps it under
//! its lock and puts per-hart caches in front of it for the kmalloc
//! classes when the slab allocator serves them.
//!
//! ```text
//!   HeapState::alloc(layout)
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
//! The page allocator's lock nests inside the global allocator's (order:
//! heap, then pages); both mask interrupts. Nothing is printed under them:
//! a pool the page allocator refuses back is reported once the lock is
//! released (`kheap::Depot::report`). TLSF gives a wholly free pool back
//! once more than [`KEEP_FREE_BYTES`] sit idle; the slab allocator returns
//! empty slabs beyond its cache limit itself; the byte buddy keeps its
//! pools (kalloc has no pool removal for it).

use super::counters::COUNTERS;
use super::pages;
use crate::arch::PAGE_SIZE;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::str::FromStr;
use core::sync::atomic::{AtomicUsize, Ordering};
use kalloc::byte::{BuddyByteAllocator, LargeBlocks, ObjectProbe, PageSource, SlabAllocator, Tlsf};
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

/// What the global allocator's per-hart caches sit on (kheap's depot):
/// the byte allocator `alloc=` picked, the record of the large blocks
/// handed out as whole pages, and a refusal to report once the lock is
/// released. Only ever used under the global allocator's lock.
pub struct HeapState {
    bytes: Heap,
    large: LargeBlocks,
    refused: Option<RefusedPool>,
}

static KIND: AtomicUsize = AtomicUsize::new(0);

impl HeapState {
    /// The byte allocator for `kind`, empty: it grows from the page
    /// allocator on demand. Never inlined: the allocator is built on the
    /// stack (tens of KiB) and would otherwise stay in the boot function's
    /// frame under every test.
    #[inline(never)]
    pub fn new(kind: HeapKind) -> Self {
        let bytes = match kind {
            HeapKind::Slab => Heap::Slab {
                slab: SlabAllocator::new(GlobalPages),
                tlsf: Tlsf::new(),
            },
            HeapKind::Tlsf => Heap::Tlsf(Tlsf::new()),
            HeapKind::Buddy => Heap::Buddy(BuddyByteAllocator::new()),
        };
        let previous = KIND.swap(kind as usize + 1, Ordering::AcqRel);
        assert_eq!(previous, 0, "kernel heap created twice");
        Self {
            bytes,
            large: LargeBlocks::new(),
            refused: None,
        }
    }
}

/// The heap `alloc=` picked, once created.
pub fn kind() -> Option<HeapKind> {
    match KIND.load(Ordering::Acquire) {
        1 => Some(HeapKind::Slab),
        2 => Some(HeapKind::Tlsf),
        3 => Some(HeapKind::Buddy),
        _ => None,
    }
}

/// Whether `layout` bypasses the byte allocator: the one routing test of
/// the heap ([`HeapState`]'s `alloc` and `dealloc`, and every label that
/// names a path).
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
pub struct RefusedPool {
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

// SAFETY: blocks come from the byte allocator or are whole pages recorded
// in the large-block table, disjoint and fitting their layout; under
// `alloc=slab` the kmalloc classes (`slab_serves` covers every class
// layout) are served by the slab allocator whose probe and hull these are,
// and `alloc_objects` hands out its objects.
unsafe impl kheap::Depot for HeapState {
    type Notice = RefusedPool;

    fn take_notice(&mut self) -> Option<RefusedPool> {
        self.refused.take()
    }

    fn report(pool: RefusedPool) {
        log::error!(
            "kernel heap: the page allocator refused the idle pool {:#x} ({} pages): {}; \
             the heap keeps it",
            pool.addr,
            pool.pages,
            pool.error
        );
    }

    fn object_probe(&self) -> Option<ObjectProbe> {
        match &self.bytes {
            Heap::Slab { slab, .. } => Some(slab.object_probe()),
            _ => None,
        }
    }

    fn hull(&self) -> (usize, usize) {
        match &self.bytes {
            Heap::Slab { slab, .. } => slab.hull(),
            _ => (0, 0),
        }
    }

    /// From the byte allocator below a page, else whole pages recorded as
    /// a large block.
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        debug_assert!(
            !crate::console::held_by_this_hart(),
            "kernel heap: allocation while printing ({} bytes)",
            layout.size()
        );
        if goes_to_pages(layout) {
            return self.alloc_large(layout);
        }
        match &mut self.bytes {
            Heap::Slab { slab, .. } if slab_serves(layout) => ByteAllocator::alloc(slab, layout),
            Heap::Slab { tlsf, .. } | Heap::Tlsf(tlsf) => alloc_growing(tlsf, layout),
            Heap::Buddy(buddy) => alloc_growing(buddy, layout),
        }
    }

    /// A block the heap does not hold as live with that layout is refused
    /// with an error, and nothing changes.
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        if goes_to_pages(layout) {
            return self.dealloc_large(ptr, layout);
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            match &mut self.bytes {
                Heap::Slab { slab, .. } if slab_serves(layout) => {
                    ByteAllocator::dealloc(slab, ptr, layout)
                }
                Heap::Slab { tlsf, .. } | Heap::Tlsf(tlsf) => {
                    tlsf.dealloc(ptr, layout)?;
                    self.refused = trim_tlsf(tlsf, KEEP_FREE_BYTES);
                    Ok(())
                }
                Heap::Buddy(buddy) => buddy.dealloc(ptr, layout),
            }
        }
    }

    unsafe fn check_dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        if goes_to_pages(layout) {
            return self.large.check(ptr.addr().get(), pages_for(layout));
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            match &mut self.bytes {
                Heap::Slab { slab, .. } if slab_serves(layout) => slab.check_dealloc(ptr, layout),
                Heap::Slab { tlsf, .. } | Heap::Tlsf(tlsf) => tlsf.check_dealloc(ptr, layout),
                Heap::Buddy(buddy) => buddy.check_dealloc(ptr, layout),
            }
        }
    }

    fn alloc_objects(&mut self, class: usize, out: &mut [NonNull<u8>]) -> AllocResult<usize> {
        match &mut self.bytes {
            Heap::Slab { slab, .. } => slab.alloc_objects(class, out),
            _ => Err(AllocError::InvalidParam),
        }
    }

    unsafe fn free_objects(&mut self, class: usize, objects: &[NonNull<u8>]) -> AllocResult {
        match &mut self.bytes {
            // SAFETY: forwarded from the caller.
            Heap::Slab { slab, .. } => unsafe { slab.free_objects(class, objects) },
            _ => Err(AllocError::InvalidParam),
        }
    }

    /// Gives every empty slab, idle TLSF pool and the empty large-block
    /// table back to the page allocator.
    fn shrink(&mut self) {
        self.large.release(&mut GlobalPages);
        self.refused = match &mut self.bytes {
            Heap::Slab { slab, tlsf } => {
                slab.shrink();
                trim_tlsf(tlsf, 0)
            }
            Heap::Tlsf(tlsf) => trim_tlsf(tlsf, 0),
            Heap::Buddy(_) => None,
        };
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

    /// Memory failure: retires the slab holding linear-map address
    /// `addr`, if one does. Its objects are never handed out again by the
    /// slab allocator; its pages go back when its last object is freed.
    pub fn retire_slab_at(&mut self, addr: usize) -> bool {
        let Some(page) = NonNull::new(addr as *mut u8) else {
            return false;
        };
        match &mut self.bytes {
            Heap::Slab { slab, .. } => slab.retire_slab_at(page),
            _ => false,
        }
    }

    /// Bytes the byte allocators hand out (their own accounting: objects
    /// parked in the per-hart caches count as handed out).
    pub fn used_bytes(&self) -> usize {
        match &self.bytes {
            Heap::Slab { slab, tlsf } => slab.used_bytes() + tlsf.used_bytes(),
            Heap::Tlsf(tlsf) => tlsf.used_bytes(),
            Heap::Buddy(buddy) => buddy.used_bytes(),
        }
    }

    /// The largest block the byte allocator could hand out without
    /// growing (TLSF exactly; the byte buddy by its largest free order).
    pub fn largest_free_block(&self) -> usize {
        match &self.bytes {
            Heap::Slab { tlsf, .. } | Heap::Tlsf(tlsf) => tlsf.largest_free_block(),
            Heap::Buddy(buddy) => {
                let mut counts = [0usize; 48];
                buddy.free_blocks_per_order(&mut counts);
                counts
                    .iter()
                    .rposition(|&n| n != 0)
                    .map_or(0, |order| kalloc::byte::BUDDY_UNIT << order)
            }
        }
    }

    /// The slab caches' rows (`alloc=slab` only; none otherwise).
    pub fn slab_caches(&self) -> impl Iterator<Item = kalloc::byte::SlabInfo> + '_ {
        let slab = match &self.bytes {
            Heap::Slab { slab, .. } => Some(slab),
            _ => None,
        };
        slab.into_iter().flat_map(|slab| slab.slabinfo())
    }
}
