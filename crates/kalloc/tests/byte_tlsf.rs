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
    // One block, the word in front of it and the sentinel's word.
    let smallest = TLSF_MIN_BLOCK + 2 * TLSF_HEADER;
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
    // 100 bytes and the header round to a 112-byte block.
    assert_eq!(
        tlsf.used_bytes(),
        2 * (TLSF_MIN_BLOCK - TLSF_HEADER) + 112 - TLSF_HEADER
    );
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
    // Every block is charged its rounded size only (112 bytes with the
    // header); padding went back.
    assert_eq!(tlsf.used_bytes(), 5 * (112 - TLSF_HEADER));
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
    let (mut tlsf, arena) = with_pool(8 << 20);
    for shift in [12, 16, 20, 22] {
        let l = layout(24, 1 << shift);
        let p = tlsf.alloc(l).unwrap();
        assert_eq!(p.addr().get() % (1 << shift), 0);
        // SAFETY: live block.
        unsafe { tlsf.dealloc(p, l).unwrap() };
    }
    // An alignment no payload of the pool can meet: the pool lies between
    // two consecutive multiples of it.
    let (start, end) = (
        arena.at(0).addr().get(),
        arena.at(0).addr().get() + (8 << 20),
    );
    let shift = (23..usize::BITS - 2)
        .find(|&s| start % (1 << s) != 0 && start >> s == (end - 1) >> s)
        .unwrap();
    assert_eq!(
        tlsf.alloc(layout(24, 1 << shift)),
        Err(AllocError::NoMemory)
    );
    assert_eq!(tlsf.free_block_count(), 1);
}

