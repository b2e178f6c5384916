//! ArceOS compatibility (feature `axallocator`): every allocator of this
//! crate also implements the traits of ArceOS's [`axallocator`] crate, so
//! a kernel written against them switches algorithm without touching its
//! callers.
//!
//! | axallocator trait | implemented by |
//! |---|---|
//! | `BaseAllocator` + `ByteAllocator` | [`Tlsf`], [`BuddyByteAllocator`], [`SlabAllocator<P>`](SlabAllocator) |
//! | `BaseAllocator` + `PageAllocator` | [`BuddyPageAllocator`], [`BitmapPageAllocator`], [`LinearPageAllocator`] |
//! | `BaseAllocator` + `IdAllocator` | [`BitmapIdAllocator`] (`init`/`add_memory` add IDs) |
//!
//! In ArceOS's `axalloc`, the switch is the line that names the type; the
//! code around it (below, as `axalloc` calls it) stays as it is:
//!
//! ```
//! use core::alloc::Layout;
//! use axallocator::{BaseAllocator, ByteAllocator, PageAllocator};
//!
//! // was: pub type DefaultByteAllocator = axallocator::TlsfByteAllocator;
//! pub type DefaultByteAllocator = kalloc::byte::Tlsf;
//! // was: use axallocator::BitmapPageAllocator;
//! use kalloc::page::BitmapPageAllocator;
//! const PAGE_SIZE: usize = 0x1000;
//!
//! let mut palloc = BitmapPageAllocator::<PAGE_SIZE>::new();
//! let mut balloc = DefaultByteAllocator::new();
//! # let ram = Layout::from_size_align(1 << 20, PAGE_SIZE).unwrap();
//! # // SAFETY: the layout's size is not zero.
//! # let start_vaddr = unsafe { std::alloc::alloc(ram) }.expose_provenance();
//! # let size = 1 << 20;
//!
//! // `[start_vaddr, start_vaddr + size)` is free RAM.
//! palloc.init(start_vaddr, size);
//! let heap = palloc.alloc_pages(8, PAGE_SIZE).unwrap();
//! balloc.init(heap, 8 * PAGE_SIZE);
//!
//! let layout = Layout::from_size_align(40, 8).unwrap();
//! let ptr = balloc.alloc(layout).unwrap();
//! balloc.dealloc(ptr, layout);
//! assert_eq!(balloc.used_bytes(), 0);
//! assert_eq!(palloc.used_pages(), 8);
//! ```
//!
//! [`Tlsf::new`], [`BuddyByteAllocator::new`] and the page allocators'
//! `new` are `const` like axallocator's. [`SlabAllocator::new`] is not and
//! takes its page source, so the slab needs a line more
//! (`SlabAllocator::new(BuddyPageAllocator::new())`, built at boot).
//!
//! # Errors
//!
//! kalloc's [`AllocError`] maps onto axallocator's four variants with
//! `From`:
//!
//! | kalloc | axallocator | why |
//! |---|---|---|
//! | `InvalidParam` | `InvalidParam` | same meaning |
//! | `MemoryOverlap` | `MemoryOverlap` | same meaning |
//! | `NoMemory` | `NoMemory` | same meaning |
//! | `NotAllocated` | `NotAllocated` | same meaning |
//! | `DoubleFree` | `NotAllocated` | a free of a block that is not allocated |
//! | `OutOfRange` | `InvalidParam` | an address or ID it does not manage (1) |
//!
//! (1) No amount of freeing makes such a request succeed, so it is not
//! `NoMemory`.
//!
//! axallocator's `init`, `dealloc`, `dealloc_pages` and `dealloc_id`
//! return nothing. When kalloc refuses one (a region it cannot use, a
//! double or invalid free), they panic with the error, after the refusal
//! left the allocator unchanged: a free the caller got wrong is a bug that
//! silence would turn into a leak or a corruption later.
//!
//! # Safety
//!
//! axallocator declares `init`, `add_memory` and `dealloc` safe, though
//! they hand memory to the allocator or take it back (its own allocators
//! call unsafe code inside them the same way). Through these traits the
//! caller keeps the contracts of kalloc's unsafe
//! [`BaseAllocator::add_memory`] and
//! [`ByteAllocator::dealloc`]: the region
//! is memory nothing else uses, the pointer came from this allocator. The
//! ID allocator's operations are safe in both interfaces.
//!
//! axallocator is licensed `GPL-3.0-or-later OR Apache-2.0 OR
//! MulanPSL-2.0`; taking it under Apache-2.0 fits this crate's `MIT OR
//! Apache-2.0`, and it is only linked when this feature is on.

