//! Test scaffolding: a first-fit allocator over a host buffer (the inner
//! allocator under the debug layers), a sink that keeps reports, a clock.

#![allow(dead_code)]

use std::alloc::Layout;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::vec::Vec;

use kalloc::{AllocError, AllocResult, BaseAllocator, ByteAllocator, PageAllocator};
use memdebug::{RecordSlot, Report, ReportSink};

/// First-fit over one host buffer; validates frees exactly (so the tests
/// see the debug layer's reports, not the inner allocator's).
pub struct FirstFit {
    base: *mut u8,
    start: usize,
    size: usize,
    free: BTreeMap<usize, usize>,
    live: BTreeMap<usize, usize>,
    used: usize,
}

impl FirstFit {
    pub fn new() -> Self {
        FirstFit {
            base: std::ptr::null_mut(),
            start: 0,
            size: 0,
            free: BTreeMap::new(),
            live: BTreeMap::new(),
            used: 0,
        }
    }

    fn take(&mut self, size: usize, align: usize) -> AllocResult<usize> {
        let found = self.free.iter().find_map(|(&start, &len)| {
            let aligned = start.next_multiple_of(align);
            (aligned + size <= start + len).then_some((start, len, aligned))
        });
        let (start, len, aligned) = found.ok_or(AllocError::NoMemory)?;
        self.free.remove(&start);
        if aligned > start {
            self.free.insert(start, aligned - start);
        }
        if aligned + size < start + len {
            self.free
                .insert(aligned + size, start + len - aligned - size);
        }
        self.live.insert(aligned, size);
        self.used += size;
        Ok(aligned)
    }

    fn give(&mut self, addr: usize, size: usize) -> AllocResult {
        match self.live.get(&addr) {
            Some(&s) if s == size => {}
            Some(_) => return Err(AllocError::NotAllocated),
            None => return Err(AllocError::NotAllocated),
        }
        self.live.remove(&addr);
        self.used -= size;
        self.free.insert(addr, size);
        // Coalesce with neighbours.
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (&s, &l) in self.free.iter() {
            match merged.last_mut() {
                Some((ms, ml)) if *ms + *ml == s => *ml += l,
                _ => merged.push((s, l)),
            }
        }
        self.free = merged.into_iter().collect();
        Ok(())
    }

    pub fn live_blocks(&self) -> usize {
        self.live.len()
    }
}

impl BaseAllocator for FirstFit {
    unsafe fn add_memory(&mut self, start: usize, size: usize) -> AllocResult {
        assert!(self.size == 0, "FirstFit takes one region");
        self.base = std::ptr::with_exposed_provenance_mut(start);
        self.start = start;
        self.size = size;
        self.free.insert(start, size);
        Ok(())
    }
}

impl ByteAllocator for FirstFit {
    fn alloc(&mut self, layout: Layout) -> AllocResult<NonNull<u8>> {
        let addr = self.take(layout.size(), layout.align())?;
        Ok(NonNull::new(self.base.wrapping_add(addr - self.start)).unwrap())
    }

    unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocResult {
        self.give(ptr.addr().get(), layout.size())
    }

    fn total_bytes(&self) -> usize {
        self.size
    }

    fn used_bytes(&self) -> usize {
        self.used
    }

    fn available_bytes(&self) -> usize {
        self.size - self.used
    }
}

impl PageAllocator for FirstFit {
    const PAGE_SIZE: usize = 4096;

    fn alloc_pages(&mut self, count: usize, align: usize) -> AllocResult<usize> {
        if count == 0 {
            return Err(AllocError::InvalidParam);
        }
        self.take(count * 4096, align.max(4096))
    }

    fn alloc_pages_at(&mut self, addr: usize, count: usize, _align: usize) -> AllocResult<usize> {
        let (&start, &len) = self
            .free
            .range(..=addr)
            .next_back()
            .ok_or(AllocError::NoMemory)?;
        if addr + count * 4096 > start + len {
            return Err(AllocError::NoMemory);
        }
        self.free.remove(&start);
        if addr > start {
            self.free.insert(start, addr - start);
        }
        if addr + count * 4096 < start + len {
            self.free
                .insert(addr + count * 4096, start + len - addr - count * 4096);
        }
        self.live.insert(addr, count * 4096);
        self.used += count * 4096;
        Ok(addr)
    }

    fn dealloc_pages(&mut self, addr: usize, count: usize) -> AllocResult {
        self.give(addr, count * 4096)
    }

    fn total_pages(&self) -> usize {
        self.size / 4096
    }

    fn used_pages(&self) -> usize {
        self.used / 4096
    }
}

/// Memory deliberately leaked for a test's duration, kept reachable from a
/// static so Miri's leak check does not count it.
struct Kept(#[allow(dead_code)] *mut u8);
// SAFETY: the pointers are never dereferenced through this list.
unsafe impl Send for Kept {}
static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

fn keep<T: ?Sized>(ptr: *mut T) {
    KEPT.lock().unwrap().push(Kept(ptr.cast()));
}

/// A page-aligned host buffer that lives for the whole test.
pub fn arena(bytes: usize) -> (usize, usize) {
    let layout = Layout::from_size_align(bytes, 4096).unwrap();
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!ptr.is_null());
    keep(ptr);
    (ptr.expose_provenance(), bytes)
}

fn leak_uninit<T>(len: usize) -> &'static mut [MaybeUninit<T>] {
    let slice = Box::leak(
        (0..len)
            .map(|_| MaybeUninit::uninit())
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    keep(slice as *mut [MaybeUninit<T>]);
    slice
}

/// Memory for a layer's tables, leaked for the test's duration.
pub fn tables(
    slots: usize,
    history: usize,
) -> (
    &'static mut [MaybeUninit<RecordSlot>],
    &'static mut [MaybeUninit<usize>],
) {
    (leak_uninit(slots), leak_uninit(history))
}

/// Keeps every report, and its text.
#[derive(Default)]
pub struct Collect {
    pub reports: Vec<Report>,
    pub texts: Vec<String>,
}

impl ReportSink for Collect {
    fn report(&mut self, report: &Report) {
        self.reports.push(*report);
        self.texts.push(report.to_string());
    }
}

thread_local! {
    static NOW: Cell<u64> = const { Cell::new(0) };
}

/// A clock that advances by one per reading.
pub fn tick() -> u64 {
    NOW.with(|n| {
        n.set(n.get() + 1);
        n.get()
    })
}
