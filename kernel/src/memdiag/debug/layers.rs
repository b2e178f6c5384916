//! The two debug layers of `memdebug=`, the allocators they wrap, and the
//! entry points the global allocator and `memory::pages` call when the
//! layers are on.
//!
//! Each layer wraps a thin backend that forwards to the undecorated kernel
//! allocator: [`KernelHeap`] is what `GlobalAlloc` does without memdebug
//! (heap for small blocks, whole pages for large), [`PlainPages`] is the
//! boot-chosen page allocator under its own lock. The layers therefore
//! never recurse into themselves: the byte layer's large blocks and the
//! heap's growth go through `pages::alloc`, i.e. through the page layer.

use super::config::{DebugArgs, clock};
use crate::arch::{self, PAGE_SIZE};
use crate::memory::{global, heap, pages};
use crate::sync::IrqTicketLock;
use core::alloc::Layout;
use core::mem::{MaybeUninit, size_of};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use kalloc::{AllocError, AllocResult, BaseAllocator, ByteAllocator, PageAllocator};
use memdebug::{
    CallSite, DebugByteAllocator, DebugConfig, DebugPageAllocator, RecordSlot, ReportQueue,
};

/// The undecorated global allocator: `memory::heap`, which routes each
/// request to its byte allocator or to whole pages.
pub struct KernelHeap;

impl BaseAllocator for KernelHeap {
    /// The heap takes its memory from the page allocator itself; a region
    /// given here only tells the debug layer which addresses are RAM.
    unsafe fn add_memory(&mut self, _start: usize, _size: usize) -> AllocResult {
        Ok(())
    }
}

impl ByteAllocator for KernelHeap {
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        global::depot_alloc(layout)
    }

    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        // SAFETY: the debug layer frees only blocks it got from `alloc`
        // with this layout.
        unsafe { global::depot_dealloc(ptr, layout) }
    }

    fn total_bytes(&self) -> usize {
        pages::usage().1 * PAGE_SIZE
    }

    fn used_bytes(&self) -> usize {
        global::used_bytes()
            + crate::memory::counters::COUNTERS
                .large_pages
                .load(Ordering::Relaxed)
                * PAGE_SIZE
    }

    fn available_bytes(&self) -> usize {
        let (used, total) = pages::usage();
        (total - used) * PAGE_SIZE
    }
}

/// The boot-chosen page allocator, reached under its own lock.
pub struct PlainPages;

impl BaseAllocator for PlainPages {
    /// `pages::init` already gave every free range to the allocator; a
    /// region given here only tells the debug layer which pages it manages.
    unsafe fn add_memory(&mut self, _start: usize, _size: usize) -> AllocResult {
        Ok(())
    }
}

impl PageAllocator for PlainPages {
    const PAGE_SIZE: usize = PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        pages::alloc_plain(count, align)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        pages::alloc_at(addr, count, align)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        pages::free_plain(addr, count)
    }

    fn total_pages(&self) -> usize {
        pages::with(|a| a.total_pages())
    }

    fn used_pages(&self) -> usize {
        pages::with(|a| a.used_pages())
    }
}

/// Where a layer's reports wait while its lock is held: printing there
/// would close a deadlock with any hart that allocates while it holds the
/// console. [`with_bytes`] and [`with_pages`] emit them after unlocking.
pub type KernelSink = ReportQueue<4>;

pub type ByteLayer = DebugByteAllocator<'static, KernelHeap, KernelSink>;
pub type PageLayer = DebugPageAllocator<'static, PlainPages, KernelSink>;

/// The page layer, made `Send` for its static lock.
pub struct PageLayerCell(pub PageLayer);

// SAFETY: the page layer's records carry no pointers (page blocks are
// addresses, `inner` is always `None`); its tables are `'static` memory
// owned by the layer alone. Access is serialised by the lock.
unsafe impl Send for PageLayerCell {}

pub static BYTES: IrqTicketLock<Option<ByteLayer>> = IrqTicketLock::new("memdebug-bytes", None);
pub static DEBUG_PAGES: IrqTicketLock<Option<PageLayerCell>> =
    IrqTicketLock::new("memdebug-pages", None);

/// What [`install`] set up.
pub struct Tables {
    pub byte_capacity: usize,
    pub page_capacity: usize,
    pub pages: usize,
}

/// A layer's record table, its free history, and the pages they took.
type LayerTables = (
    &'static mut [MaybeUninit<RecordSlot>],
    &'static mut [MaybeUninit<usize>],
    usize,
);

