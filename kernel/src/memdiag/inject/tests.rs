//! Every allocating path handles an injected failure: page-table
//! construction rolls back for each failing frame allocation (fail-nth
//! walked over the whole build), a heap refill failure leaves the heap
//! usable, failslab fails only the chosen cache, and the global allocator
//! turns an injected failure into an error its fallible APIs return.

use super::*;
use crate::arch::{self, PAGE_SIZE};
use crate::ktest::prelude::*;
use crate::memory::global::try_box;
use crate::memory::{heap, pages};
use alloc::vec::Vec;
use sv39::{FrameSource, PageTable, PhysAddr, PteFlags, VirtAddr};

/// Turns every injection off when a test ends, passed or failed.
struct Disarm;

impl Drop for Disarm {
    fn drop(&mut self) {
        disarm_all();
    }
}

/// Page-table frames requested as `pagetable`, so the test's fail-nth
/// counts only them.
struct TableFrames;

// SAFETY: frames come from the page allocator (4 KiB aligned, owned until
// freed) and the linear map reaches all of RAM read-write.
unsafe impl FrameSource for TableFrames {
    fn alloc_frame(&mut self) -> Option<PhysAddr> {
        let virt = pages::alloc_for("pagetable", 1, PAGE_SIZE).ok()?;
        PhysAddr::new(arch::virt_to_phys(virt)).ok()
    }

    unsafe fn dealloc_frame(&mut self, pa: PhysAddr) {
        pages::free(arch::phys_to_virt(pa.as_usize()), 1)
            .expect("a table frame this test allocated");
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> *mut u8 {
        arch::phys_to_virt(pa.as_usize()) as *mut u8
    }
}

/// Four 4 KiB pages straddling the 1 GiB boundary: two level-1 and two
/// level-0 tables below the root, five frames in all.
const RANGE_VA: usize = (1 << 30) - 2 * PAGE_SIZE;
const RANGE_LEN: usize = 4 * PAGE_SIZE;
const RANGE_PA: usize = 0x8000_1000;
const TABLE_FRAMES: u64 = 5;

#[allow(
    clippy::result_large_err,
    reason = "the ktest failure type, as every test returns"
)]
/// Builds a table and maps the range; `Ok(true)` if it all worked,
/// `Ok(false)` if an allocation failed and nothing was left behind.
fn build_table() -> Result<bool, crate::ktest::Failure> {
    let Ok(mut table) = PageTable::new(TableFrames) else {
        return Ok(false);
    };
    let with_root = pages::usage().0;
    let va = VirtAddr::new(RANGE_VA).expect("canonical");
    let pa = PhysAddr::new(RANGE_PA).expect("valid");
    let flags = PteFlags::R | PteFlags::W | PteFlags::A | PteFlags::D;
    match table.map_range(va, pa, RANGE_LEN, flags) {
        Ok(stats) => {
            kassert_eq!(stats.pages_4k, 4);
            let last = VirtAddr::new(RANGE_VA + RANGE_LEN - PAGE_SIZE).expect("canonical");
            kassert!(table.translate(last).is_ok(), "last page not mapped");
            Ok(true)
        }
        Err(_) => {
            crate::memdiag::debug::flush_quarantines();
            kassert_eq!(
                pages::usage().0,
                with_root,
                "failed map_range left table pages behind"
            );
            kassert!(
                table.translate(va).is_err(),
                "failed map_range left a mapping"
            );
            Ok(false)
        }
    }
}

