//! The memory-failure API, in the spirit of Linux's hwpoison and
//! soft-offline: mark a physical page bad and make sure it is never handed
//! out again.
//!
//! - A free bad page is taken out of the allocator at once with
//!   `alloc_pages_at(page, 1)`, which splits whatever free block holds it
//!   (a buddy allocator carves the block around the page).
//! - An allocated bad page is remembered; when the block holding it is
//!   freed, the page is taken back out in the same call, before any other
//!   allocation can see it.
//! - A page backing a slab is the slab allocator's business: when the
//!   slab's pages come back here, the same rule isolates the bad one.
//!
//! [`BadPageList`] is the bookkeeping alone, called with the allocator it
//! guards (a kernel keeps it under the page allocator's lock);
//! [`BadPageFilter`] owns an allocator and applies the list on every call.

use kalloc::{AllocError, AllocResult, BaseAllocator, PageAllocator};

/// What [`BadPageList::mark_bad`] did with the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPage {
    /// The page was free and is now isolated.
    Isolated,
    /// The page is in use; it will be isolated when its block is freed.
    Pending,
    /// The page was already marked.
    AlreadyBad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Isolated,
    Pending,
}

/// Up to `MAX` bad pages of one page allocator and what became of them.
/// Every method takes the allocator the pages belong to; the caller keeps
/// the two together (one lock, or one owner as in [`BadPageFilter`]).
pub struct BadPageList<const MAX: usize> {
    bad: [(usize, State); MAX],
    count: usize,
    isolated: usize,
}

impl<const MAX: usize> Default for BadPageList<MAX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const MAX: usize> BadPageList<MAX> {
    pub const fn new() -> Self {
        BadPageList {
            bad: [(0, State::Pending); MAX],
            count: 0,
            isolated: 0,
        }
    }

    /// Marks the page of `allocator` holding `addr` bad. `OutOfRange` if
    /// no region holds it, `NoMemory` if the list is full.
    pub fn mark_bad<P: PageAllocator>(
        &mut self,
        allocator: &mut P,
        addr: usize,
    ) -> AllocResult<BadPage> {
        let page = addr & !(P::PAGE_SIZE - 1);
        if self.is_bad::<P>(page) {
            return Ok(BadPage::AlreadyBad);
        }
        if self.count == MAX {
            return Err(AllocError::NoMemory);
        }
        let state = match allocator.alloc_pages_at(page, 1, P::PAGE_SIZE) {
            Ok(_) => State::Isolated,
            Err(AllocError::NoMemory) => State::Pending,
            Err(error) => return Err(error),
        };
        self.bad[self.count] = (page, state);
        self.count += 1;
        Ok(match state {
            State::Isolated => {
                self.isolated += 1;
                BadPage::Isolated
            }
            State::Pending => BadPage::Pending,
        })
    }

    /// Whether the page holding `addr` is marked bad.
    pub fn is_bad<P: PageAllocator>(&self, addr: usize) -> bool {
        let page = addr & !(P::PAGE_SIZE - 1);
        self.bad[..self.count].iter().any(|&(p, _)| p == page)
    }

    /// Bad pages taken out of service, and those still waiting for their
    /// block to be freed.
    pub fn bad_pages(&self) -> (usize, usize) {
        (self.isolated, self.count - self.isolated)
    }

    /// Whether some marked page is still waiting for its block's free.
    pub fn has_pending(&self) -> bool {
        self.count > self.isolated
    }

    /// The marked pages, isolated or not.
    pub fn pages(&self) -> impl Iterator<Item = usize> + '_ {
        self.bad[..self.count].iter().map(|&(page, _)| page)
    }

    /// Refuses a free of `count` pages at `addr` that covers an isolated
    /// page: the list owns those, so such a free names memory its caller
    /// never had. Call before handing the free to the allocator.
    pub fn check_free<P: PageAllocator>(&self, addr: usize, count: usize) -> AllocResult {
        let end = addr.saturating_add(count.saturating_mul(P::PAGE_SIZE));
        if self.bad[..self.count]
            .iter()
            .any(|&(p, s)| s == State::Isolated && (addr..end).contains(&p))
        {
            return Err(AllocError::NotAllocated);
        }
        Ok(())
    }

    /// Isolates the pending bad pages inside `[addr, addr + count pages)`,
    /// which `allocator` has just taken back. Call under the same
    /// exclusion as the free, so no allocation can see the page between.
    pub fn after_free<P: PageAllocator>(&mut self, allocator: &mut P, addr: usize, count: usize) {
        let end = addr.saturating_add(count.saturating_mul(P::PAGE_SIZE));
        for index in 0..self.count {
            let (page, state) = self.bad[index];
            if state == State::Pending && (addr..end).contains(&page) {
                let taken = allocator.alloc_pages_at(page, 1, P::PAGE_SIZE);
                debug_assert!(
                    taken.is_ok(),
                    "freshly freed bad page {page:#x} not available: {taken:?}"
                );
                if taken.is_ok() {
                    self.bad[index].1 = State::Isolated;
                    self.isolated += 1;
                }
            }
        }
    }
}

/// A page allocator that never hands out pages marked bad. Remembers up to
/// `MAX` bad pages.
pub struct BadPageFilter<P, const MAX: usize> {
    inner: P,
    list: BadPageList<MAX>,
}

impl<P: PageAllocator, const MAX: usize> BadPageFilter<P, MAX> {
    pub const fn new(inner: P) -> Self {
        BadPageFilter {
            inner,
            list: BadPageList::new(),
        }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Marks the page holding `addr` bad. `OutOfRange` if no region holds
    /// it, `NoMemory` if the list of bad pages is full.
    pub fn mark_bad(&mut self, addr: usize) -> AllocResult<BadPage> {
        self.list.mark_bad(&mut self.inner, addr)
    }

    /// Whether the page holding `addr` is marked bad.
    pub fn is_bad(&self, addr: usize) -> bool {
        self.list.is_bad::<P>(addr)
    }

    /// Bad pages taken out of service, and those still waiting for their
    /// block to be freed.
    pub fn bad_pages(&self) -> (usize, usize) {
        self.list.bad_pages()
    }
}

impl<P: PageAllocator, const MAX: usize> BaseAllocator for BadPageFilter<P, MAX> {
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.init(start, size) }
    }

    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.add_memory(start, size) }
    }
}

impl<P: PageAllocator, const MAX: usize> PageAllocator for BadPageFilter<P, MAX> {
    const PAGE_SIZE: usize = P::PAGE_SIZE;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        self.inner.alloc_pages(count, align)
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, align: usize) -> AllocResult<usize> {
        self.inner.alloc_pages_at(addr, count, align)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        self.list.check_free::<P>(addr, count)?;
        self.inner.dealloc_pages(addr, count)?;
        self.list.after_free(&mut self.inner, addr, count);
        Ok(())
    }

    /// Pages in service: isolated bad pages are out of it.
    fn total_pages(&self) -> usize {
        self.inner.total_pages() - self.list.isolated
    }

    fn used_pages(&self) -> usize {
        self.inner.used_pages() - self.list.isolated
    }
}
