//! The guard-page sampler in the running kernel: an overflow faults at
//! the first byte past a sampled block, a use after free faults, the
//! diagnosis names the block, bad frees and in-page underflows are
//! reported, and `GlobalAlloc` routes sampled allocations here.

use super::*;
use crate::arch::trap::TrapCause;
use crate::ktest::prelude::*;
use crate::memdiag::debug::bytes_on;
use crate::memdiag::debug::capture::capture;
use crate::memdiag::debug::tests::{enabled, single};
use memdebug::{DebugFlags, ReportKind};
ktest! {
    fn a_sampled_block_faults_past_its_end_and_after_free() {
        if !enabled(DebugFlags::empty())? || !bytes_on() {
            return Ok(());
        }
        let layout = Layout::from_size_align(40, 8).unwrap();
        let ptr = alloc(layout, CallSite::caller()).ok_or(crate::ktest::Failure::new(format_args!("no free sampling slot")))?;
        let start = ptr.addr().get();
        kassert!(owns(start));
        kassert_eq!((start + 40) % PAGE_SIZE, 0, "the block does not end at its page end");
        // SAFETY: the whole object is mapped and ours.
        unsafe { ptr.as_ptr().write_bytes(0x11, 40) };
        let end = start + 40;
        let past_end = alloc::format!("write to the guard page of sampled block {start:#x} (40 bytes) at offset +40");
        expect_fault(
            ExpectedFault { cause: TrapCause::Exception(15), address: end..end + 1, diagnosis: Some(&past_end) },
            // SAFETY: deliberately faults on the guard page; caught.
            || unsafe { (end as *mut u8).write_volatile(0x22) },
        )?;
        let (freed, captured) = capture(|| free(ptr, layout, CallSite::caller()));
        kassert!(freed.is_ok() && captured.len() == 0, "a clean sampled free was refused or reported");
        let after_free = alloc::format!("read from freed sampled block {start:#x} (40 bytes) at offset +8");
        expect_fault(
            ExpectedFault { cause: TrapCause::Exception(13), address: start + 8..start + 9, diagnosis: Some(&after_free) },
            // SAFETY: deliberately faults on the unmapped page; caught.
            || unsafe { core::hint::black_box((start as *const u8).add(8).read_volatile()); },
        )?;
        let (freed, captured) = capture(|| free(ptr, layout, CallSite::caller()));
        kassert_eq!(freed, Err(kalloc::AllocError::DoubleFree), "a double free was not refused as one");
        let report = single(&captured)?;
        kassert_eq!((report.layer, report.kind, report.action), ("kfence", ReportKind::DoubleFree, Action::Refused));
        Ok(())
    }
}

ktest! {
    fn a_sampled_block_s_underflow_inside_its_page_is_reported_on_free() {
        if !enabled(DebugFlags::empty())? || !bytes_on() {
            return Ok(());
        }
        let layout = Layout::from_size_align(40, 8).unwrap();
        let ptr = alloc(layout, CallSite::caller()).ok_or(crate::ktest::Failure::new(format_args!("no free sampling slot")))?;
        // SAFETY: the byte before the object is the canary of its own,
        // mapped page: the provoked underflow.
        unsafe { ptr.as_ptr().sub(1).write_volatile(0x41) };
        let (freed, captured) = capture(|| free(ptr, layout, CallSite::caller()));
        kassert!(freed.is_ok(), "the damaged block was not freed");
        let report = single(&captured)?;
        kassert_eq!(report.layer, "kfence");
        let ReportKind::RedZone { side, offset, expected, found } = report.kind else {
            return Err(crate::ktest::Failure::new(format_args!("not a red-zone report: {report}")));
        };
        kassert_eq!((side, offset, expected, found.as_slice()[0]), (Side::Front, -1, CANARY, 0x41));
        Ok(())
    }
}

ktest! {
    fn sampling_routes_global_allocations_through_the_guard_pages() {
        if !enabled(DebugFlags::empty())? || !bytes_on() {
            return Ok(());
        }
        let live_before = crate::memory::global::stats().live_blocks();
        // Every allocation sampled while this test runs (the other harts
        // are idle); the setting is restored before any check can return.
        configure(1);
        let boxed = alloc::boxed::Box::new([7u64; 16]);
        let sampled = owns(core::ptr::from_ref(&*boxed).addr());
        let during = crate::memory::global::stats().live_blocks();
        drop(boxed);
        configure(0);
        let after = crate::memory::global::stats().live_blocks();
        kassert!(sampled, "memdebug.kfence=1 did not sample a Box");
        kassert_eq!((during, after), (live_before + 1, live_before));
        Ok(())
    }
}
