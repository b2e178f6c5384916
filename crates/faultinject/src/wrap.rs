//! Allocators that honour a [`FaultPolicy`]: each wraps any `kalloc`
//! allocator and fails the requests the policy picks with `NoMemory`,
//! exactly as a real exhaustion would look to the caller.

use core::alloc::Layout;
use core::ptr::NonNull;

use kalloc::{AllocError, AllocResult, BaseAllocator, ByteAllocator, PageAllocator};

use crate::{FaultPolicy, Request};

/// log2 of the pages `bytes` needs (`fail_page_alloc`'s order).
fn order_of(bytes: usize, page_size: usize) -> u32 {
    bytes.div_ceil(page_size).max(1).next_power_of_two().ilog2()
}

/// A page allocator whose allocations fail when the policy says so
/// (Linux's `fail_page_alloc`).
pub struct FailingPages<P> {
    name: &'static str,
    inner: P,
    pub policy: FaultPolicy,
}

impl<P> FailingPages<P> {
    pub const fn new(name: &'static str, inner: P, policy: FaultPolicy) -> Self {
        FailingPages {
            name,
            inner,
            policy,
        }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }
}

impl<P: PageAllocator> FailingPages<P> {
    fn inject(&mut self, count: usize) -> AllocResult {
        let bytes = count.saturating_mul(P::PAGE_SIZE);
        let request = Request {
            name: self.name,
            bytes,
            order: order_of(bytes, P::PAGE_SIZE),
        };
        if count > 0 && self.policy.should_fail(request) {
            Err(AllocError::NoMemory)
        } else {
            Ok(())
        }
    }
}

impl<P: BaseAllocator> BaseAllocator for FailingPages<P> {
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.init(start, size) }
    }

    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.add_memory(start, size) }
    }
}

impl<P: PageAllocator> PageAllocator for FailingPages<P> {
    const PAGE_SIZE: usize = P::PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        self.inject(count)?;
        self.inner.alloc_pages(count, align)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        self.inject(count)?;
        self.inner.alloc_pages_at(addr, count, align)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        self.inner.dealloc_pages(addr, count)
    }

    fn total_pages(&self) -> usize {
        self.inner.total_pages()
    }

    fn used_pages(&self) -> usize {
        self.inner.used_pages()
    }
}

/// A byte allocator whose allocations fail when the policy says so
/// (Linux's `failslab`). `realloc` that would grow is a candidate too.
pub struct FailingBytes<A> {
    name: &'static str,
    inner: A,
    pub policy: FaultPolicy,
}

impl<A> FailingBytes<A> {
    pub const fn new(name: &'static str, inner: A, policy: FaultPolicy) -> Self {
        FailingBytes {
            name,
            inner,
            policy,
        }
    }

    pub fn inner(&self) -> &A {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut A {
        &mut self.inner
    }

    fn inject(&mut self, bytes: usize) -> AllocResult {
        let request = Request {
            name: self.name,
            bytes,
            order: order_of(bytes, 4096),
        };
        if self.policy.should_fail(request) {
            Err(AllocError::NoMemory)
        } else {
            Ok(())
        }
    }
}

impl<A: BaseAllocator> BaseAllocator for FailingBytes<A> {
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.init(start, size) }
    }

    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.add_memory(start, size) }
    }
}

impl<A: ByteAllocator> ByteAllocator for FailingBytes<A> {
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        self.inject(layout.size())?;
        self.inner.alloc(layout)
    }

    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_size: usize,
    ) -> AllocResult<NonNull<u8>> {
        if new_size > old_layout.size() {
            self.inject(new_size)?;
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.realloc(ptr, old_layout, new_size) }
    }

    fn total_bytes(&self) -> usize {
        self.inner.total_bytes()
    }

    fn used_bytes(&self) -> usize {
        self.inner.used_bytes()
    }

    fn available_bytes(&self) -> usize {
        self.inner.available_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FaultConfig;

    /// Always succeeds with a dummy address (the wrapper's logic is what
    /// is under test; allocators with real memory are tested elsewhere).
    struct Counting(usize);

    impl BaseAllocator for Counting {
        unsafe fn init(&mut self, _: usize, _: usize) -> AllocResult {
            Ok(())
        }
        unsafe fn add_memory(&mut self, _: usize, _: usize) -> AllocResult {
            Ok(())
        }
    }

    impl PageAllocator for Counting {
        const PAGE_SIZE: usize = 4096;
        fn alloc_pages(&mut self, count: usize, _: usize) -> AllocResult<usize> {
            self.0 += count;
            Ok(0x1000)
        }
        fn alloc_pages_at(&mut self, addr: usize, count: usize, _: usize) -> AllocResult<usize> {
            self.0 += count;
            Ok(addr)
        }
        fn dealloc_pages(&mut self, _: usize, count: usize) -> AllocResult {
            self.0 -= count;
            Ok(())
        }
        fn total_pages(&self) -> usize {
            1 << 20
        }
        fn used_pages(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn injected_failures_leave_the_inner_allocator_untouched() {
        let mut pages =
            FailingPages::new("pages", Counting(0), FaultPolicy::new(FaultConfig::OFF, 1));
        pages.policy.set_fail_nth(2);
        assert_eq!(pages.alloc_pages(1, 4096), Ok(0x1000));
        assert_eq!(pages.alloc_pages(1, 4096), Err(AllocError::NoMemory));
        assert_eq!(pages.used_pages(), 1);
        assert_eq!(pages.alloc_pages_at(0x5000, 1, 4096), Ok(0x5000));
    }

    #[test]
    fn min_order_spares_small_requests() {
        let config = FaultConfig {
            probability: 100,
            times: -1,
            min_order: 2,
            ..FaultConfig::OFF
        };
        let mut pages = FailingPages::new("pages", Counting(0), FaultPolicy::new(config, 1));
        assert!(pages.alloc_pages(2, 4096).is_ok());
        assert_eq!(pages.alloc_pages(3, 4096), Err(AllocError::NoMemory));
        assert_eq!(order_of(3 * 4096, 4096), 2);
        assert_eq!(order_of(1, 4096), 0);
    }
}
