//! Buddy byte allocator tests: exact errors from the tags, order
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
        // The pool starts with 240 bytes of tags (240 units) and 16 bytes
        // of slack; the three blocks came from the 256-byte block at
        // offset 256, and the 512-byte block at offset 512 is free.
        assert_eq!(buddy.dealloc(arena.at(512), l), Err(AllocError::DoubleFree));
    }
    assert_eq!(
        snapshot,
        (
            buddy.used_bytes(),
            buddy.available_bytes(),
            buddy.free_block_count()
        )
    );
    // Two of the three blocks are buddies (split off one 128-byte block).
    let mut blocks = [a, b, keep];
    blocks.sort();
    let pair = blocks
        .windows(2)
        .position(|w| w[0].addr().get() ^ 64 == w[1].addr().get())
        .expect("two of three consecutive 64-byte blocks are buddies");
    let (lower, upper) = (blocks[pair], blocks[pair + 1]);
    let other = blocks[if pair == 0 { 2 } else { 0 }];
    // SAFETY: live blocks, then double frees (reported).
    unsafe {
        buddy.dealloc(lower, l).unwrap();
        assert_eq!(buddy.dealloc(lower, l), Err(AllocError::DoubleFree));
        // Freeing the upper buddy merges the two: its start is now inside
        // a free block, while the lower start is that block's start.
        buddy.dealloc(upper, l).unwrap();
        assert_eq!(buddy.dealloc(upper, l), Err(AllocError::NotAllocated));
        assert_eq!(buddy.dealloc(lower, l), Err(AllocError::DoubleFree));
        buddy.dealloc(other, l).unwrap();
    }
    assert_eq!(buddy.used_bytes(), 0);
}

#[test]
fn realloc_splits_and_merges_in_place() {
    let (mut buddy, _arena) = with_pool(1 << 16);
    let initial_blocks = buddy.free_block_count();
    let free_512_blocks = |buddy: &BuddyByteAllocator| {
        let mut counts = [0; 6];
        buddy.free_blocks_per_order(&mut counts);
        counts[5]
    };
    // The first 128-byte block split off a block of 1 KiB or more (a new
    // free 512-byte half shows it) has free upper buddies up to 1 KiB;
    // the blocks before it (left over by the carving) stay allocated.
    let mut fillers = Vec::new();
    let p = loop {
        let before = free_512_blocks(&buddy);
        let block = buddy.alloc(layout(100, 8)).unwrap();
        if free_512_blocks(&buddy) > before {
            break block;
        }
        fillers.push(block);
    };
    let base = buddy.used_bytes() - 128;
    // SAFETY: `p` is live; each realloc returns the live block.
    unsafe {
        p.write_bytes(0x5a, 100);
        let grown = buddy.realloc(p, layout(100, 8), 1000).unwrap();
        assert_eq!(grown, p);
        assert_eq!(buddy.used_bytes() - base, 1024);
        let shrunk = buddy.realloc(grown, layout(1000, 8), 20).unwrap();
        assert_eq!(shrunk, p);
        assert_eq!(buddy.used_bytes() - base, 32);
        let neighbour = buddy.alloc(layout(32, 8)).unwrap();
        assert_eq!(neighbour.addr().get(), p.addr().get() + 32);
        let moved = buddy.realloc(shrunk, layout(20, 8), 64).unwrap();
        assert_ne!(moved, p);
        assert!((0..20).all(|i| moved.add(i).read() == 0x5a));
        buddy.dealloc(moved, layout(64, 8)).unwrap();
        buddy.dealloc(neighbour, layout(32, 8)).unwrap();
        for block in fillers {
            buddy.dealloc(block, layout(100, 8)).unwrap();
        }
    }
    assert_eq!(buddy.free_block_count(), initial_blocks);
}

#[test]
fn frees_alternating_between_pools_find_their_pool() {
    let arenas = [Arena::new(8192), Arena::new(8192)];
    let mut buddy = BuddyByteAllocator::new();
    for arena in &arenas {
        // SAFETY: the arenas outlive the allocator.
        unsafe { buddy.add_pool(arena.at(0), arena.len()).unwrap() };
    }
    let l = layout(48, 8);
    let mut blocks = Vec::new();
    while let Ok(p) = buddy.alloc(l) {
        blocks.push(p);
    }
    let in_pool = |p: &std::ptr::NonNull<u8>, arena: &Arena| {
        let (start, end) = arena.range();
        (start..end).contains(&p.addr().get())
    };
    assert!(blocks.iter().any(|p| in_pool(p, &arenas[0])));
    assert!(blocks.iter().any(|p| in_pool(p, &arenas[1])));
    // Free the two pools' blocks in turn, so every lookup switches pool,
    // with bad frees into each pool's tags in between.
    let (mut first, mut second): (Vec<_>, Vec<_>) =
        blocks.into_iter().partition(|p| in_pool(p, &arenas[0]));
    while !first.is_empty() || !second.is_empty() {
        for (list, arena) in [(&mut first, &arenas[0]), (&mut second, &arenas[1])] {
            // SAFETY: bad frees (reported), then a live block freed once.
            unsafe {
                assert_eq!(
                    buddy.dealloc(arena.at(16), l),
                    Err(AllocError::NotAllocated)
                );
                if let Some(p) = list.pop() {
                    buddy.dealloc(p, l).unwrap();
                    // `DoubleFree`, or `NotAllocated` once `p` merged as
                    // the upper half of its buddy.
                    assert!(matches!(
                        buddy.dealloc(p, l),
                        Err(AllocError::DoubleFree | AllocError::NotAllocated)
                    ));
                }
            }
        }
    }
    assert_eq!(buddy.used_bytes(), 0);
    assert_eq!(buddy.available_bytes(), buddy.total_bytes());
}
