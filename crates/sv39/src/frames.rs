//! The injected source of page-table frames and the way to reach them.

use crate::PhysAddr;

/// Where page-table pages come from and how the mapper reads them.
///
/// The kernel implements it over its page allocator and linear map; host
/// tests back "physical" frames with host memory.
///
/// # Safety
/// `alloc_frame` must return 4 KiB-aligned frames that nothing else uses
/// until they are passed to `dealloc_frame`, and `phys_to_virt` must return
/// a pointer through which the whole frame at `pa` can be read and written
/// for as long as the frame is allocated.
pub unsafe trait FrameSource {
    /// A free 4 KiB frame (its contents need not be zeroed), or `None`.
    fn alloc_frame(&mut self) -> Option<PhysAddr>;

    /// Returns a frame obtained from `alloc_frame`.
    ///
    /// # Safety
    /// `pa` came from `alloc_frame` of this source and is not in use
    /// anymore (no table entry points to it, no hart walks it).
    unsafe fn dealloc_frame(&mut self, pa: PhysAddr);

    /// A pointer to the frame at `pa` in the current address space.
    fn phys_to_virt(&self, pa: PhysAddr) -> *mut u8;
}