ktest! {
    fn page_table_construction_rolls_back_when_any_frame_allocation_fails() {
        let _disarm = Disarm;
        let baseline = pages::usage().0;
        let mut nth = 1;
        loop {
            configure(Site::Pages, FaultConfig { filter: "pagetable", ..FaultConfig::OFF });
            set_fail_nth(Site::Pages, nth);
            let built = build_table()?;
            let fired = !fail_nth_pending(Site::Pages);
            disarm_all();
            // With `memdebug=` on, freed table pages wait in quarantine.
            crate::memdiag::debug::flush_quarantines();
            kassert_eq!(pages::usage().0, baseline, "fail-nth {nth}: table pages leaked");
            if !fired {
                kassert!(built, "no failure injected, yet the build failed");
                break;
            }
            kassert!(!built, "fail-nth {nth} fired, yet the build reported success");
            nth += 1;
            kassert!(nth <= 16, "the build never ran out of allocations to fail");
        }
        kassert_eq!(nth - 1, TABLE_FRAMES, "frame allocations in the build");
        Ok(())
    }
}

/// Pages used, heap counters and the heap's own accounting.
fn heap_state() -> [usize; 5] {
    crate::memdiag::shrink();
    let pages_used = pages::usage().0;
    let heap_pages = crate::memory::counters::COUNTERS
        .heap_pages
        .load(Ordering::Relaxed);
    // The byte buddy keeps every pool it grew (kalloc cannot detach one).
    let pages_used = if heap::kind() == Some(HeapKind::Buddy) {
        pages_used - heap_pages
    } else {
        pages_used
    };
    [
        pages_used,
        crate::memory::global::stats().live_blocks() as usize,
        crate::memory::global::stats().live_bytes(),
        crate::memory::global::used_bytes(),
        crate::memory::counters::COUNTERS
            .large_pages
            .load(Ordering::Relaxed),
    ]
}

/// A chain of heap objects linked through their first word, the rest
/// filled with a pattern of their index.
struct Chain {
    head: *mut u8,
    len: usize,
    layout: Layout,
}

impl Chain {
    fn new(layout: Layout) -> Self {
        Chain {
            head: core::ptr::null_mut(),
            len: 0,
            layout,
        }
    }

    /// Allocates one more object; false if the allocator refused.
    fn grow(&mut self) -> bool {
        // SAFETY: the layout is non-zero sized.
        let object = unsafe { alloc::alloc::alloc(self.layout) };
        if object.is_null() {
            return false;
        }
        // SAFETY: a fresh object of `layout.size()` bytes (>= 16).
        unsafe {
            object.cast::<*mut u8>().write(self.head);
            core::ptr::write_bytes(object.add(8), self.len as u8, self.layout.size() - 8);
        }
        self.head = object;
        self.len += 1;
        true
    }

    /// Checks every object's pattern and frees them all; the number of
    /// damaged objects.
    fn free_all(&mut self) -> usize {
        let mut damaged = 0;
        while !self.head.is_null() {
            self.len -= 1;
            let object = self.head;
            // SAFETY: a live object of this chain, filled by `grow`.
            unsafe {
                self.head = object.cast::<*mut u8>().read();
                let body = core::slice::from_raw_parts(object.add(8), self.layout.size() - 8);
                damaged += usize::from(body.iter().any(|&b| b != self.len as u8));
                alloc::alloc::dealloc(object, self.layout);
            }
        }
        damaged
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.free_all();
    }
}

ktest! {
    fn a_heap_refill_that_fails_leaves_the_heap_consistent() {
        let _disarm = Disarm;
        let before = heap_state();
        let injected_before = injected(Site::Pages);
        let failures_before = crate::memory::global::stats().failures;
        let mut chain = Chain::new(Layout::from_size_align(200, 8).expect("valid"));
        // Every page request of the heap (a slab refill, or a TLSF/buddy
        // pool) fails until the first allocation is refused: the global
        // allocator drains the harts' caches and retries once before it
        // gives up, and that retry may be served without a page.
        configure(
            Site::Pages,
            FaultConfig { probability: 100, times: -1, filter: "heap", ..FaultConfig::OFF },
        );
        let mut refused = false;
        for _ in 0..100_000 {
            if !chain.grow() {
                refused = true;
                break;
            }
        }
        disarm_all();
        kassert!(refused, "100000 objects without a refill");
        kassert!(injected(Site::Pages) > injected_before, "no page request was failed");
        kassert_eq!(crate::memory::global::stats().failures, failures_before + 1);
        // The same request works now, and so do many more.
        for _ in 0..500 {
            kassert!(chain.grow(), "allocation after the failed refill refused");
        }
        let objects = chain.len;
        let damaged = chain.free_all();
        kassert_eq!(damaged, 0, "objects damaged among {objects}");
        kassert_eq!(heap_state(), before, "[pages used, live blocks, live bytes, heap used bytes, large pages]");
        Ok(())
    }
}