/// Takes `slots` record slots and `history` history entries in pages from
/// the plain page allocator; they stay the layer's for good.
fn take_tables(slots: usize, history: usize) -> AllocResult<LayerTables> {
    let table_bytes = slots * size_of::<RecordSlot>();
    let history_bytes = history * size_of::<usize>();
    let count = (table_bytes + history_bytes).div_ceil(PAGE_SIZE);
    let base = pages::with(|a| a.alloc_pages(count, PAGE_SIZE))?;
    let table = base as *mut MaybeUninit<RecordSlot>;
    // SAFETY: the pages were just taken from the page allocator for good,
    // lie in the linear map, and are split into two disjoint slices of
    // `MaybeUninit` (any bytes are valid); `RecordSlot` needs at most page
    // alignment and the history starts at a multiple of 8 bytes.
    unsafe {
        let history_start = (base + table_bytes).next_multiple_of(align_of::<usize>());
        Ok((
            core::slice::from_raw_parts_mut(table, slots),
            core::slice::from_raw_parts_mut(history_start as *mut MaybeUninit<usize>, history),
            count,
        ))
    }
}

/// Byte-layer record slots: about one per two pages of RAM (a power of
/// two: the table uses the largest power-of-two prefix).
fn byte_slots(total_pages: usize) -> usize {
    (total_pages.next_power_of_two() / 2).clamp(4096, 1 << 17)
}

const PAGE_SLOTS: usize = 4096;

/// Builds both layers and registers every RAM range with them.
pub fn install(args: DebugArgs) -> AllocResult<Tables> {
    let (_, total_pages) = pages::usage();
    let slots = byte_slots(total_pages);
    let (byte_table, byte_history, byte_pages) = take_tables(slots, slots / 8)?;
    let (page_table, page_history, page_pages) = take_tables(PAGE_SLOTS, PAGE_SLOTS / 8)?;
    let mut byte_config = DebugConfig::bytes(args.flags);
    byte_config.track_threshold = args.track_threshold;
    let mut bytes = DebugByteAllocator::new(
        "kheap",
        KernelHeap,
        byte_config,
        KernelSink::new(),
        byte_table,
        byte_history,
        clock,
    );
    let mut page_layer = DebugPageAllocator::new(
        "pages",
        PlainPages,
        DebugConfig::pages(args.flags),
        KernelSink::new(),
        page_table,
        page_history,
        clock,
    );
    for free in crate::memory::layout::get().free.as_slice() {
        let start = arch::phys_to_virt(free.start() as usize);
        let size = free.size() as usize;
        // SAFETY: both backends ignore the range (the page allocator owns
        // it already); the layers only record it for range checks.
        unsafe {
            bytes.add_memory(start, size)?;
            page_layer.add_memory(start, size)?;
        }
    }
    let tables = Tables {
        byte_capacity: bytes.capacity(),
        page_capacity: PAGE_SLOTS / 8 * 7,
        pages: byte_pages + page_pages,
    };
    *BYTES.lock() = Some(bytes);
    *DEBUG_PAGES.lock() = Some(PageLayerCell(page_layer));
    Ok(tables)
}

/// Runs `f` on the byte layer, if installed; reports it raised are
/// emitted once the layer's lock is released.
pub fn with_bytes<R>(f: impl FnOnce(&mut ByteLayer) -> R) -> Option<R> {
    with_layer(&BYTES, f, ByteLayer::sink)
}

/// Runs `f` on the page layer, if installed; reports as in [`with_bytes`].
pub fn with_pages<R>(f: impl FnOnce(&mut PageLayer) -> R) -> Option<R> {
    with_layer(&DEBUG_PAGES, |cell| f(&mut cell.0), |cell| cell.0.sink())
}

/// Runs `f` on the layer behind `lock`, then takes the reports its `queue`
/// holds and publishes them after unlocking, with what the heap noticed
/// meanwhile (held back while the layer's lock was held).
fn with_layer<T, R>(
    lock: &IrqTicketLock<Option<T>>,
    f: impl FnOnce(&mut T) -> R,
    queue: impl FnOnce(&mut T) -> &mut KernelSink,
) -> Option<R> {
    let mut guard = lock.lock();
    let layer = guard.as_mut()?;
    let result = f(layer);
    let pending = take_reports(queue(layer));
    drop(guard);
    if let Some(reports) = pending {
        emit(reports);
    }
    heap::notice::report_deferred();
    Some(result)
}

/// The reports `queue` holds, if any (the common case is none: a load).
#[inline(always)]
fn take_reports(queue: &mut KernelSink) -> Option<KernelSink> {
    (!queue.is_empty()).then(|| core::mem::take(queue))
}

/// Publishes queued reports. Called with no allocator lock held.
#[cold]
#[inline(never)]
fn emit(mut queue: KernelSink) {
    let (reports, dropped) = queue.take();
    for report in reports {
        super::report::publish(&report);
    }
    if dropped > 0 {
        log::error!(target: super::MEMDEBUG, "{dropped} more reports of the same operation dropped");
    }
}

