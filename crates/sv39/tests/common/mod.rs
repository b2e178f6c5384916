//! A host [`FrameSource`]: "physical" frames are host allocations at fake
//! physical addresses; it counts live frames, can be told to run dry, and
//! panics on a double free or a free of a frame it never handed out.

#![allow(dead_code)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use sv39::{FrameSource, PAGE_SIZE, PhysAddr};

#[repr(C, align(4096))]
struct Frame([u8; PAGE_SIZE]);

/// Fake physical base of the frames (as on QEMU `virt`).
const BASE: usize = 0x8000_0000;

#[derive(Default)]
pub struct HostFrames {
    live: BTreeMap<usize, *mut Frame>,
    next_pa: usize,
    /// Most frames live at once; `None` = unlimited.
    pub capacity: Option<usize>,
    pub allocations: usize,
    /// Live table frames, shared so a test can look after the table (and
    /// this source with it) is dropped.
    live_count: Rc<Cell<usize>>,
}

impl HostFrames {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(frames: usize) -> Self {
        let mut source = Self::default();
        source.capacity = Some(frames);
        source
    }

    pub fn live(&self) -> usize {
        self.live.len()
    }

    pub fn live_counter(&self) -> Rc<Cell<usize>> {
        Rc::clone(&self.live_count)
    }
}

// SAFETY: frames are distinct 4 KiB-aligned host allocations, alive until
// `dealloc_frame`, and `phys_to_virt` returns the allocation's own pointer.
unsafe impl FrameSource for HostFrames {
    fn alloc_frame(&mut self) -> Option<PhysAddr> {
        if self
            .capacity
            .is_some_and(|capacity| self.live.len() >= capacity)
        {
            return None;
        }
        // Fill with garbage: the mapper must zero new tables itself.
        let frame = Box::into_raw(Box::new(Frame([0xa5; PAGE_SIZE])));
        let pa = BASE + self.next_pa;
        self.next_pa += PAGE_SIZE;
        self.live.insert(pa, frame);
        self.live_count.set(self.live.len());
        self.allocations += 1;
        Some(PhysAddr::new(pa).unwrap())
    }

    unsafe fn dealloc_frame(&mut self, pa: PhysAddr) {
        let frame = self
            .live
            .remove(&pa.as_usize())
            .unwrap_or_else(|| panic!("double free or foreign frame {pa}"));
        self.live_count.set(self.live.len());
        // SAFETY: allocated by `Box::into_raw` in `alloc_frame`, removed
        // from `live` so never freed twice.
        drop(unsafe { Box::from_raw(frame) });
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> *mut u8 {
        let base = pa.as_usize() & !(PAGE_SIZE - 1);
        let frame = *self
            .live
            .get(&base)
            .unwrap_or_else(|| panic!("access to unallocated frame {pa}"));
        frame.cast::<u8>().wrapping_add(pa.as_usize() - base)
    }
}

impl Drop for HostFrames {
    fn drop(&mut self) {
        for (_, frame) in std::mem::take(&mut self.live) {
            // SAFETY: still-live allocations from `alloc_frame`.
            drop(unsafe { Box::from_raw(frame) });
        }
    }
}

pub fn va(addr: usize) -> sv39::VirtAddr {
    sv39::VirtAddr::new(addr).unwrap()
}

pub fn pa(addr: usize) -> PhysAddr {
    PhysAddr::new(addr).unwrap()
}
