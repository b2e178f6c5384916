//! TLSF-specific tests: exact error reporting, in-place realloc, pool
//! management, and regressions other TLSF implementations got wrong.

mod byte_common;

use std::alloc::Layout;

use byte_common::host::Arena;
use kalloc::byte::{TLSF_HEADER, TLSF_MIN_BLOCK, Tlsf};
use kalloc::{AllocError, BaseAllocator, ByteAllocator};

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn with_pool(size: usize) -> (Tlsf, Arena) {
    let arena = Arena::new(size);
    let mut tlsf = Tlsf::new();
    // SAFETY: the arena outlives every use of the allocator in each test.
    unsafe { tlsf.add_pool(arena.at(0), size).unwrap() };
    (tlsf, arena)
}

#[test]
fn pool_too_small_for_a_block_is_rejected() {
    let arena = Arena::new(4096);
    let mut tlsf = Tlsf::new();
    let smallest = TLSF_MIN_BLOCK + TLSF_HEADER;
    // SAFETY: the arena outlives the allocator.
    unsafe {
        assert_eq!(
            tlsf.add_pool(arena.at(0), smallest - 1),
            Err(AllocError::InvalidParam)
        );
        // Unaligned edges are trimmed: 1 byte in, the pool no longer fits.
        assert_eq!(
            tlsf.add_pool(arena.at(1), smallest),
            Err(AllocError::InvalidParam)
        );
        assert_eq!(tlsf.add_pool(arena.at(0), 0), Err(AllocError::InvalidParam));
        tlsf.add_pool(arena.at(0), smallest).unwrap();
    }
    assert_eq!(tlsf.total_bytes(), TLSF_MIN_BLOCK - TLSF_HEADER);
    let p = tlsf.alloc(layout(TLSF_MIN_BLOCK - TLSF_HEADER, 8)).unwrap();
    assert_eq!(tlsf.alloc(layout(1, 1)), Err(AllocError::NoMemory));
    // SAFETY: live block of this allocator.
    unsafe {
        tlsf.dealloc(p, layout(TLSF_MIN_BLOCK - TLSF_HEADER, 8))
            .unwrap()
    };
}

#[test]
fn overlapping_pools_are_rejected() {
    let arena = Arena::new(8192);
    let mut tlsf = Tlsf::new();
    // SAFETY: the arena outlives the allocator.
    unsafe {
        tlsf.add_pool(arena.at(1024), 2048).unwrap();
        assert_eq!(
            tlsf.add_pool(arena.at(0), 1025),
            Err(AllocError::MemoryOverlap)
        );
        assert_eq!(
            tlsf.add_pool(arena.at(3071), 100),
            Err(AllocError::MemoryOverlap)
        );
        assert_eq!(
            tlsf.add_pool(arena.at(1500), 10),
            Err(AllocError::MemoryOverlap)
        );
        tlsf.add_pool(arena.at(0), 1024).unwrap();
        tlsf.add_pool(arena.at(3072), 1024).unwrap();
    }
    assert_eq!(tlsf.pool_count(), 3);
}

#[test]
fn the_whole_pool_can_be_allocated_at_once() {
    for size in [4096, 4096 + 48, 100_000, 1 << 20] {
        let (mut tlsf, _arena) = with_pool(size);
        let all = tlsf.available_bytes();
        assert_eq!(all, tlsf.largest_free_block());
        // A good-fit search rounds `all` up past the only block; the
        // bounded exact-fit probe must still find it.
        let p = tlsf.alloc(layout(all, 8)).unwrap();
        assert_eq!(tlsf.used_bytes(), all);
        assert_eq!(tlsf.available_bytes(), 0);
        assert_eq!(tlsf.alloc(layout(1, 1)), Err(AllocError::NoMemory));
        // SAFETY: live block of this allocator.
        unsafe { tlsf.dealloc(p, layout(all, 8)).unwrap() };
        assert_eq!(tlsf.free_block_count(), 1);
    }
}