use core::alloc::Layout;
use core::ptr::NonNull;

use axallocator as ax;

use crate::byte::{BuddyByteAllocator, PageSource, SlabAllocator, Tlsf};
use crate::id::BitmapIdAllocator;
use crate::page::{BitmapPageAllocator, BuddyPageAllocator, LinearPageAllocator};
use crate::{AllocError, BaseAllocator, ByteAllocator, IdAllocator, PageAllocator};

impl From<AllocError> for ax::AllocError {
    fn from(error: AllocError) -> Self {
        match error {
            AllocError::InvalidParam | AllocError::OutOfRange => ax::AllocError::InvalidParam,
            AllocError::MemoryOverlap => ax::AllocError::MemoryOverlap,
            AllocError::NoMemory => ax::AllocError::NoMemory,
            AllocError::NotAllocated | AllocError::DoubleFree => ax::AllocError::NotAllocated,
        }
    }
}

/// `init` has no result to carry a refusal.
#[cold]
#[inline(never)]
#[track_caller]
fn init_refused(start: usize, size: usize, error: AllocError) -> ! {
    panic!("kalloc: init of [{start:#x}, +{size:#x}) refused: {error}")
}

/// A free has no result to carry a refusal (see the module docs).
#[cold]
#[inline(never)]
#[track_caller]
fn free_refused(what: &str, at: usize, amount: usize, error: AllocError) -> ! {
    panic!("kalloc: free of {amount} {what} at {at:#x} refused: {error}")
}

/// `axallocator::BaseAllocator` for memory allocators, over kalloc's
/// unsafe `init` and `add_memory`.
macro_rules! ax_base {
    ([$($generics:tt)*] $ty:ty) => {
        impl<$($generics)*> ax::BaseAllocator for $ty {
            /// kalloc's `init`; panics if the region is refused.
            #[track_caller]
            fn init(&mut self, start: usize, size: usize) {
                // SAFETY: axallocator declares `init` safe and leaves the
                // region's validity to its caller, who upholds kalloc's
                // `add_memory` contract (module docs).
                if let Err(error) = unsafe { BaseAllocator::init(self, start, size) } {
                    init_refused(start, size, error);
                }
            }

            fn add_memory(&mut self, start: usize, size: usize) -> ax::AllocResult {
                // SAFETY: as in `init`.
                unsafe { BaseAllocator::add_memory(self, start, size) }.map_err(Into::into)
            }
        }
    };
}

/// `axallocator::ByteAllocator` over kalloc's `ByteAllocator`.
macro_rules! ax_bytes {
    ([$($generics:tt)*] $ty:ty) => {
        ax_base!([$($generics)*] $ty);

        impl<$($generics)*> ax::ByteAllocator for $ty {
            fn alloc(&mut self, layout: Layout) -> ax::AllocResult<NonNull<u8>> {
                ByteAllocator::alloc(self, layout).map_err(Into::into)
            }

            /// kalloc's `dealloc`; panics if the free is refused.
            #[track_caller]
            fn dealloc(&mut self, pos: NonNull<u8>, layout: Layout) {
                // SAFETY: axallocator declares `dealloc` safe and leaves it
                // to its caller that `pos` came from this allocator, which
                // is kalloc's `dealloc` contract (module docs).
                if let Err(error) = unsafe { ByteAllocator::dealloc(self, pos, layout) } {
                    free_refused("bytes", pos.addr().get(), layout.size(), error);
                }
            }

            fn total_bytes(&self) -> usize {
                ByteAllocator::total_bytes(self)
            }

            fn used_bytes(&self) -> usize {
                ByteAllocator::used_bytes(self)
            }

            fn available_bytes(&self) -> usize {
                ByteAllocator::available_bytes(self)
            }
        }
    };
}

