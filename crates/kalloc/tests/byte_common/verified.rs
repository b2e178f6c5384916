//! The TLSF with every operation cross-checked, as a model subject: the
//! verdict of `dealloc` and `realloc` (the sealed header, checked in a
//! handful of instructions) must be the verdict of `verify_dealloc` (a
//! walk of the pool from its first block that trusts no header), and the
//! whole heap must pass `check_consistency` after every operation. Shared
//! by `tests/tlsf_verified.rs` and the `tlsf_verified` fuzz target.

use std::alloc::Layout;
use std::ptr::NonNull;

use kalloc::byte::Tlsf;
use kalloc::{AllocError, AllocResult, BaseAllocator, ByteAllocator};

use super::host::Arena;
use super::subjects::{Setup, Subject};

/// A TLSF whose every operation is cross-checked.
pub struct Verified(pub Tlsf);

impl Verified {
    fn consistent(&self, after: &str) {
        if let Err(broken) = self.0.check_consistency() {
            panic!("after {after}: {broken}");
        }
    }

    /// The exhaustive verdict before the operation, checked against the
    /// operation's own.
    fn agree<T>(exact: AllocResult, got: &AllocResult<T>, what: &str, ptr: NonNull<u8>) {
        let same = match (exact, got) {
            (Ok(()), Ok(_)) => true,
            (Err(AllocError::OutOfRange), Err(e)) => *e == AllocError::OutOfRange,
            (Err(AllocError::DoubleFree | AllocError::NotAllocated), Err(e)) => {
                matches!(e, AllocError::DoubleFree | AllocError::NotAllocated)
            }
            _ => false,
        };
        assert!(
            same,
            "{what} of {ptr:?}: the walk says {exact:?}, the header check {:?}",
            got.as_ref().map(drop)
        );
    }
}

impl BaseAllocator for Verified {
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded.
        unsafe { self.0.add_memory(start, size) }
    }
}

impl ByteAllocator for Verified {
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        let got = self.0.alloc(layout);
        self.consistent("alloc");
        got
    }

    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        let exact = self.0.verify_dealloc(ptr, layout);
        // SAFETY: forwarded.
        let got = unsafe { self.0.dealloc(ptr, layout) };
        Self::agree(exact, &got, "dealloc", ptr);
        self.consistent("dealloc");
        got
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_size: usize,
    ) -> AllocResult<NonNull<u8>> {
        let exact = self.0.verify_dealloc(ptr, old_layout);
        // SAFETY: forwarded.
        let got = unsafe { self.0.realloc(ptr, old_layout, new_size) };
        // A valid block may still fail to move for want of memory.
        if got != Err(AllocError::NoMemory) {
            Self::agree(exact, &got, "realloc", ptr);
        }
        self.consistent("realloc");
        got
    }

    fn total_bytes(&self) -> usize {
        self.0.total_bytes()
    }

    fn used_bytes(&self) -> usize {
        self.0.used_bytes()
    }

    fn available_bytes(&self) -> usize {
        self.0.available_bytes()
    }
}

impl Subject for Verified {
    const NAME: &'static str = "tlsf (verified)";

    fn build(pool_sizes: &[usize]) -> Setup<Self> {
        let arenas: Vec<Arena> = pool_sizes.iter().map(|&size| Arena::new(size)).collect();
        let mut tlsf = Tlsf::new();
        for arena in &arenas {
            // SAFETY: the arena is ours and outlives the allocator (`Setup`).
            unsafe { tlsf.add_pool(arena.at(0), arena.len()).unwrap() };
        }
        Setup::over_arenas(Verified(tlsf), arenas)
    }

    fn settle(&mut self) -> usize {
        self.consistent("settling");
        self.0.settle()
    }

    fn same_block(addr: usize, layout: Layout, charged: usize, other: Layout) -> bool {
        Tlsf::same_block(addr, layout, charged, other)
    }

    fn state(&self) -> Vec<usize> {
        self.0.state()
    }
}
