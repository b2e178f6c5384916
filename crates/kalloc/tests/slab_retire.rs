//! Memory failure in the slab allocator: a retired slab hands out none of
//! its objects again, and its pages go back with its last live object.

mod byte_common;

use std::alloc::Layout;

use byte_common::host::{HostPages, PAGE};
use kalloc::ByteAllocator;
use kalloc::byte::SlabAllocator;

#[test]
fn a_retired_slab_is_never_reused_and_its_pages_return_with_its_last_object() {
    let mut slab = SlabAllocator::new(HostPages::new(64 * PAGE));
    let layout = Layout::from_size_align(64, 8).unwrap();
    let first: Vec<_> = (0..10).map(|_| slab.alloc(layout).unwrap()).collect();
    let slab_start = first[0].addr().get() & !(PAGE - 1);
    let free_before = slab.source().available_pages_public();
    assert!(slab.retire_slab_at(first[3]));
    assert!(!slab.retire_slab_at(first[3]), "retired twice");
    assert_eq!(slab.retired_slabs(), 1);
    // Free half, then allocate plenty: nothing may land in the retired slab.
    for &ptr in &first[..5] {
        // SAFETY: live objects of this layout.
        unsafe { slab.dealloc(ptr, layout).unwrap() };
    }
    let later: Vec<_> = (0..200).map(|_| slab.alloc(layout).unwrap()).collect();
    for ptr in &later {
        assert_ne!(
            ptr.addr().get() & !(PAGE - 1),
            slab_start,
            "retired slab reused"
        );
    }
    assert!(
        slab.source().available_pages_public() < free_before,
        "no new slab taken"
    );
    for &ptr in first[5..].iter().chain(&later) {
        // SAFETY: live objects of this layout.
        unsafe { slab.dealloc(ptr, layout).unwrap() };
    }
    assert_eq!(slab.retired_slabs(), 0);
    slab.shrink();
    assert_eq!(slab.source().available_pages_public(), 64);
    assert_eq!(slab.used_bytes(), 0);
}

#[test]
fn an_empty_slab_goes_back_at_once_and_foreign_addresses_are_refused() {
    let mut slab = SlabAllocator::new(HostPages::new(16 * PAGE));
    let layout = Layout::from_size_align(128, 8).unwrap();
    let object = slab.alloc(layout).unwrap();
    // SAFETY: live object of this layout.
    unsafe { slab.dealloc(object, layout).unwrap() };
    let held = 16 - slab.source().available_pages_public();
    assert_eq!(held, 1);
    assert!(slab.retire_slab_at(object));
    assert_eq!(slab.source().available_pages_public(), 16);
    let mut outside = [0u8; 8];
    assert!(!slab.retire_slab_at(core::ptr::NonNull::from(&mut outside).cast()));
}

#[test]
fn objects_parked_before_the_retirement_are_not_handed_out_again() {
    let mut slab = SlabAllocator::new(HostPages::new(64 * PAGE));
    let layout = Layout::from_size_align(64, 8).unwrap();
    let first: Vec<_> = (0..10).map(|_| slab.alloc(layout).unwrap()).collect();
    let slab_start = first[0].addr().get() & !(PAGE - 1);
    // Recently freed objects wait in the cache's magazine for reuse.
    for &ptr in &first[..3] {
        // SAFETY: live objects of this layout.
        unsafe { slab.dealloc(ptr, layout).unwrap() };
    }
    assert!(slab.retire_slab_at(first[5]));
    let later: Vec<_> = (0..50).map(|_| slab.alloc(layout).unwrap()).collect();
    assert!(
        later
            .iter()
            .all(|ptr| ptr.addr().get() & !(PAGE - 1) != slab_start),
        "a parked object of the retired slab was handed out"
    );
    // SAFETY: live object of this layout.
    unsafe { slab.dealloc(first[3], layout).unwrap() };
    // SAFETY: a double free, refused without touching the object.
    let again = unsafe { slab.dealloc(first[3], layout) };
    assert_eq!(again, Err(kalloc::AllocError::DoubleFree));
    for &ptr in first[4..].iter().chain(&later) {
        // SAFETY: live objects of this layout.
        unsafe { slab.dealloc(ptr, layout).unwrap() };
    }
    assert_eq!(slab.retired_slabs(), 0);
    slab.shrink();
    assert_eq!(slab.source().available_pages_public(), 64);
}
