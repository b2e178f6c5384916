//! Frees of blocks whose memory was handed out again since, as something
//! else: a block of another size, a slab of a size class, pages a second
//! user of the page source took, a pool given back and added again. A
//! layer that passes a free on to the allocator below must refuse them
//! itself: the allocator below sees a live block of its own there and
//! would free it under its new owner. Each test runs its sequence through
//! the shared model, which checks after every step that a bad free is
//! refused, that no counter or state changed and that every live block
//! (and every page a second user holds) is intact.

mod byte_common;
mod page_common;

use std::alloc::Layout;

use byte_common::host::HostPages;
use byte_common::model::{Model, TRIES};
use byte_common::subjects::Subject;
use kalloc::byte::{BuddyByteAllocator, SlabAllocator, Tlsf};
use kalloc::page::{BitmapPageAllocator, BuddyPageAllocator, LinearPageAllocator};
use kalloc::{AllocError, ByteAllocator};

/// One pool, small under Miri; room for the largest slab of the classes
/// below either way.
const POOL: &[usize] = if cfg!(miri) { &[192 << 10] } else { &[1 << 20] };

/// Two pools of different sizes, so a large request fits only the second.
const TWO_POOLS: &[usize] = &[64 << 10, 256 << 10];

/// alloc(big), dealloc(big), a second user of the page source takes
/// exactly those pages, then dealloc(big) and realloc(big) again.
fn large_block_pages_taken_by_a_second_user<A: Subject>() {
    for big in [4096, 8192, 16384, 3 * 4096 + 1] {
        let mut model = Model::<A>::new(POOL);
        let ptr = model.alloc(big, 8).unwrap();
        model.free_take_pages_free(ptr);
        model.finish(&[0]);
    }
}

#[test]
fn slab_on_buddy_pages_refuses_a_large_block_whose_pages_became_a_slab() {
    byte_common::model::large_block_pages_become_a_slab::<SlabAllocator<BuddyPageAllocator>>(POOL);
}

#[test]
fn slab_on_bitmap_pages_refuses_a_large_block_whose_pages_became_a_slab() {
    byte_common::model::large_block_pages_become_a_slab::<SlabAllocator<BitmapPageAllocator>>(POOL);
}

#[test]
fn slab_on_host_pages_refuses_a_large_block_whose_pages_became_a_slab() {
    byte_common::model::large_block_pages_become_a_slab::<SlabAllocator<HostPages>>(POOL);
}

#[test]
fn slab_on_buddy_pages_refuses_a_large_block_whose_pages_a_second_user_took() {
    large_block_pages_taken_by_a_second_user::<SlabAllocator<BuddyPageAllocator>>();
}

#[test]
fn slab_on_bitmap_pages_refuses_a_large_block_whose_pages_a_second_user_took() {
    large_block_pages_taken_by_a_second_user::<SlabAllocator<BitmapPageAllocator>>();
}

#[test]
fn slab_on_host_pages_refuses_a_large_block_whose_pages_a_second_user_took() {
    large_block_pages_taken_by_a_second_user::<SlabAllocator<HostPages>>();
}

/// What fills a heap up to its last scraps, largest first.
const FILLERS: [usize; 7] = [64 << 10, 16 << 10, 4 << 10, 1 << 10, 256, 64, 16];

/// In each pool: a block allocated, every other byte taken, the block
/// freed, reused by smaller blocks (nothing else is free) and freed again;
/// the same for half the large pool reused by blocks of another size.
fn block_reused_in_each_pool<A: Subject>() {
    for (pool, big, small) in [(0, 16 << 10, 64), (1, 16 << 10, 64), (1, 128 << 10, 3000)] {
        let mut model = Model::<A>::new(TWO_POOLS);
        let range = model.ranges()[pool];
        let ptr = model.alloc_within(big, range);
        model.fill_up(&FILLERS);
        model.free_reuse_free(ptr, small, TRIES);
        model.finish(&[1, 0]);
    }
}

#[test]
fn tlsf_refuses_a_block_reused_in_either_pool() {
    block_reused_in_each_pool::<Tlsf>();
}

#[test]
fn byte_buddy_refuses_a_block_reused_in_either_pool() {
    block_reused_in_each_pool::<BuddyByteAllocator>();
}

/// The heap gives a wholly free pool back; its pages serve another heap,
/// then come back to this one as a new pool. A block of the old pool is
/// `OutOfRange` while the pages are elsewhere, and refused once they are a
/// pool again with other blocks in them.
#[test]
fn tlsf_refuses_a_block_of_a_pool_given_back_and_added_again() {
    let mut model = Model::<Tlsf>::new(TWO_POOLS);
    let (low, high) = (model.ranges()[0], model.ranges()[1]);
    // A live block keeps the small pool, so the large one is given back.
    model.alloc_within(64, low);
    let old = model.alloc_within(128 << 10, high);
    let layout = model.layout_of(old);
    model.free(old);
    let (pool, size) = model
        .alloc_mut()
        .take_free_pool()
        .expect("the large pool is wholly free");
    assert_eq!((pool.addr().get(), size), (high.0, high.1 - high.0));

    let mut other = Tlsf::new();
    // SAFETY: the pages the first heap just gave back, which nothing else
    // uses until `other` gives them back below.
    unsafe { other.add_pool(pool, size).unwrap() };
    let theirs_layout = Layout::from_size_align(200 << 10, 8).unwrap();
    let theirs = other.alloc(theirs_layout).unwrap();
    // SAFETY: a live block of `other`.
    unsafe { theirs.write_bytes(0x5a, theirs_layout.size()) };
    let other_used = other.used_bytes();
    assert_eq!(model.free_again(old, layout), AllocError::OutOfRange);
    model.realloc_again(old, layout, 1 << 10);
    assert_eq!(other.used_bytes(), other_used);
    // SAFETY: the block is live in `other`.
    let bytes = unsafe { std::slice::from_raw_parts(theirs.as_ptr(), theirs_layout.size()) };
    assert!(
        bytes == vec![0x5a; bytes.len()],
        "the other heap's block changed"
    );
    // SAFETY: a live block of `other`.
    unsafe { other.dealloc(theirs, theirs_layout).unwrap() };
    assert_eq!(other.take_free_pool(), Some((pool, size)));

    // SAFETY: the same pages, back from `other`, unused by anything else.
    unsafe { model.alloc_mut().add_pool(pool, size).unwrap() };
    // Too large for the small pool: it starts where the old block did.
    let new = model.alloc_within(100 << 10, high);
    assert_eq!(new, old);
    model.free_again(old, layout);
    model.realloc_again(old, layout, 1 << 10);
    model.finish(&[0]);
}

#[test]
fn buddy_pages_refuse_a_block_reused_as_another_size() {
    page_common::model::pages_reused_as_another_size::<BuddyPageAllocator>();
}

#[test]
fn bitmap_pages_refuse_a_block_reused_as_another_size() {
    page_common::model::pages_reused_as_another_size::<BitmapPageAllocator>();
}

#[test]
fn linear_pages_refuse_a_block_reused_as_another_size() {
    page_common::model::pages_reused_as_another_size::<LinearPageAllocator>();
}
