//! The byte debug layer as a [`ByteAllocator`]: the trait methods forward
//! to the checked paths with the caller's location as the call site.

use core::alloc::Layout;
use core::ptr::NonNull;

use kalloc::{AllocError, AllocResult, BaseAllocator, ByteAllocator};

use super::DebugByteAllocator;
use crate::{Action, CallSite, ReportSink};

impl<A: ByteAllocator, S: ReportSink> BaseAllocator for DebugByteAllocator<'_, A, S> {
    unsafe fn init(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.init(start, size)? };
        self.ledger.add_region(start, size);
        Ok(())
    }

    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.add_memory(start, size)? };
        self.ledger.add_region(start, size);
        Ok(())
    }
}

impl<A: ByteAllocator, S: ReportSink> ByteAllocator for DebugByteAllocator<'_, A, S> {
    #[track_caller]
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        self.alloc_at(layout, CallSite::caller())
    }

    #[track_caller]
    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        // SAFETY: forwarded from the caller.
        unsafe { self.dealloc_at(ptr, layout, CallSite::caller()) }
    }

    #[track_caller]
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_size: usize,
    ) -> AllocResult<NonNull<u8>> {
        let site = CallSite::caller();
        if !self.debugging() {
            // SAFETY: forwarded from the caller.
            let moved = unsafe { self.inner.realloc(ptr, old_layout, new_size) };
            if moved.is_ok() {
                // The block keeps counting once, at its new size.
                let counters = &mut self.ledger.counters;
                counters.live_size = counters.live_size - old_layout.size() + new_size;
            }
            return moved;
        }
        // Validate the old block before allocating, so a bad realloc is
        // refused without side effects.
        if let Err(refusal) = self.ledger.check_free(
            ptr.addr().get(),
            old_layout.size(),
            Some(old_layout.align()),
        ) {
            self.ledger.counters.refused_frees += 1;
            self.report(
                refusal.kind,
                ptr.addr().get(),
                site,
                refusal.block,
                Action::Refused,
            );
            return Err(refusal.error);
        }
        // Always move: a stale pointer to the old block then reads poison.
        let new_layout = Layout::from_size_align(new_size, old_layout.align())
            .map_err(|_| AllocError::InvalidParam)?;
        let new_ptr = self.alloc_at(new_layout, site)?;
        // SAFETY: the old block is live (checked above) and the new one is
        // fresh; both hold at least `min(old, new)` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                new_ptr.as_ptr(),
                old_layout.size().min(new_size),
            );
            self.dealloc_at(ptr, old_layout, site)?;
        }
        Ok(new_ptr)
    }

    fn total_bytes(&self) -> usize {
        self.inner.total_bytes()
    }

    fn used_bytes(&self) -> usize {
        self.inner.used_bytes() - self.held_bytes
    }

    fn available_bytes(&self) -> usize {
        self.inner.available_bytes() + self.held_bytes
    }
}