#[test]
fn an_aligned_address_in_a_small_block_is_found_when_the_search_fails() {
    // The good-fit search for size + alignment + gap finds nothing in a
    // pool smaller than the alignment, but an aligned payload may still
    // fit: the fallback must find it exactly when one exists.
    // A 64 KiB pool around the arena's 2 MiB mark: a 2 MiB-aligned payload
    // fits in it, larger alignments may or may not (the arena is 2
    // MiB-aligned).
    let size = 64 << 10;
    let arena = Arena::new(4 << 20);
    let pool = arena.at((2 << 20) - size / 2);
    let mut tlsf = Tlsf::new();
    // SAFETY: the arena outlives the allocator.
    unsafe { tlsf.add_pool(pool, size).unwrap() };
    let (start, end) = (pool.addr().get(), pool.addr().get() + size);
    let mut found = 0;
    for shift in 21..24 {
        let align = 1usize << shift;
        let first_payload = start + TLSF_HEADER;
        // The payload goes at the first aligned address with a front gap
        // of 0 or at least one minimum block.
        let mut at = first_payload.next_multiple_of(align);
        if at != first_payload && at - first_payload < TLSF_MIN_BLOCK {
            at += align;
        }
        let fits = at + 64 + TLSF_MIN_BLOCK <= end;
        match tlsf.alloc(layout(64, align)) {
            Ok(p) => {
                assert!(fits, "align {align}: {p:?} should not fit");
                assert_eq!(p.addr().get(), at);
                found += 1;
                // SAFETY: live block.
                unsafe { tlsf.dealloc(p, layout(64, align)).unwrap() };
            }
            Err(error) => {
                assert!(!fits, "align {align}: {at:#x} fits");
                assert_eq!(error, AllocError::NoMemory);
            }
        }
        assert_eq!(tlsf.free_block_count(), 1);
    }
    assert!(found >= 1, "the 2 MiB-aligned payload fits");
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
        assert_eq!(tlsf.used_bytes(), 3000);
        let shrunk = tlsf.realloc(grown, layout(3000, 8), 40).unwrap();
        assert_eq!(shrunk, p);
        assert_eq!(tlsf.used_bytes(), 40);
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

/// One aligned allocation from a fresh 1 MiB pool at a 2 MiB-aligned
/// arena: its payload offset in the pool and the free blocks around it;
/// checks that no padding is charged and everything coalesces back.
fn fresh_aligned_case(size: usize, align: usize) -> (usize, usize) {
    let (mut tlsf, arena) = with_pool(1 << 20);
    let base = arena.at(0).addr().get();
    let total = tlsf.total_bytes();
    let l = layout(size, align);
    let p = tlsf.alloc(l).unwrap();
    assert_eq!(p.addr().get() % align, 0);
    let rounded = (size + TLSF_HEADER).next_multiple_of(16) - TLSF_HEADER;
    assert_eq!(tlsf.used_bytes(), rounded, "no padding is charged");
    let free_blocks = tlsf.free_block_count();
    let headers = (free_blocks + 1) * TLSF_HEADER;
    assert_eq!(
        tlsf.available_bytes() + tlsf.used_bytes() + headers,
        total + TLSF_HEADER
    );
    // SAFETY: live block of this allocator.
    unsafe { tlsf.dealloc(p, l).unwrap() };
    assert_eq!(tlsf.free_block_count(), 1);
    assert_eq!(tlsf.available_bytes(), total);
    (p.addr().get() - base, free_blocks)
}

#[test]
fn aligned_allocations_split_off_the_front_gap() {
    // The pool's first payload is 16 bytes past a 2 MiB boundary: the gap
    // up to the next 4096 boundary becomes a free block, and so does the
    // tail.
    assert_eq!(fresh_aligned_case(100, 4096), (4096, 2));
    assert_eq!(fresh_aligned_case(4064, 4096), (4096, 2));
    // A one-granule gap cannot be a block: the payload moves one `align`
    // further (gap 48).
    assert_eq!(fresh_aligned_case(100, 32), (64, 2));
}

/// The used header a block of `size` bytes whose header word is at
/// `header` carries (`docs/byte-allocators.md`): the size, the USED bit
/// and the seal, the address's low half shifted into the upper half.
#[cfg(target_pointer_width = "64")]
fn sealed(header: usize, size: usize) -> usize {
    size + 1 + (header << 32)
}

#[cfg(target_pointer_width = "64")]
#[test]
fn forged_headers_inside_a_payload_are_rejected_and_change_nothing() {
    let (mut tlsf, _arena) = with_pool(8192);
    let big = layout(256, 16);
    let small = layout(32, 16);
    let a = tlsf.alloc(big).unwrap();
    let b = tlsf.alloc(big).unwrap();
    // `a` becomes the free block in front of `b`.
    // SAFETY: live block of this allocator.
    unsafe { tlsf.dealloc(a, big).unwrap() };
    let snapshot = (
        tlsf.used_bytes(),
        tlsf.available_bytes(),
        tlsf.free_block_count(),
    );
    // A fake 48-byte block (what `small` rounds to) whose header word sits
    // 40 bytes into `b`'s payload, with the footer slot in front of it and
    // a successor header behind it.
    let header = b.as_ptr().wrapping_add(40).cast::<usize>();
    let h = header.addr();
    let forge = |footer: usize, word: usize, next: usize| {
        // SAFETY: all three words lie inside `b`'s 256-byte payload.
        unsafe {
            header.sub(1).write(footer);
            header.write(word);
            header.add(6).write(next);
        }
    };
    let fake = std::ptr::NonNull::new(b.as_ptr().wrapping_add(48)).unwrap();
    let a_header = a.addr().get() - TLSF_HEADER;
    let b_header = b.addr().get() - TLSF_HEADER;
    // SAFETY: `b`'s header word, read where the allocator keeps it.
    let b_word = unsafe { b.as_ptr().sub(TLSF_HEADER).cast::<usize>().read() };
    let next_ok = sealed(h + 48, 64);
    // Without this address's seal on a used header: refused by the header
    // check alone, on every path.
    let unsealed = [
        ("a size and USED without a seal", 48 | 1),
        ("the header of a live block, copied", b_word),
        ("a header sealed for another address", sealed(h + 16, 48)),
        ("a sealed header of another size", sealed(h, 96)),
        ("an unknown flag bit", sealed(h, 48) | 4),
    ];
    // Sealed, but the neighbours disagree: refused by the neighbour
    // checks, which every check runs and a free runs in debug builds (a
    // sealed header is the allocator's own unless forged).
    let inconsistent = [
        ("a successor that is no header", 0, sealed(h, 48), 64 | 1),
        (
            "a successor marked after a free block",
            0,
            sealed(h, 48),
            next_ok | 2,
        ),
        (
            "a free successor larger than the pool",
            0,
            sealed(h, 48),
            1 << 20,
        ),
        (
            "PREV_FREE over a footer outside the pool",
            16,
            sealed(h, 48) | 2,
            next_ok,
        ),
        (
            "PREV_FREE over a used block",
            b_header,
            sealed(h, 48) | 2,
            next_ok,
        ),
        (
            "PREV_FREE over a free block that does not end here",
            a_header,
            sealed(h, 48) | 2,
            next_ok,
        ),
    ];
    let cases =
        unsealed
            .iter()
            .map(|&(what, word)| (what, 0, word, next_ok, true))
            .chain(inconsistent.iter().map(|&(what, footer, word, next)| {
                (what, footer, word, next, cfg!(debug_assertions))
            }));
    for (what, footer, word, next, free_refuses) in cases {
        forge(footer, word, next);
        // SAFETY: `fake` is inside a live block: bad frees and verdicts,
        // which must be refused; a free only where it is.
        unsafe {
            assert_eq!(
                tlsf.check_dealloc(fake, small),
                Err(AllocError::NotAllocated),
                "{what}"
            );
            if free_refuses {
                assert_eq!(
                    tlsf.dealloc(fake, small),
                    Err(AllocError::NotAllocated),
                    "{what}"
                );
            }
        }
        assert_eq!(
            snapshot,
            (
                tlsf.used_bytes(),
                tlsf.available_bytes(),
                tlsf.free_block_count()
            ),
            "{what}"
        );
        assert_eq!(
            tlsf.verify_dealloc(fake, small),
            Err(AllocError::NotAllocated)
        );
    }
    // A sealed header without USED reads as a block freed and merged.
    forge(0, sealed(h, 48) - 1, next_ok);
    let refusal = {
        // SAFETY: a bad free, as above.
        unsafe { tlsf.dealloc(fake, small) }
    };
    assert_eq!(refusal, Err(AllocError::DoubleFree));
    // A perfect forgery, consistent with its neighbours, is what the
    // header checks cannot tell from a block; the walk can.
    forge(0, sealed(h, 48), next_ok);
    // SAFETY: a verdict only; nothing is freed.
    assert_eq!(unsafe { tlsf.check_dealloc(fake, small) }, Ok(()));
    assert_eq!(
        tlsf.verify_dealloc(fake, small),
        Err(AllocError::NotAllocated)
    );
    assert_eq!(tlsf.verify_dealloc(b, big), Ok(()));
    assert_eq!(tlsf.verify_dealloc(a, big), Err(AllocError::DoubleFree));
    tlsf.check_consistency().unwrap();
    // SAFETY: live block of this allocator.
    unsafe { tlsf.dealloc(b, big).unwrap() };
    assert_eq!(tlsf.free_block_count(), 1);
    tlsf.check_consistency().unwrap();
}

#[test]
fn frees_alternating_between_pools_find_each_pool() {
    let arenas = [Arena::new(64 << 10), Arena::new(64 << 10)];
    let mut tlsf = Tlsf::new();
    for arena in &arenas {
        // SAFETY: the arenas outlive the allocator.
        unsafe { tlsf.add_pool(arena.at(0), 64 << 10).unwrap() };
    }
    let l = layout(40 << 10, 8);
    let blocks = [tlsf.alloc(l).unwrap(), tlsf.alloc(l).unwrap()];
    assert!(
        blocks
            .iter()
            .any(|p| arenas[0].range().0 <= p.addr().get() && p.addr().get() < arenas[0].range().1)
    );
    let small = layout(24, 8);
    let mut live = Vec::new();
    for _ in 0..8 {
        live.push(tlsf.alloc(small).unwrap());
    }
    // SAFETY: bad frees into either pool are reported; then the live
    // blocks are freed once each, alternating pools.
    unsafe {
        for p in blocks.iter().chain(&live) {
            assert_eq!(tlsf.dealloc(p.add(8), small), Err(AllocError::NotAllocated));
        }
        for arena in &arenas {
            assert_eq!(
                tlsf.dealloc(arena.at(0), small),
                Err(AllocError::NotAllocated)
            );
            assert_eq!(
                tlsf.dealloc(arena.at((64 << 10) - 16), small),
                Err(AllocError::NotAllocated)
            );
        }
        let outside = Arena::new(4096);
        assert_eq!(
            tlsf.dealloc(outside.at(64), small),
            Err(AllocError::OutOfRange)
        );
        for p in live {
            tlsf.dealloc(p, small).unwrap();
        }
        tlsf.dealloc(blocks[0], l).unwrap();
        let (pool, _) = tlsf.take_free_pool().unwrap();
        assert!(pool.addr().get() <= blocks[0].addr().get());
        assert_eq!(tlsf.dealloc(blocks[0], l), Err(AllocError::OutOfRange));
        tlsf.dealloc(blocks[1], l).unwrap();
    }
    assert_eq!(tlsf.free_block_count(), 1);
    assert_eq!(tlsf.used_bytes(), 0);
}
