//! Slab allocator tests: size classes and alignment, named caches and their
//! slabinfo counters, empty-slab retention, large requests, exact errors.

mod byte_common;

use std::alloc::Layout;
use std::ptr::NonNull;

use byte_common::host::{Arena, HostPages, PAGE};
use kalloc::byte::{KMALLOC_SIZES, MAX_EMPTY_SLABS, PageSource, SlabAllocator, SlabInfo};
use kalloc::{AllocError, ByteAllocator};

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn slab(pages: usize) -> SlabAllocator<HostPages> {
    SlabAllocator::new(HostPages::new(pages * PAGE))
}

fn row(slab: &SlabAllocator<HostPages>, name: &str) -> SlabInfo {
    slab.slabinfo().find(|r| r.name == name).unwrap()
}

#[test]
fn requests_land_in_the_smallest_fitting_class() {
    let mut s = slab(64);
    for (size, class) in [
        (1, 8),
        (8, 8),
        (9, 16),
        (65, 96),
        (96, 96),
        (97, 128),
        (129, 192),
        (1500, 2048),
    ] {
        let l = layout(size, 1);
        let before = s.used_bytes();
        let p = s.alloc(l).unwrap();
        assert_eq!(s.used_bytes() - before, class, "size {size}");
        // SAFETY: live object.
        unsafe { s.dealloc(p, l).unwrap() };
    }
    assert_eq!(KMALLOC_SIZES.first(), Some(&8));
    assert!(KMALLOC_SIZES.last().copied().unwrap() >= 2048);
}

#[test]
fn alignment_above_the_size_is_honoured() {
    // ArceOS's slab returned misaligned memory for small sizes with large
    // alignments; every one of these must come back aligned.
    let mut s = slab(256);
    let mut live = Vec::new();
    for align in [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 65536] {
        for size in [1, 8, 24, 100] {
            let l = layout(size, align);
            for _ in 0..3 {
                let p = s.alloc(l).unwrap();
                assert_eq!(p.addr().get() % align, 0, "size {size} align {align}");
                live.push((p, l));
            }
        }
    }
    for (p, l) in live {
        // SAFETY: live objects.
        unsafe { s.dealloc(p, l).unwrap() };
    }
    s.shrink();
    assert_eq!(s.source().available_pages(), 256);
}

#[test]
fn named_caches_count_like_slabinfo_and_keep_few_empty_slabs() {
    let mut s = slab(512);
    let task = s.create_cache("task", 200, 64).unwrap();
    let info = row(&s, "task");
    assert_eq!(
        info.object_size, 256,
        "200 rounded to the 64-byte alignment"
    );
    let per_slab = info.objects_per_slab;
    let objects: Vec<_> = (0..per_slab * 5)
        .map(|_| s.cache_alloc(task).unwrap())
        .collect();
    for p in &objects {
        assert_eq!(p.addr().get() % 64, 0);
    }
    let info = row(&s, "task");
    assert_eq!(
        (info.active_objects, info.total_objects),
        (per_slab * 5, per_slab * 5)
    );
    assert_eq!(
        (info.full_slabs, info.partial_slabs, info.empty_slabs),
        (5, 0, 0)
    );
    // SAFETY: live objects of `task`.
    unsafe { s.cache_free(task, objects[0]).unwrap() };
    let info = row(&s, "task");
    assert_eq!(
        (info.full_slabs, info.partial_slabs, info.active_objects),
        (4, 1, per_slab * 5 - 1)
    );
    let pages_before = s.source().available_pages();
    for p in &objects[1..] {
        // SAFETY: live objects of `task`.
        unsafe { s.cache_free(task, *p).unwrap() };
    }
    let info = row(&s, "task");
    assert_eq!(
        info.empty_slabs, MAX_EMPTY_SLABS,
        "surplus empty slabs went back at once"
    );
    assert_eq!(info.active_objects, 0);
    assert_eq!(
        s.source().available_pages(),
        pages_before + (5 - MAX_EMPTY_SLABS) * info.pages_per_slab
    );
    let text = format!("{}\n{info}", SlabInfo::TITLE);
    assert!(text.contains("task"), "{text}");
    s.destroy_cache(task).unwrap();
    assert!(s.slabinfo().all(|r| r.name != "task"));
    assert_eq!(s.source().available_pages(), 512);
}

#[test]
fn cache_misuse_is_reported() {
    let mut s = slab(64);
    let inode = s.create_cache("inode", 120, 8).unwrap();
    let dentry = s.create_cache("dentry", 120, 8).unwrap();
    assert_eq!(s.create_cache("zero", 0, 8), Err(AllocError::InvalidParam));
    assert_eq!(s.create_cache("odd", 8, 3), Err(AllocError::InvalidParam));
    assert_eq!(
        s.create_cache("huge", 1 << 30, 8),
        Err(AllocError::InvalidParam)
    );
    let p = s.cache_alloc(inode).unwrap();
    // SAFETY: deliberate misuse, reported; then a valid free.
    unsafe {
        assert_eq!(s.cache_free(dentry, p), Err(AllocError::NotAllocated));
        assert_eq!(s.destroy_cache(inode), Err(AllocError::NotAllocated));
        s.cache_free(inode, p).unwrap();
        assert_eq!(s.cache_free(inode, p), Err(AllocError::DoubleFree));
    }
    s.destroy_cache(inode).unwrap();
    assert_eq!(s.cache_alloc(inode), Err(AllocError::InvalidParam));
}