#[test]
fn header_overhead_and_minimum_block() {
    let (mut tlsf, _arena) = with_pool(4096);
    let a = tlsf.alloc(layout(1, 1)).unwrap();
    let b = tlsf.alloc(layout(1, 1)).unwrap();
    assert_eq!(tlsf.used_bytes(), 2 * (TLSF_MIN_BLOCK - TLSF_HEADER));
    assert_eq!(b.addr().get() - a.addr().get(), TLSF_MIN_BLOCK);
    let c = tlsf.alloc(layout(100, 8)).unwrap();
    assert_eq!(c.addr().get() - b.addr().get(), TLSF_MIN_BLOCK);
    assert_eq!(tlsf.used_bytes(), 2 * 16 + 112);
}

#[test]
fn aligned_allocations_leave_no_back_padding() {
    let (mut tlsf, _arena) = with_pool(1 << 20);
    let total = tlsf.total_bytes();
    let mut blocks = Vec::new();
    for align in [32, 64, 256, 4096, 65536] {
        let l = layout(100, align);
        let p = tlsf.alloc(l).unwrap();
        assert_eq!(p.addr().get() % align, 0);
        blocks.push((p, l));
    }
    // Every block is charged its rounded size only; padding went back.
    assert_eq!(tlsf.used_bytes(), 5 * 112);
    let free_blocks = tlsf.free_block_count();
    let headers = (free_blocks + blocks.len() - 1) * TLSF_HEADER;
    assert_eq!(tlsf.available_bytes() + tlsf.used_bytes() + headers, total);
    for (p, l) in blocks {
        // SAFETY: live blocks of this allocator.
        unsafe { tlsf.dealloc(p, l).unwrap() };
    }
    assert_eq!(tlsf.free_block_count(), 1);
    assert_eq!(tlsf.available_bytes(), total);
}

#[test]
fn page_and_larger_alignments_are_honoured() {
    let (mut tlsf, _arena) = with_pool(8 << 20);
    for shift in [12, 16, 20, 22] {
        let l = layout(24, 1 << shift);
        let p = tlsf.alloc(l).unwrap();
        assert_eq!(p.addr().get() % (1 << shift), 0);
        // SAFETY: live block.
        unsafe { tlsf.dealloc(p, l).unwrap() };
    }
    assert_eq!(tlsf.alloc(layout(24, 1 << 23)), Err(AllocError::NoMemory));
    assert_eq!(tlsf.free_block_count(), 1);
}

#[test]
fn bad_frees_report_exact_errors_and_change_nothing() {
    let (mut tlsf, arena) = with_pool(4096);
    let l = layout(64, 8);
    let a = tlsf.alloc(l).unwrap();
    let b = tlsf.alloc(l).unwrap();
    let c = tlsf.alloc(l).unwrap();
    let snapshot = (
        tlsf.used_bytes(),
        tlsf.available_bytes(),
        tlsf.free_block_count(),
    );
    let other = Arena::new(64);
    // SAFETY: bad frees, which the contract requires to be reported.
    unsafe {
        assert_eq!(tlsf.dealloc(other.at(0), l), Err(AllocError::OutOfRange));
        assert_eq!(tlsf.dealloc(b.add(1), l), Err(AllocError::NotAllocated));
        assert_eq!(tlsf.dealloc(b.add(16), l), Err(AllocError::NotAllocated));
        assert_eq!(
            tlsf.dealloc(b, layout(200, 8)),
            Err(AllocError::NotAllocated)
        );
        assert_eq!(tlsf.dealloc(b, layout(8, 8)), Err(AllocError::NotAllocated));
        // `b` is 32- but not 64-aligned: the alignment is not stored, only
        // checked against the address (best-effort, documented).
        assert_eq!(
            tlsf.dealloc(b, layout(64, 64)),
            Err(AllocError::NotAllocated)
        );
        assert_eq!(tlsf.dealloc(arena.at(0), l), Err(AllocError::NotAllocated));
        assert_eq!(
            tlsf.dealloc(arena.at(4080), l),
            Err(AllocError::NotAllocated)
        );
    }
    assert_eq!(
        snapshot,
        (
            tlsf.used_bytes(),
            tlsf.available_bytes(),
            tlsf.free_block_count()
        )
    );
    // SAFETY: live blocks, then double frees (reported).
    unsafe {
        tlsf.dealloc(b, l).unwrap();
        assert_eq!(tlsf.dealloc(b, l), Err(AllocError::DoubleFree));
        // `a` merges with the free `b`; its stale header still reads free.
        tlsf.dealloc(a, l).unwrap();
        assert_eq!(tlsf.dealloc(b, l), Err(AllocError::DoubleFree));
        assert_eq!(tlsf.dealloc(a, l), Err(AllocError::DoubleFree));
        tlsf.dealloc(c, l).unwrap();
    }
    assert_eq!(tlsf.free_block_count(), 1);
    assert_eq!(tlsf.used_bytes(), 0);
}

