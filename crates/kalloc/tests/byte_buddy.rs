//! Buddy byte allocator tests: exact errors from the start bitmaps, order
//! rounding (the internal-fragmentation reference), in-place realloc.

mod byte_common;

use std::alloc::Layout;

use byte_common::host::Arena;
use kalloc::byte::{BUDDY_UNIT, BuddyByteAllocator};
use kalloc::{AllocError, ByteAllocator};

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn with_pool(size: usize) -> (BuddyByteAllocator, Arena) {
    let arena = Arena::new(size);
    let mut buddy = BuddyByteAllocator::new();
    // SAFETY: the arena outlives every use of the allocator in each test.
    unsafe { buddy.add_pool(arena.at(0), size).unwrap() };
    (buddy, arena)
}

#[test]
fn tiny_pools_are_rejected_and_overlaps_refused() {
    let arena = Arena::new(4096);
    let mut buddy = BuddyByteAllocator::new();
    // SAFETY: the arena outlives the allocator.
    unsafe {
        assert_eq!(
            buddy.add_pool(arena.at(0), 16),
            Err(AllocError::InvalidParam)
        );
        assert_eq!(
            buddy.add_pool(arena.at(3), 20),
            Err(AllocError::InvalidParam)
        );
        buddy.add_pool(arena.at(0), 32).unwrap();
        assert_eq!(buddy.total_bytes(), BUDDY_UNIT);
        assert_eq!(
            buddy.add_pool(arena.at(16), 64),
            Err(AllocError::MemoryOverlap)
        );
        buddy.add_pool(arena.at(1000), 3000).unwrap();
    }
    assert_eq!(buddy.pool_count(), 2);
}

#[test]
fn sizes_round_to_powers_of_two_of_the_unit() {
    let (mut buddy, _arena) = with_pool(1 << 16);
    for (size, charged) in [
        (1, 16),
        (16, 16),
        (17, 32),
        (100, 128),
        (1000, 1024),
        (1025, 2048),
    ] {
        let before = buddy.used_bytes();
        let l = layout(size, 1);
        let p = buddy.alloc(l).unwrap();
        assert_eq!(buddy.used_bytes() - before, charged);
        assert_eq!(p.addr().get() % charged, 0, "blocks are naturally aligned");
        // SAFETY: live block.
        unsafe { buddy.dealloc(p, l).unwrap() };
    }
    let aligned = layout(8, 4096);
    let p = buddy.alloc(aligned).unwrap();
    assert_eq!(p.addr().get() % 4096, 0);
    assert_eq!(
        buddy.used_bytes(),
        4096,
        "alignment above the size costs its order"
    );
    // SAFETY: live block.
    unsafe { buddy.dealloc(p, aligned).unwrap() };
}

#[test]
fn filling_the_pool_block_by_block_uses_all_of_it() {
    let (mut buddy, _arena) = with_pool(100_000);
    let total = buddy.total_bytes();
    let mut blocks = Vec::new();
    let mut size = 1 << 16;
    while size >= BUDDY_UNIT {
        match buddy.alloc(layout(size, 1)) {
            Ok(p) => blocks.push((p, layout(size, 1))),
            Err(AllocError::NoMemory) => size /= 2,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(buddy.used_bytes(), total);
    assert_eq!(buddy.available_bytes(), 0);
    for (p, l) in blocks.into_iter().rev() {
        // SAFETY: live blocks.
        unsafe { buddy.dealloc(p, l).unwrap() };
    }
    assert_eq!(buddy.available_bytes(), total);
}

#[test]
fn bad_frees_report_exact_errors_and_change_nothing() {
    let (mut buddy, arena) = with_pool(4096);
    let l = layout(64, 8);
    let a = buddy.alloc(l).unwrap();
    let b = buddy.alloc(l).unwrap();
    let keep = buddy.alloc(l).unwrap();
    let snapshot = (
        buddy.used_bytes(),
        buddy.available_bytes(),
        buddy.free_block_count(),
    );
    let other = Arena::new(64);
    // SAFETY: bad frees, which the contract requires to be reported.
    unsafe {
        assert_eq!(buddy.dealloc(other.at(0), l), Err(AllocError::OutOfRange));
        assert_eq!(buddy.dealloc(a.add(16), l), Err(AllocError::NotAllocated));
        assert_eq!(
            buddy.dealloc(a, layout(128, 8)),
            Err(AllocError::NotAllocated)
        );
        assert_eq!(
            buddy.dealloc(a, layout(32, 8)),
            Err(AllocError::NotAllocated)
        );
        assert_eq!(buddy.dealloc(arena.at(0), l), Err(AllocError::NotAllocated));
        // The pool starts with 64 bytes of bitmaps; the 256-byte block at
        // offset 256 is free.
        assert_eq!(buddy.dealloc(arena.at(256), l), Err(AllocError::DoubleFree));
    }
    assert_eq!(
        snapshot,
        (
            buddy.used_bytes(),
            buddy.available_bytes(),
            buddy.free_block_count()
        )
    );
    // SAFETY: live blocks, then double frees (reported).
    unsafe {
        buddy.dealloc(b, l).unwrap();
        assert_eq!(buddy.dealloc(b, l), Err(AllocError::DoubleFree));
        // `keep` is `b`'s buddy: freeing it merges the two.
        buddy.dealloc(keep, l).unwrap();
        assert_eq!(buddy.dealloc(keep, l), Err(AllocError::NotAllocated));
        assert_eq!(buddy.dealloc(b, l), Err(AllocError::DoubleFree));
        buddy.dealloc(a, l).unwrap();
    }
    assert_eq!(buddy.used_bytes(), 0);
}

#[test]
fn realloc_splits_and_merges_in_place() {
    let (mut buddy, _arena) = with_pool(1 << 16);
    let initial_blocks = buddy.free_block_count();
    let p = buddy.alloc(layout(100, 8)).unwrap();
    // SAFETY: `p` is live; each realloc returns the live block.
    unsafe {
        p.write_bytes(0x5a, 100);
        let grown = buddy.realloc(p, layout(100, 8), 1000).unwrap();
        assert_eq!(grown, p);
        assert_eq!(buddy.used_bytes(), 1024);
        let shrunk = buddy.realloc(grown, layout(1000, 8), 20).unwrap();
        assert_eq!(shrunk, p);
        assert_eq!(buddy.used_bytes(), 32);
        let neighbour = buddy.alloc(layout(32, 8)).unwrap();
        assert_eq!(neighbour.addr().get(), p.addr().get() + 32);
        let moved = buddy.realloc(shrunk, layout(20, 8), 64).unwrap();
        assert_ne!(moved, p);
        assert!((0..20).all(|i| moved.add(i).read() == 0x5a));
        buddy.dealloc(moved, layout(64, 8)).unwrap();
        buddy.dealloc(neighbour, layout(32, 8)).unwrap();
    }
    assert_eq!(buddy.free_block_count(), initial_blocks);
}
