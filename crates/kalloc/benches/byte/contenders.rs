//! The contenders of the byte-allocator benchmark: ours (TLSF, buddy,
//! slab) and the peers (rlsf, talc, buddy_system_allocator,
//! linked_list_allocator), all driven through one small trait, plus the
//! harness floor.

use std::alloc::Layout;
use std::ptr::NonNull;

use kalloc::ByteAllocator;
use kalloc::byte::{BuddyByteAllocator, SlabAllocator, Tlsf};

use crate::host::{Arena, HostPages};

/// The interface every contender is driven through.
pub trait Contender {
    const NAME: &'static str;
    fn new(arena: &Arena) -> Self;
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>>;
    /// # Safety
    /// `ptr` was returned by `alloc(layout)` and is freed once.
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout);
    /// Payload bytes of the allocated blocks and of the free blocks, for
    /// the contenders that count them (the efficiency breakdown).
    fn payload_bytes(&self) -> Option<(usize, usize)> {
        None
    }
}

pub struct OurTlsf(Tlsf);
impl Contender for OurTlsf {
    const NAME: &'static str = "kalloc TLSF";
    fn new(arena: &Arena) -> Self {
        let mut tlsf = Tlsf::new();
        // SAFETY: the arena outlives the contender and nothing else uses it.
        unsafe { tlsf.add_pool(arena.at(0), arena.len()).unwrap() };
        Self(tlsf)
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(ptr, layout).unwrap() }
    }
    fn payload_bytes(&self) -> Option<(usize, usize)> {
        Some((self.0.used_bytes(), self.0.available_bytes()))
    }
}

pub struct OurBuddy(BuddyByteAllocator);
impl Contender for OurBuddy {
    const NAME: &'static str = "kalloc buddy";
    fn new(arena: &Arena) -> Self {
        let mut buddy = BuddyByteAllocator::new();
        // SAFETY: the arena outlives the contender.
        unsafe { buddy.add_pool(arena.at(0), arena.len()).unwrap() };
        Self(buddy)
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(ptr, layout).unwrap() }
    }
}

/// The slab over the test page source (first fit over a page map): fine
/// for slabs, too slow for page-sized requests, so it runs the small-object
/// workload only.
pub struct OurSlab(SlabAllocator<HostPages>);
impl Contender for OurSlab {
    const NAME: &'static str = "kalloc slab";
    fn new(arena: &Arena) -> Self {
        // SAFETY: the arena outlives the contender and nothing else uses it.
        Self(SlabAllocator::new(unsafe { HostPages::over(arena) }))
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(ptr, layout).unwrap() }
    }
}

pub struct Rlsf(rlsf::Tlsf<'static, u32, u32, 28, 32>);
impl Contender for Rlsf {
    const NAME: &'static str = "rlsf";
    fn new(arena: &Arena) -> Self {
        let mut tlsf = rlsf::Tlsf::new();
        let pool = NonNull::slice_from_raw_parts(arena.at(0), arena.len());
        // SAFETY: the arena outlives the contender and nothing else uses it.
        unsafe { tlsf.insert_free_block_ptr(pool).unwrap() };
        Self(tlsf)
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.allocate(layout)
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate(ptr, layout.align()) }
    }
}

/// talc's allocator core with a `Manual` source and the arena claimed:
/// what its README's single-threaded `TalcCell` wraps, without the cell.
pub struct Talc(talc::base::Talc<talc::source::Manual, talc::DefaultBinning>);
impl Contender for Talc {
    const NAME: &'static str = "talc";
    fn new(arena: &Arena) -> Self {
        let mut talc = talc::base::Talc::new(talc::source::Manual);
        // SAFETY: the arena outlives the contender and nothing else uses it.
        let end = unsafe { talc.claim(arena.at(0).as_ptr(), arena.len()) };
        assert!(end.is_some(), "talc could not claim the arena");
        Self(talc)
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: `layout` has a non-zero size (every trace's sizes do).
        unsafe { self.0.allocate(layout) }
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate(ptr.as_ptr(), layout) }
    }
}

/// The order its README's `LockedHeap<32>` uses, without the lock.
pub struct Bsa(buddy_system_allocator::Heap<32>);
impl Contender for Bsa {
    const NAME: &'static str = "buddy_system_allocator";
    fn new(arena: &Arena) -> Self {
        let mut heap = buddy_system_allocator::Heap::<32>::new();
        // SAFETY: the arena outlives the contender and nothing else uses it.
        unsafe { heap.init(arena.at(0).as_ptr().expose_provenance(), arena.len()) };
        Self(heap)
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

pub struct Llff(linked_list_allocator::Heap);
impl Contender for Llff {
    const NAME: &'static str = "linked_list_allocator";
    fn new(arena: &Arena) -> Self {
        let mut heap = linked_list_allocator::Heap::empty();
        // SAFETY: the arena outlives the contender and nothing else uses it.
        unsafe { heap.init(arena.at(0).as_ptr(), arena.len()) };
        Self(heap)
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.allocate_first_fit(layout).ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate(ptr, layout) }
    }
}

/// The harness floor: a bump pointer that wraps around the arena and never
/// reuses a block, with no bookkeeping. Not an allocator: it measures what
/// the play loop itself costs per step (trace decoding, slot array, one
/// write per block), so the tables can show each allocator's own time.
pub struct Floor {
    base: NonNull<u8>,
    len: usize,
    next: usize,
}
impl Contender for Floor {
    const NAME: &'static str = "harness floor (bump, no free)";
    fn new(arena: &Arena) -> Self {
        Self {
            base: arena.at(0),
            len: arena.len(),
            next: 0,
        }
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        let mut at = (self.next + layout.align() - 1) & !(layout.align() - 1);
        if at + layout.size() > self.len {
            at = 0;
        }
        self.next = at + layout.size();
        // SAFETY: `at + size <= len`: inside the arena.
        Some(unsafe { self.base.add(at) })
    }
    #[inline]
    unsafe fn free(&mut self, _ptr: NonNull<u8>, _layout: Layout) {}
}

/// The bound on the 64-byte churn: freed blocks on a LIFO stack in front of
/// the bump pointer, with no size classes, no metadata and no checks, so
/// an allocation takes back the block freed last. Not an allocator (it
/// serves one size only): the fastest anything could be on that trace,
/// which shows how much of a ratio against TLSF is there to win at all.
pub struct Lifo {
    bump: Floor,
    freed: Vec<NonNull<u8>>,
}
impl Contender for Lifo {
    const NAME: &'static str = "unchecked LIFO, one size (bound)";
    fn new(arena: &Arena) -> Self {
        Self {
            bump: Floor::new(arena),
            freed: Vec::with_capacity(crate::MAX_LIVE),
        }
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.freed.pop().or_else(|| self.bump.alloc(layout))
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, _layout: Layout) {
        self.freed.push(ptr);
    }
}