/// `axallocator::PageAllocator` over kalloc's `PageAllocator`.
macro_rules! ax_pages {
    ([$($generics:tt)*] $ty:ty) => {
        ax_base!([$($generics)*] $ty);

        impl<$($generics)*> ax::PageAllocator for $ty {
            const PAGE_SIZE: usize = <Self as PageAllocator>::PAGE_SIZE;

            fn alloc_pages(
                &mut self,
                num_pages: usize,
                align_pow2: usize,
            ) -> ax::AllocResult<usize> {
                PageAllocator::alloc_pages(self, num_pages, align_pow2).map_err(Into::into)
            }

            /// kalloc's `dealloc_pages`; panics if the free is refused.
            #[track_caller]
            fn dealloc_pages(&mut self, pos: usize, num_pages: usize) {
                if let Err(error) = PageAllocator::dealloc_pages(self, pos, num_pages) {
                    free_refused("pages", pos, num_pages, error);
                }
            }

            fn alloc_pages_at(
                &mut self,
                base: usize,
                num_pages: usize,
                align_pow2: usize,
            ) -> ax::AllocResult<usize> {
                PageAllocator::alloc_pages_at(self, base, num_pages, align_pow2).map_err(Into::into)
            }

            fn total_pages(&self) -> usize {
                PageAllocator::total_pages(self)
            }

            fn used_pages(&self) -> usize {
                PageAllocator::used_pages(self)
            }

            fn available_pages(&self) -> usize {
                PageAllocator::available_pages(self)
            }
        }
    };
}

ax_bytes!([] Tlsf);
ax_bytes!([] BuddyByteAllocator);
ax_bytes!([P: PageSource] SlabAllocator<P>);
ax_pages!(
    [const PAGE_SIZE: usize, const MAX_ORDER: usize]
    BuddyPageAllocator<PAGE_SIZE, MAX_ORDER>
);
ax_pages!([const PAGE_SIZE: usize] BitmapPageAllocator<PAGE_SIZE>);
ax_pages!([const PAGE_SIZE: usize] LinearPageAllocator<PAGE_SIZE>);

/// The IDs `[start, start + size)` are what axallocator's `init` and
/// `add_memory` give an ID allocator.
impl<const WORDS: usize> ax::BaseAllocator for BitmapIdAllocator<WORDS> {
    /// [`add_ids`](IdAllocator::add_ids); panics if the range is refused.
    #[track_caller]
    fn init(&mut self, start: usize, size: usize) {
        if let Err(error) = self.add_ids(start, size) {
            init_refused(start, size, error);
        }
    }

    /// [`add_ids`](IdAllocator::add_ids).
    fn add_memory(&mut self, start: usize, size: usize) -> ax::AllocResult {
        self.add_ids(start, size).map_err(Into::into)
    }
}

impl<const WORDS: usize> ax::IdAllocator for BitmapIdAllocator<WORDS> {
    fn alloc_id(&mut self, count: usize, align_pow2: usize) -> ax::AllocResult<usize> {
        IdAllocator::alloc_id(self, count, align_pow2).map_err(Into::into)
    }

    /// kalloc's `dealloc_id`; panics if the free is refused.
    #[track_caller]
    fn dealloc_id(&mut self, start_id: usize, count: usize) {
        if let Err(error) = IdAllocator::dealloc_id(self, start_id, count) {
            free_refused("IDs", start_id, count, error);
        }
    }

    fn is_allocated(&self, id: usize) -> bool {
        IdAllocator::is_allocated(self, id)
    }

    fn alloc_fixed_id(&mut self, id: usize) -> ax::AllocResult {
        IdAllocator::alloc_fixed_id(self, id).map_err(Into::into)
    }

    fn size(&self) -> usize {
        IdAllocator::size(self)
    }

    fn used(&self) -> usize {
        IdAllocator::used(self)
    }

    fn available(&self) -> usize {
        IdAllocator::available(self)
    }
}