#[test]
fn bad_frees_report_exact_errors_and_change_nothing() {
    let mut s = slab(64);
    let l = layout(64, 8);
    let a = s.alloc(l).unwrap();
    let b = s.alloc(l).unwrap();
    let big = layout(3 * PAGE, 8);
    let large = s.alloc(big).unwrap();
    let snapshot = (s.used_bytes(), s.available_bytes());
    let other = Arena::new(64);
    // SAFETY: bad frees, which the contract requires to be reported.
    unsafe {
        assert_eq!(s.dealloc(other.at(0), l), Err(AllocError::OutOfRange));
        assert_eq!(s.dealloc(a.add(8), l), Err(AllocError::NotAllocated));
        assert_eq!(s.dealloc(a, layout(100, 8)), Err(AllocError::NotAllocated));
        assert_eq!(
            s.dealloc(b.add(64), l),
            Err(AllocError::NotAllocated),
            "never handed out"
        );
        assert_eq!(s.dealloc(large, l), Err(AllocError::NotAllocated));
        assert_eq!(
            s.dealloc(large, layout(2 * PAGE, 8)),
            Err(AllocError::NotAllocated)
        );
        assert_eq!(
            s.dealloc(large.add(PAGE), big),
            Err(AllocError::NotAllocated)
        );
    }
    assert_eq!(snapshot, (s.used_bytes(), s.available_bytes()));
    // SAFETY: valid frees, then double frees.
    unsafe {
        s.dealloc(a, l).unwrap();
        assert_eq!(s.dealloc(a, l), Err(AllocError::DoubleFree));
        s.dealloc(large, big).unwrap();
        assert_eq!(s.dealloc(large, big), Err(AllocError::NotAllocated));
        s.dealloc(b, l).unwrap();
    }
    s.shrink();
    assert_eq!(s.source().available_pages(), 64);
}

#[test]
fn interior_pointers_are_refused_and_told_from_double_frees() {
    // Object boundaries are checked by a multiply (96 and 192 are not
    // powers of two); a pointer into an object, even one that lands on a
    // 32- or 64-byte boundary, is `NotAllocated`, never a free.
    let mut s = slab(64);
    for size in [64, 96, 192] {
        let l = layout(size, 8);
        let objects: Vec<_> = (0..3).map(|_| s.alloc(l).unwrap()).collect();
        let snapshot = (s.used_bytes(), s.available_bytes());
        // SAFETY: bad frees, reported; then valid frees and a double free.
        unsafe {
            for offset in (8..size).step_by(8) {
                assert_eq!(
                    s.dealloc(objects[1].add(offset), l),
                    Err(AllocError::NotAllocated),
                    "size {size} offset {offset}"
                );
            }
            assert_eq!(snapshot, (s.used_bytes(), s.available_bytes()));
            s.dealloc(objects[1], l).unwrap();
            assert_eq!(s.dealloc(objects[1], l), Err(AllocError::DoubleFree));
            assert_eq!(
                s.dealloc(objects[1].add(32), l),
                Err(AllocError::NotAllocated)
            );
            s.dealloc(objects[0], l).unwrap();
            s.dealloc(objects[2], l).unwrap();
        }
    }
    s.shrink();
    assert_eq!(s.source().available_pages(), 64);
}

#[test]
fn double_frees_are_caught_on_the_magazine_and_on_the_slab_lists() {
    // Enough frees to fill the magazine, so later ones go back to their
    // slabs' free lists: a second free is `DoubleFree` wherever the object
    // sits, and a valid free of every other object still succeeds.
    let mut s = slab(64);
    let l = layout(64, 8);
    let per_slab = row(&s, "kmalloc-64").objects_per_slab;
    let objects: Vec<_> = (0..3 * per_slab).map(|_| s.alloc(l).unwrap()).collect();
    let (freed, kept) = objects.split_at(2 * per_slab);
    // SAFETY: live objects freed once, then each freed again (reported).
    unsafe {
        for &p in freed {
            s.dealloc(p, l).unwrap();
        }
        let snapshot = (s.used_bytes(), s.available_bytes());
        for &p in freed {
            assert_eq!(s.dealloc(p, l), Err(AllocError::DoubleFree));
        }
        assert_eq!(snapshot, (s.used_bytes(), s.available_bytes()));
        for &p in kept {
            s.dealloc(p, l).unwrap();
        }
    }
    s.shrink();
    assert_eq!(s.source().available_pages(), 64);
}

