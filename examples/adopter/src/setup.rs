//! Boot-time composition: the arena is split between the cached heap's
//! own page allocator and a shared, locked one that page tables and the
//! debug heap draw from.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;

use kalloc::byte::{SlabAllocator, Tlsf};
use kalloc::page::BuddyPageAllocator;
use kalloc::{AllocError, BaseAllocator, PageAllocator};
use ksync::IrqSpinLock;
use memdebug::{DebugByteAllocator, DebugConfig, DebugFlags, RecordSlot, ReportQueue};
use sv39::{FrameSource, PageTable, PhysAddr};

use crate::OneHart;

const PAGE: usize = 4096;
/// Pages given to the cached heap; the rest are shared.
const HEAP_PAGES: usize = 64;

/// What the cached heap composes: the slab allocator over its own pages.
pub type HeapDepot = SlabAllocator<BuddyPageAllocator>;
/// The shared page allocator, masking interrupts while held.
pub type SharedPages = IrqSpinLock<BuddyPageAllocator, OneHart>;
/// A TLSF heap with every memdebug check on, its reports queued.
pub type DebugHeap = DebugByteAllocator<'static, Tlsf, ReportQueue<8>>;

/// Memory the kernel owns from boot: 256 pages, page-aligned.
#[repr(C, align(4096))]
pub struct Arena(UnsafeCell<[u8; 256 * PAGE]>);

// SAFETY: the arena is only handed out once, by `boot`, which takes it
// by `&'static mut`.
unsafe impl Sync for Arena {}

impl Arena {
    /// A zeroed arena (for a `static`).
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; 256 * PAGE]))
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

/// Page-table frames from the shared page allocator; physical addresses
/// are identity-mapped, as in a kernel before paging is on.
pub struct PageFrames(pub &'static SharedPages);

// SAFETY: frames come from the page allocator, so they are page-aligned,
// exclusively the table's, and identity-mapped (`phys_to_virt` is the
// identity over memory this process owns).
unsafe impl FrameSource for PageFrames {
    fn alloc_frame(&mut self) -> Option<PhysAddr> {
        let addr = self.0.lock().alloc_pages(1, 1).ok()?;
        PhysAddr::new(addr).ok()
    }

    unsafe fn dealloc_frame(&mut self, pa: PhysAddr) {
        self.0
            .lock()
            .dealloc_pages(pa.as_usize(), 1)
            .expect("a page-table frame returned twice");
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> *mut u8 {
        core::ptr::with_exposed_provenance_mut(pa.as_usize())
    }
}

/// What `boot` hands the rest of the kernel.
pub struct Kernel {
    /// The shared page allocator.
    pub pages: &'static SharedPages,
    /// The kernel's page table.
    pub table: PageTable<PageFrames>,
    /// A debugging heap for a subsystem under suspicion.
    pub debug_heap: DebugHeap,
}

/// Splits `arena` between `heap_depot` (returned for `CachedHeap::init`)
/// and the shared allocator in `pages`, and builds the page table and the
/// debug heap from the shared pages.
pub fn boot(
    arena: &'static mut Arena,
    pages: &'static SharedPages,
) -> Result<(Kernel, HeapDepot), AllocError> {
    let start = arena.0.get_mut().as_mut_ptr().expose_provenance();
    let size = core::mem::size_of::<Arena>();

    let mut heap_pages = BuddyPageAllocator::new();
    // SAFETY: the first HEAP_PAGES pages of the arena, owned from here on
    // by the heap's allocator alone.
    unsafe { heap_pages.init(start, HEAP_PAGES * PAGE)? };
    // SAFETY: the rest of the arena, disjoint from the heap's part.
    unsafe {
        pages
            .lock()
            .init(start + HEAP_PAGES * PAGE, size - HEAP_PAGES * PAGE)?
    };

    let table = PageTable::new(PageFrames(pages)).map_err(|_| AllocError::NoMemory)?;

    // The debug layer's tables and its pool come from the shared pages.
    let records = take_slice::<RecordSlot>(&mut pages.lock(), 4)?;
    let history = take_slice::<usize>(&mut pages.lock(), 1)?;
    let pool = pages.lock().alloc_pages(16, 1)?;
    let config = DebugConfig::bytes(DebugFlags::all());
    let mut debug_heap = DebugByteAllocator::new(
        "debug",
        Tlsf::new(),
        config,
        ReportQueue::new(),
        records,
        history,
        || 0,
    );
    // SAFETY: 16 pages just allocated for this heap alone.
    unsafe { debug_heap.init(pool, 16 * PAGE)? };

    let kernel = Kernel {
        pages,
        table,
        debug_heap,
    };
    Ok((kernel, SlabAllocator::new(heap_pages)))
}

/// `count` pages of the shared allocator as uninitialised `T`s, kept for
/// the kernel's lifetime.
fn take_slice<T>(
    pages: &mut BuddyPageAllocator,
    count: usize,
) -> Result<&'static mut [MaybeUninit<T>], AllocError> {
    let addr = pages.alloc_pages(count, 1)?;
    let ptr: *mut MaybeUninit<T> = core::ptr::with_exposed_provenance_mut(addr);
    // SAFETY: `count` fresh pages, page-aligned (enough for any `T` here),
    // never freed, so the slice is the caller's for good.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, count * PAGE / core::mem::size_of::<T>()) })
}