/// `GlobalAlloc::alloc` with the byte layer on: a KFENCE sample, or the
/// debug layer over the heap. `caller` is the return address
/// `GlobalAlloc::alloc` saw: the call site when no [`super::site`] scope
/// names one. Out of line and cold, so the off path stays a load and a
/// branch. A failure is reported by the global allocator.
#[cold]
#[inline(never)]
pub fn global_alloc(layout: Layout, caller: usize) -> AllocResult<NonNull<u8>> {
    let site = super::site::current().unwrap_or(CallSite::Code(caller));
    if super::kfence::take_sample(layout)
        && let Some(ptr) = super::kfence::alloc(layout, site)
    {
        return Ok(ptr);
    }
    with_bytes(|layer| layer.alloc_at(layer_layout(layout), site))
        .unwrap_or(Err(AllocError::NoMemory))
}

/// `GlobalAlloc::dealloc` with the byte layer on: a bad free is reported
/// and refused with an error (the block, if any, stays as it was).
/// Cold and out of line like [`global_alloc`].
///
/// # Safety
/// None beyond `GlobalAlloc::dealloc`'s, and a bad pointer is survivable:
/// the layer dereferences `ptr` only if it is a live block it handed out.
#[cold]
#[inline(never)]
pub unsafe fn global_dealloc(ptr: NonNull<u8>, layout: Layout, caller: usize) -> AllocResult {
    let site = super::site::current().unwrap_or(CallSite::Code(caller));
    if super::kfence::owns(ptr.addr().get()) {
        return super::kfence::free(ptr, layout, site);
    }
    // SAFETY: with checks on, the layer validates `ptr` against its table
    // before touching it (see `DebugByteAllocator::dealloc_at`).
    with_bytes(|layer| unsafe { layer.dealloc_at(ptr, layer_layout(layout), site) })
        .unwrap_or(Err(AllocError::OutOfRange))
}

/// The verdict [`global_dealloc`] would give, without freeing: `Ok` for a
/// live block of this layout, else the refusal, reported as a refused free
/// is.
pub fn check_free(ptr: NonNull<u8>, layout: Layout, site: CallSite) -> AllocResult {
    if super::kfence::owns(ptr.addr().get()) {
        return super::kfence::check_free(ptr, layout, site);
    }
    with_bytes(|layer| layer.check_dealloc_at(ptr, layer_layout(layout), site))
        .flatten()
        .unwrap_or(Err(AllocError::OutOfRange))
}

/// `pages::alloc` with the page layer on. A failure is reported by the
/// layer (with the page counts); the full OOM report belongs to the global
/// allocator, as callers of this one may hold the heap lock.
pub fn alloc_pages(count: usize, align: usize, site: CallSite) -> AllocResult<usize> {
    with_pages(|layer| layer.alloc_pages_from(count, align, site))
        .unwrap_or(Err(AllocError::NoMemory))
}

/// `pages::free` with the page layer on: a bad free is reported and
/// refused with an error.
pub fn dealloc_pages(addr: usize, count: usize, site: CallSite) -> AllocResult {
    with_pages(|layer| layer.dealloc_pages_from(addr, count, site))
        .unwrap_or(Err(AllocError::OutOfRange))
}

/// Gives every quarantined block back to the allocators (checking each);
/// counters that compare page usage before and after call it first.
#[cfg_attr(
    not(feature = "ktest"),
    expect(
        dead_code,
        reason = "API for kernel code; the in-kernel tests are its only user so far"
    )
)]
pub fn flush_quarantines() {
    flush_byte_quarantine();
    flush_page_quarantine();
}

/// Gives the byte layer's quarantine back to the heap and the page layer.
pub fn flush_byte_quarantine() {
    with_bytes(ByteLayer::flush_quarantine);
}

/// Gives the page layer's quarantine back to the page allocator.
pub fn flush_page_quarantine() {
    with_pages(PageLayer::flush_quarantine);
}

/// Pages the page allocator is asked for to serve `layout` through the
/// byte layer (the request as the OOM report states its order).
pub fn pages_needed(layout: Layout) -> usize {
    let layout = layer_layout(layout);
    let mut size = layout.size();
    if super::config::flags().contains(memdebug::DebugFlags::REDZONE) {
        let zone = DebugConfig::bytes(super::config::flags())
            .redzone
            .next_multiple_of(8);
        size += zone.next_multiple_of(layout.align()) + zone;
    }
    size.div_ceil(PAGE_SIZE)
}

/// The layout the byte layer is asked for: blocks of a page or more stay
/// page-aligned as without memdebug (their front red zone is then a whole
/// page, which also keeps an underflow off the previous block).
fn layer_layout(layout: Layout) -> Layout {
    if heap::goes_to_pages(layout) && layout.align() < PAGE_SIZE {
        Layout::from_size_align(layout.size(), PAGE_SIZE).unwrap_or(layout)
    } else {
        layout
    }
}

/// Checks every red zone of live byte blocks and the poison of every
/// quarantined block now; returns how many were damaged (each reported).
#[cfg_attr(
    not(feature = "ktest"),
    expect(
        dead_code,
        reason = "API for kernel code; the in-kernel tests are its only user so far"
    )
)]
pub fn validate() -> usize {
    with_bytes(ByteLayer::validate).unwrap_or(0) + with_pages(PageLayer::validate).unwrap_or(0)
}