#[test]
fn live_objects_holding_pointers_free_normally() {
    // Kernel objects hold pointers to objects of their own cache (list
    // links): a first word like that must not make a free look double.
    let mut s = slab(64);
    let l = layout(32, 8);
    let objects: Vec<_> = (0..100).map(|_| s.alloc(l).unwrap()).collect();
    for (i, p) in objects.iter().enumerate() {
        let next = objects[(i + 1) % objects.len()];
        // SAFETY: a live object of 32 bytes.
        unsafe { p.cast::<*mut u8>().write(next.as_ptr()) };
    }
    // SAFETY: live objects, each freed once; then freed again (reported).
    unsafe {
        for &p in &objects {
            s.dealloc(p, l).unwrap();
        }
        for &p in &objects {
            assert_eq!(s.dealloc(p, l), Err(AllocError::DoubleFree));
        }
    }
    s.shrink();
    assert_eq!(s.source().available_pages(), 64);
}

#[test]
fn large_requests_go_to_the_page_source() {
    let mut s = slab(64);
    let l = layout(KMALLOC_SIZES[KMALLOC_SIZES.len() - 1] + 1, 8);
    let p = s.alloc(l).unwrap();
    assert_eq!(s.large_pages(), 1);
    assert_eq!(s.large_table_pages(), 1, "the table of large blocks");
    assert_eq!(s.source().available_pages(), 62);
    // SAFETY: `p` is live; realloc returns the live block.
    unsafe {
        p.write_bytes(7, l.size());
        let same = s.realloc(p, l, 4000).unwrap();
        assert_eq!(same, p, "same page count: in place");
        let moved = s.realloc(same, layout(4000, 8), 100).unwrap();
        assert_eq!(s.large_pages(), 0);
        assert!((0..100).all(|i| moved.add(i).read() == 7));
        let same = s.realloc(moved, layout(100, 8), 120).unwrap();
        assert_eq!(same, moved, "same class: in place");
        s.dealloc(same, layout(120, 8)).unwrap();
    }
    assert_eq!(s.used_bytes(), 0);
}

#[test]
fn running_out_of_pages_is_no_memory() {
    let mut s = slab(4);
    let l = layout(2048, 8);
    let mut live = Vec::new();
    loop {
        match s.alloc(l) {
            Ok(p) => live.push(p),
            Err(e) => {
                assert_eq!(e, AllocError::NoMemory);
                break;
            }
        }
    }
    assert!(!live.is_empty());
    for p in live {
        // SAFETY: live objects.
        unsafe { s.dealloc(p, l).unwrap() };
    }
    s.shrink();
    assert_eq!(s.source().available_pages(), 4);
}

/// One arena whose middle pages the source keeps for itself, as the
/// memory between two RAM regions, and says so through `contains`.
struct GappedPages {
    pages: HostPages,
    gap: std::ops::Range<usize>,
}

impl PageSource for GappedPages {
    const PAGE_SIZE: usize = PAGE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> kalloc::AllocResult<NonNull<u8>> {
        self.pages.alloc_pages(count, align)
    }

    unsafe fn dealloc_pages(&mut self, pages: NonNull<u8>, count: usize) -> kalloc::AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.pages.dealloc_pages(pages, count) }
    }

    fn available_pages(&self) -> usize {
        self.pages.available_pages()
    }

    fn contains(&self, addr: usize) -> Option<bool> {
        let (start, end) = self.pages.range();
        Some((start..end).contains(&addr) && !self.gap.contains(&addr))
    }
}

#[test]
fn a_free_into_a_gap_between_the_source_s_regions_is_out_of_range() {
    let mut pages = HostPages::new(64 * PAGE);
    let (start, _) = pages.range();
    let gap = start + 8 * PAGE..start + 16 * PAGE;
    pages.alloc_at(gap.start, 8).unwrap();
    let in_gap = pages.base().as_ptr().wrapping_add(10 * PAGE + 64);
    let mut s = SlabAllocator::new(GappedPages {
        pages,
        gap: gap.clone(),
    });
    let l = layout(2048, 8);
    // Slabs below the gap and above it: the hull of the slab's pages
    // spans the gap, so only the source can tell the gap apart.
    let mut live = Vec::new();
    while live.iter().all(|p: &NonNull<u8>| p.addr().get() < gap.end) {
        assert!(live.len() < 200, "no slab above the gap");
        live.push(s.alloc(l).unwrap());
    }
    assert!(live.iter().any(|p| p.addr().get() < gap.start));
    let used = s.used_bytes();
    let in_gap = NonNull::new(in_gap).unwrap();
    // SAFETY: a bad free on purpose; the allocator must refuse it untouched.
    assert_eq!(unsafe { s.dealloc(in_gap, l) }, Err(AllocError::OutOfRange));
    assert_eq!(s.used_bytes(), used);
    for p in live {
        // SAFETY: live objects, freed once.
        unsafe { s.dealloc(p, l).unwrap() };
    }
    assert_eq!(s.used_bytes(), 0);
}