#[test]
fn realloc_grows_and_shrinks_in_place() {
    let (mut tlsf, _arena) = with_pool(8192);
    let p = tlsf.alloc(layout(100, 8)).unwrap();
    // SAFETY: `p` is live and 100 bytes long; each realloc returns the live block.
    unsafe {
        p.write_bytes(0xab, 100);
        let grown = tlsf.realloc(p, layout(100, 8), 3000).unwrap();
        assert_eq!(grown, p, "the free successor allows growing in place");
        assert_eq!(tlsf.used_bytes(), 3008);
        let shrunk = tlsf.realloc(grown, layout(3000, 8), 40).unwrap();
        assert_eq!(shrunk, p);
        assert_eq!(tlsf.used_bytes(), 48);
        assert!((0..40).all(|i| shrunk.add(i).read() == 0xab));
        let blocker = tlsf.alloc(layout(16, 8)).unwrap();
        let moved = tlsf.realloc(shrunk, layout(40, 8), 500).unwrap();
        assert_ne!(moved, p);
        assert!((0..40).all(|i| moved.add(i).read() == 0xab));
        assert_eq!(
            tlsf.realloc(moved, layout(500, 8), 0),
            Err(AllocError::InvalidParam)
        );
        tlsf.dealloc(moved, layout(500, 8)).unwrap();
        tlsf.dealloc(blocker, layout(16, 8)).unwrap();
    }
    assert_eq!(tlsf.free_block_count(), 1);
}

#[test]
fn pools_far_apart_never_overlap_and_free_pools_are_given_back() {
    let low = Arena::new(64 << 10);
    let gap = Arena::new(1 << 20);
    let high = Arena::new(64 << 10);
    let mut tlsf = Tlsf::new();
    // SAFETY: the arenas outlive the allocator; `add_memory` takes exposed
    // addresses, as a kernel passes them.
    unsafe {
        tlsf.add_memory(high.at(0).as_ptr().expose_provenance(), 64 << 10)
            .unwrap();
        tlsf.add_memory(low.at(0).as_ptr().expose_provenance(), 64 << 10)
            .unwrap();
    }
    drop(gap);
    let big = layout(60 << 10, 8);
    let a = tlsf.alloc(big).unwrap();
    let b = tlsf.alloc(big).unwrap();
    let (a0, b0) = (a.addr().get(), b.addr().get());
    assert!(a0 + big.size() <= b0 || b0 + big.size() <= a0);
    assert_eq!(tlsf.alloc(big), Err(AllocError::NoMemory));
    assert_eq!(tlsf.take_free_pool(), None);
    // SAFETY: live block.
    unsafe { tlsf.dealloc(a, big).unwrap() };
    let (pool, size) = tlsf.take_free_pool().expect("the pool of `a` is free");
    assert_eq!(size, 64 << 10);
    assert!(pool.addr().get() <= a0 && a0 < pool.addr().get() + size);
    assert_eq!(tlsf.pool_count(), 1);
    // SAFETY: bad free into the pool just given back.
    assert_eq!(unsafe { tlsf.dealloc(a, big) }, Err(AllocError::OutOfRange));
    // SAFETY: live block.
    unsafe { tlsf.dealloc(b, big).unwrap() };
    assert!(tlsf.take_free_pool().is_some());
    assert_eq!(
        (
            tlsf.pool_count(),
            tlsf.total_bytes(),
            tlsf.available_bytes()
        ),
        (0, 0, 0)
    );
}

#[test]
fn zero_size_and_impossible_requests() {
    let (mut tlsf, _arena) = with_pool(4096);
    assert_eq!(tlsf.alloc(layout(0, 1)), Err(AllocError::InvalidParam));
    assert_eq!(
        tlsf.alloc(layout(isize::MAX as usize - 64, 1)),
        Err(AllocError::NoMemory)
    );
    assert_eq!(tlsf.alloc(layout(8, 1 << 62)), Err(AllocError::NoMemory));
}
