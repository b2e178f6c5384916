//! Red zones and poison of the byte debug layer: where an object's inner
//! block lies, filling and checking its zones, and poisoning a freed
//! object so a write after free shows when it leaves quarantine.

use core::alloc::Layout;
use core::ptr::NonNull;

use kalloc::ByteAllocator;

use super::{DebugByteAllocator, Geometry};
use crate::ledger::Entry;
use crate::pattern::{self, FREE_POISON, REDZONE_ACTIVE, REDZONE_INACTIVE};
use crate::{Action, CallSite, ReportKind, ReportSink, Side};

impl<A: ByteAllocator, S: ReportSink> DebugByteAllocator<'_, A, S> {
    /// Where an object's inner block lies (derived from its record and the
    /// configuration, so records need not store it).
    pub(super) fn geometry(&self, entry: &Entry) -> Geometry {
        let front = self.front_zone(entry.record.align());
        let rear = if self.redzones() {
            self.config.redzone
        } else {
            0
        };
        Geometry {
            inner: entry.ptr.wrapping_sub(front),
            front,
            size: entry.record.size(),
            inner_size: front + entry.record.size() + rear,
        }
    }

    /// The pointer and layout the inner allocator handed the object out as.
    pub(super) fn inner_block(&self, entry: &Entry) -> (NonNull<u8>, Layout) {
        let geometry = self.geometry(entry);
        let align = if self.redzones() {
            entry.record.align().max(8)
        } else {
            entry.record.align()
        };
        let layout = Layout::from_size_align(geometry.inner_size, align)
            .expect("recorded layouts are valid");
        let inner = NonNull::new(geometry.inner).expect("inner blocks are not null");
        (inner, layout)
    }

    /// Checks a live object's red zones; reports and repairs damage.
    pub(super) fn check_live_redzones(&mut self, entry: &Entry, site: CallSite) -> bool {
        self.check_zones(entry, site, REDZONE_ACTIVE)
    }

    pub(super) fn check_zones(&mut self, entry: &Entry, site: CallSite, expected: u8) -> bool {
        let Geometry {
            inner: base,
            front,
            size,
            inner_size,
        } = self.geometry(entry);
        if front == 0 {
            return true;
        }
        let rear_len = inner_size - front - size;
        let key = entry.key();
        let mut clean = true;
        // SAFETY: the whole inner block belongs to this layer's record (live,
        // or freed and held in quarantine), so both zones are readable.
        unsafe {
            if let Some(at) = pattern::first_mismatch(base, front, expected) {
                let found = pattern::found_bytes(base, front, at);
                let kind = ReportKind::RedZone {
                    side: Side::Front,
                    offset: at as isize - front as isize,
                    expected,
                    found,
                };
                self.report(kind, key, site, Some(entry.info()), Action::Repaired);
                pattern::fill(base, front, expected);
                clean = false;
            }
            let rear = base.add(front + size);
            if let Some(at) = pattern::first_mismatch(rear, rear_len, expected) {
                let found = pattern::found_bytes(rear, rear_len, at);
                let kind = ReportKind::RedZone {
                    side: Side::Rear,
                    offset: (size + at) as isize,
                    expected,
                    found,
                };
                self.report(kind, key, site, Some(entry.info()), Action::Repaired);
                pattern::fill(rear, rear_len, expected);
                clean = false;
            }
        }
        clean
    }

    pub(super) fn poison_freed(&mut self, entry: &Entry) {
        let Geometry {
            inner,
            front,
            size,
            inner_size,
        } = self.geometry(entry);
        // SAFETY: the inner block is owned by this still-live record.
        unsafe {
            pattern::fill(inner, front, REDZONE_INACTIVE);
            let object = inner.add(front);
            pattern::fill(object, size, FREE_POISON);
            let rear = inner_size - front - size;
            pattern::fill(object.add(size), rear, REDZONE_INACTIVE);
        }
    }

    /// Checks a quarantined object's poison; reports writes after free.
    pub(super) fn check_poison(&mut self, entry: &Entry) -> bool {
        let object = entry.ptr;
        let size = entry.record.size();
        // SAFETY: the object is held in quarantine by this layer.
        let mismatch = unsafe { pattern::first_mismatch(object, size, FREE_POISON) };
        let mut clean = self.check_zones(entry, entry.record.free_site(), REDZONE_INACTIVE);
        if let Some(offset) = mismatch {
            // SAFETY: as above.
            let found = unsafe { pattern::found_bytes(object, size, offset) };
            let kind = ReportKind::WriteAfterFree {
                offset,
                expected: FREE_POISON,
                found,
            };
            self.report(
                kind,
                entry.key(),
                CallSite::Unknown,
                Some(entry.info()),
                Action::Repaired,
            );
            // SAFETY: as above. Restoring the poison reports each write
            // after free once, not again at every later check.
            unsafe { pattern::fill(object, size, FREE_POISON) };
            clean = false;
        }
        clean
    }
}