ktest! {
    fn failslab_fails_only_the_chosen_cache_and_only_times_often() {
        let _disarm = Disarm;
        let kind = heap::kind().expect("heap initialised");
        let chosen = Layout::from_size_align(40, 8).expect("valid");
        let other = Layout::from_size_align(700, 8).expect("valid");
        let name = cache_name(kind, chosen);
        let separate = cache_name(kind, other) != name;
        let before = heap_state();
        configure(
            Site::Slab,
            FaultConfig { probability: 100, interval: 1, times: 3, filter: name, ..FaultConfig::OFF },
        );
        let (mut small, mut large) = (Chain::new(chosen), Chain::new(other));
        let small_refused = (0..10).filter(|_| !small.grow()).count();
        let large_refused = (0..10).filter(|_| !large.grow()).count();
        disarm_all();
        kassert_eq!(small_refused, 3, "failslab times=3 on {name}");
        if separate {
            kassert_eq!(large_refused, 0, "{} is not {name}", cache_name(kind, other));
        }
        kassert_eq!(small.free_all() + large.free_all(), 0, "damaged objects");
        kassert_eq!(heap_state(), before);
        Ok(())
    }
}

ktest! {
    fn injected_failures_reach_fallible_callers_and_the_oom_diagnosis() {
        let _disarm = Disarm;
        let before = heap_state();
        let failures_before = crate::memory::global::stats().failures;
        set_fail_nth(Site::Slab, 1);
        kassert!(try_box([7u64; 8]).is_err(), "try_box under failslab fail-nth succeeded");
        // Every page request fails (the global allocator retries once
        // after reclaiming) until disarmed.
        configure(Site::Pages, FaultConfig { probability: 100, times: -1, ..FaultConfig::OFF });
        let mut large: Vec<u8> = Vec::new();
        let reserved = large.try_reserve_exact(3 * PAGE_SIZE);
        disarm_all();
        kassert!(reserved.is_err(), "try_reserve under fail_page_alloc succeeded");
        kassert_eq!(crate::memory::global::stats().failures, failures_before + 2);
        crate::println!();
        crate::memory::global::print_failure_diagnosis();
        // Both work once the injection is off.
        kassert!(try_box([7u64; 8]).is_ok_and(|b| b[7] == 7));
        kassert!(large.try_reserve_exact(3 * PAGE_SIZE).is_ok());
        drop(large);
        kassert_eq!(heap_state(), before);
        Ok(())
    }
}

ktest! {
    fn fault_injection_boot_arguments_parse_and_bad_ones_are_refused() {
        let args = crate::args::parse("fail_page_alloc=1,10,0,-1,2 fail_page_alloc.filter=heap failslab=2,100,4096,5")
            .map_err(|_| crate::ktest::Failure::new(format_args!("valid arguments refused")))?;
        let pages = args.fail_page_alloc.expect("fail_page_alloc given");
        kassert_eq!((pages.interval, pages.probability, pages.times, pages.min_order, pages.filter), (1, 10, -1, 2, "heap"));
        let slab = args.failslab.expect("failslab given");
        kassert_eq!((slab.interval, slab.probability, slab.space, slab.times), (2, 100, 4096, 5));
        for bad in ["fail_page_alloc=1,101,0,1", "failslab=0,1,0,1", "failslab=1,1", "failslab.filter=x", "fail_page_alloc"] {
            kassert!(crate::args::parse(bad).is_err(), "`{bad}` accepted");
        }
        Ok(())
    }
}
