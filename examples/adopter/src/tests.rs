//! The adopter's boot sequence, run on the host.

use core::alloc::{GlobalAlloc, Layout};
use std::boxed::Box;

use kalloc::{AllocError, ByteAllocator, PageAllocator};
use kheap::{CachedHeap, NoHooks};
use ksync::IrqSpinLock;
use memdebug::ReportKind;
use sv39::{PageSize, PhysAddr, PteFlags, VirtAddr};

use crate::setup::SharedPages;
use crate::{Arena, HeapDepot, OneHart, boot, irq_enabled};

/// One test, so the single "hart" is never shared between test threads.
#[test]
fn a_foreign_kernel_boots_on_the_public_api() {
    // A 1 MiB arena built on the heap, not the stack, then leaked.
    let layout = Layout::new::<Arena>();
    // SAFETY: a non-zero layout; all-zero bytes are a valid `Arena`.
    let arena = unsafe { &mut *std::alloc::alloc_zeroed(layout).cast::<Arena>() };
    let pages: &'static SharedPages = Box::leak(Box::new(IrqSpinLock::new(
        "pages",
        kalloc::page::BuddyPageAllocator::new(),
    )));
    let (mut kernel, depot) = boot(arena, pages).unwrap();
    assert!(irq_enabled(), "the page lock restored interrupts");

    // Pages: counted, refused when freed twice.
    let before = kernel.pages.lock().used_pages();
    let page = kernel.pages.lock().alloc_pages(2, 2).unwrap();
    assert_eq!(page % (2 * 4096), 0);
    assert_eq!(kernel.pages.lock().used_pages(), before + 2);
    kernel.pages.lock().dealloc_pages(page, 2).unwrap();
    assert!(kernel.pages.lock().dealloc_pages(page, 2).is_err());

    // Paging: a 4 KiB mapping reads back, then goes away.
    let va = VirtAddr::new(0xffff_ffc0_0000_0000).unwrap();
    let pa = PhysAddr::new(0x8020_0000).unwrap();
    kernel
        .table
        .map(va, pa, PageSize::Size4K, PteFlags::R | PteFlags::W)
        .unwrap();
    let found = kernel.table.translate(va).unwrap();
    assert_eq!((found.pa, found.size), (pa, PageSize::Size4K));
    kernel.table.unmap(va).unwrap();
    assert!(kernel.table.translate(va).is_err());

    // The debug heap refuses a double free and says so.
    let block = Layout::from_size_align(48, 8).unwrap();
    let ptr = kernel.debug_heap.alloc(block).unwrap();
    // SAFETY: allocated just above with `block`; the second free is the
    // mistake under test, which the layer refuses without touching memory.
    unsafe {
        kernel.debug_heap.dealloc(ptr, block).unwrap();
        assert_eq!(
            kernel.debug_heap.dealloc(ptr, block),
            Err(AllocError::DoubleFree)
        );
    }
    let (mut reports, dropped) = kernel.debug_heap.sink().take();
    assert_eq!(reports.next().map(|r| r.kind), Some(ReportKind::DoubleFree));
    assert_eq!(dropped, 0);

    // The cached heap: a GlobalAlloc, and exact about double frees.
    let heap: &'static CachedHeap<OneHart, HeapDepot, NoHooks, 1> =
        Box::leak(Box::new(CachedHeap::new("heap")));
    heap.init(depot);
    let small = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: a non-zero layout; the block is freed once below through
    // the same heap.
    let raw = unsafe { GlobalAlloc::alloc(heap, small) };
    let object = core::ptr::NonNull::new(raw).expect("the heap has memory");
    // SAFETY: allocated above; the second free is refused.
    unsafe {
        heap.dealloc(object, small).unwrap();
        assert_eq!(heap.dealloc(object, small), Err(AllocError::DoubleFree));
    }
    assert!(irq_enabled(), "the heap restored interrupts");
}
