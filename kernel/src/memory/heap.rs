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
//! slabs and pools taken and given back (debug), refills and flushes
//! (trace) and a pool the page allocator refuses back (error) are recorded
//! in a [`notice::HeapNotice`] and logged once the lock is released
//! (`kheap::Depot::report`). TLSF gives a wholly free pool back
//! once more than [`KEEP_FREE_BYTES`] sit idle; the slab allocator returns
//! empty slabs beyond its cache limit itself; the byte buddy keeps its
//! pools (kalloc has no pool removal for it).

pub mod notice;
mod pools;

use super::counters::COUNTERS;
use super::pages;
use crate::arch::PAGE_SIZE;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::str::FromStr;
use core::sync::atomic::{AtomicUsize, Ordering};
use kalloc::byte::{BuddyByteAllocator, LargeBlocks, ObjectProbe, SlabAllocator, Tlsf};
use kalloc::{AllocError, AllocResult, ByteAllocator};
use notice::{Batch, HeapNotice};
pub use pools::GlobalPages;
use pools::{alloc_growing, trim_tlsf};

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
/// handed out as whole pages, and what to report once the lock is
/// released. Only ever used under the global allocator's lock.
pub struct HeapState {
    bytes: Heap,
    large: LargeBlocks,
    notice: HeapNotice,
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
                slab: SlabAllocator::new(GlobalPages::default()),
                tlsf: Tlsf::new(),
            },
            HeapKind::Tlsf => Heap::Tlsf(Tlsf::new()),
            HeapKind::Buddy => Heap::Buddy(BuddyByteAllocator::new()),
        };
        let previous = KIND.swap(kind as usize + 1, Ordering::AcqRel);
        assert_eq!(previous, 0, "kernel heap created twice");
        let pool_allocator = match kind {
            HeapKind::Slab | HeapKind::Tlsf => "tlsf",
            HeapKind::Buddy => "buddy",
        };
        Self {
            bytes,
            large: LargeBlocks::new(),
            notice: HeapNotice {
                pool_allocator,
                ..HeapNotice::default()
            },
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

// SAFETY: blocks come from the byte allocator or are whole pages recorded
// in the large-block table, disjoint and fitting their layout; under
// `alloc=slab` the kmalloc classes (`slab_serves` covers every class
// layout) are served by the slab allocator whose probe and hull these are,
// and `alloc_objects` hands out its objects.
unsafe impl kheap::Depot for HeapState {
    type Notice = HeapNotice;

    /// Collects the slab allocator's page moves into the notice; `None`
    /// (a few loads) when the operation moved nothing.
    fn take_notice(&mut self) -> Option<HeapNotice> {
        if let Heap::Slab { slab, .. } = &mut self.bytes {
            let moves = core::mem::take(&mut slab.source_mut().moves);
            self.notice.slabs = moves;
        }
        if self.notice.is_empty() {
            return None;
        }
        let pool_allocator = self.notice.pool_allocator;
        let mut notice = core::mem::replace(
            &mut self.notice,
            HeapNotice {
                pool_allocator,
                ..HeapNotice::default()
            },
        );
        notice.heap_pages = COUNTERS.heap_pages.load(Ordering::Relaxed);
        Some(notice)
    }

    fn report(notice: HeapNotice) {
        notice::report(notice);
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
        let pools = &mut self.notice.pools;
        match &mut self.bytes {
            Heap::Slab { slab, .. } if slab_serves(layout) => {
                self.notice.slab_class = kalloc::byte::kmalloc_class(layout);
                ByteAllocator::alloc(slab, layout)
            }
            Heap::Slab { tlsf, .. } | Heap::Tlsf(tlsf) => alloc_growing(tlsf, layout, pools),
            Heap::Buddy(buddy) => alloc_growing(buddy, layout, pools),
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
                    self.notice.slab_class = kalloc::byte::kmalloc_class(layout);
                    ByteAllocator::dealloc(slab, ptr, layout)
                }
                Heap::Slab { tlsf, .. } | Heap::Tlsf(tlsf) => {
                    tlsf.dealloc(ptr, layout)?;
                    self.notice.refused = trim_tlsf(tlsf, KEEP_FREE_BYTES, &mut self.notice.pools);
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
        let Heap::Slab { slab, .. } = &mut self.bytes else {
            return Err(AllocError::InvalidParam);
        };
        self.notice.slab_class = Some(class);
        let result = slab.alloc_objects(class, out);
        if let Ok(objects) = result
            && notice::tracing()
        {
            self.notice.batch = Some(Batch {
                refill: true,
                class,
                objects,
            });
        }
        result
    }

    unsafe fn free_objects(&mut self, class: usize, objects: &[NonNull<u8>]) -> AllocResult {
        let Heap::Slab { slab, .. } = &mut self.bytes else {
            return Err(AllocError::InvalidParam);
        };
        self.notice.slab_class = Some(class);
        // SAFETY: forwarded from the caller.
        let result = unsafe { slab.free_objects(class, objects) };
        if result.is_ok() && notice::tracing() {
            self.notice.batch = Some(Batch {
                refill: false,
                class,
                objects: objects.len(),
            });
        }
        result
    }

    /// Gives every empty slab, idle TLSF pool and the empty large-block
    /// table back to the page allocator.
    fn shrink(&mut self) {
        self.large.release(&mut GlobalPages::default());
        let pools = &mut self.notice.pools;
        self.notice.refused = match &mut self.bytes {
            Heap::Slab { slab, tlsf } => {
                self.notice.slab_class = None;
                slab.shrink();
                trim_tlsf(tlsf, 0, pools)
            }
            Heap::Tlsf(tlsf) => trim_tlsf(tlsf, 0, pools),
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
        self.large.reserve(&mut GlobalPages::default())?;
        let addr = match pages::alloc_untraced("pages", count, layout.align().max(PAGE_SIZE)) {
            Ok(addr) => addr,
            Err(error) => {
                // A table taken for this block alone goes back with it.
                self.large.release(&mut GlobalPages::default());
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
        pages::free_untraced(addr, count)?;
        self.large.remove(&mut GlobalPages::default(), addr);
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
