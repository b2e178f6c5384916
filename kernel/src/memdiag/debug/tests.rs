//! Every misuse memdebug catches, provoked in the running kernel through
//! the global allocator and through the page allocator, with the reports
//! captured (the `Report` values, not console text) and every field
//! checked.
//!
//! They run fully under `memdebug=all` (a configuration of the test
//! command). Under another `memdebug=` they check what that setting
//! promises: with `off`, that no layer is installed and nothing is
//! tracked; a provocation whose check is off is not attempted (it would
//! corrupt the allocator the layer is not there to protect).

use super::capture::{Captured, capture};
use super::config::tracks;
use super::site::at_site;
use super::{bytes_on, flags, leak, oom, pages_on, validate};
use crate::arch::PAGE_SIZE;
use crate::ktest::prelude::*;
use crate::memory::pages;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;
use memdebug::{
    Action, CallSite, DebugFlags, FREE_POISON, PAGE_FREE_POISON, REDZONE_ACTIVE, Report,
    ReportKind, Side,
};

/// Whether every flag in `needed` is on; with `memdebug=off`, checks that
/// the layers really are absent first.
#[allow(clippy::result_large_err, reason = "the failure type of every test")]
pub(super) fn enabled(needed: DebugFlags) -> Result<bool, crate::ktest::Failure> {
    if flags().is_empty() {
        kassert!(
            !bytes_on() && !pages_on(),
            "memdebug=off but a layer is installed"
        );
        kassert!(
            leak::checkpoint().is_none(),
            "memdebug=off but tracking answers"
        );
    }
    Ok(flags().contains(needed))
}

/// The source line of a call site, if it is one in this file.
fn line_here(site: CallSite) -> Option<u32> {
    match site {
        CallSite::Source(location) if location.file() == file!() => Some(location.line()),
        _ => None,
    }
}

/// The single report `captured` holds.
#[allow(clippy::result_large_err, reason = "the failure type of every test")]
pub(super) fn single(captured: &Captured) -> Result<Report, crate::ktest::Failure> {
    let Some(report) = captured.single() else {
        return Err(crate::ktest::Failure::new(format_args!(
            "expected exactly one report, got {} (+{} dropped)",
            captured.len(),
            captured.dropped
        )));
    };
    Ok(*report)
}

fn raw_alloc(layout: Layout) -> NonNull<u8> {
    // SAFETY: every layout used here has a non-zero size.
    NonNull::new(unsafe { alloc::alloc::alloc(layout) }).expect("test allocation failed")
}

/// Frees through the global allocator.
///
/// # Safety
/// As `alloc::alloc::dealloc`, except that with the byte layer on, a bad
/// pointer or layout is refused with a report instead of being undefined.
unsafe fn raw_free(ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: forwarded from the caller.
    unsafe { alloc::alloc::dealloc(ptr.as_ptr(), layout) }
}

ktest! {
    fn global_double_free_is_refused_with_a_report() {
        // The sites are checked, so 48-byte blocks must be tracked.
        if !enabled(DebugFlags::TRACK)? || !tracks(48) {
            return Ok(());
        }
        let layout = Layout::from_size_align(48, 8).unwrap();
        let (ptr, alloc_line) = (at_site(|| raw_alloc(layout)), line!());
        // SAFETY: `ptr` was just allocated with `layout`.
        let free_line = { at_site(|| unsafe { raw_free(ptr, layout) }); line!() };
        // SAFETY: none needed with the byte layer on: it refuses this.
        let ((), captured) = capture(|| at_site(|| unsafe { raw_free(ptr, layout) }));
        let again_line = line!() - 1;
        let report = single(&captured)?;
        kassert_eq!(report.layer, "kheap");
        kassert_eq!(report.kind, ReportKind::DoubleFree);
        kassert_eq!(report.addr, ptr.addr().get());
        kassert_eq!(line_here(report.site), Some(again_line), "who: {}", report.site);
        kassert_eq!(report.action, Action::Refused);
        let block = report.block.ok_or(crate::ktest::Failure::new(format_args!("no block")))?;
        kassert_eq!((block.start, block.size, block.align), (ptr.addr().get(), 48, 8));
        kassert_eq!(line_here(block.alloc_site), Some(alloc_line), "allocated by {}", block.alloc_site);
        kassert_eq!(line_here(block.free_site), Some(free_line), "freed by {}", block.free_site);
        kassert!(block.free_time >= block.alloc_time);
        // The refusal changed nothing: the allocator still works.
        let fresh = raw_alloc(layout);
        // SAFETY: just allocated.
        unsafe { raw_free(fresh, layout) };
        Ok(())
    }
}

ktest! {
    fn global_foreign_and_interior_frees_are_refused() {
        if !enabled(DebugFlags::empty())? || !bytes_on() {
            return Ok(());
        }
        static NOT_HEAP: [u8; 64] = [0; 64];
        let layout = Layout::from_size_align(64, 8).unwrap();
        let foreign = NonNull::from(&NOT_HEAP).cast::<u8>();
        // SAFETY: refused by the byte layer (the kernel image is no heap).
        let ((), captured) = capture(|| unsafe { raw_free(foreign, layout) });
        let report = single(&captured)?;
        kassert_eq!(report.kind, ReportKind::OutOfRange);
        kassert_eq!(report.addr, foreign.addr().get());
        kassert_eq!(report.action, Action::Refused);
        kassert!(report.block.is_none());

        let ptr = raw_alloc(layout);
        // SAFETY: an interior pointer: refused by the byte layer.
        let ((), captured) = capture(|| unsafe { raw_free(ptr.add(8), layout) });
        let report = single(&captured)?;
        kassert_eq!(report.kind, ReportKind::InteriorFree { offset: 8 });
        kassert_eq!(report.addr, ptr.addr().get() + 8);
        kassert_eq!(report.block.map(|b| b.start), Some(ptr.addr().get()));
        kassert_eq!(report.action, Action::Refused);
        // The block itself is intact and frees normally.
        // SAFETY: `ptr` is the live block `raw_alloc` returned with `layout`.
        let ((), captured) = capture(|| unsafe { raw_free(ptr, layout) });
        kassert_eq!(captured.len(), 0);
        Ok(())
    }
}

ktest! {
    fn global_wrong_size_free_is_refused() {
        if !enabled(DebugFlags::empty())? || !bytes_on() {
            return Ok(());
        }
        let layout = Layout::from_size_align(48, 8).unwrap();
        let wrong = Layout::from_size_align(64, 8).unwrap();
        let ptr = raw_alloc(layout);
        // SAFETY: the wrong layout is refused by the byte layer.
        let ((), captured) = capture(|| unsafe { raw_free(ptr, wrong) });
        let report = single(&captured)?;
        kassert_eq!(report.kind, ReportKind::WrongLayout { size: 64, align: 8 });
        kassert_eq!(report.block.map(|b| (b.size, b.align)), Some((48, 8)));
        kassert_eq!(report.action, Action::Refused);
        // SAFETY: the right layout this time.
        let ((), captured) = capture(|| unsafe { raw_free(ptr, layout) });
        kassert_eq!(captured.len(), 0, "the correct free was refused");
        Ok(())
    }
}

ktest! {
    fn global_write_after_free_is_reported_with_offset_and_bytes() {
        if !enabled(DebugFlags::POISON | DebugFlags::TRACK)? || !tracks(64) {
            return Ok(());
        }
        let layout = Layout::from_size_align(64, 8).unwrap();
        for (offset, value) in [(0usize, 0x11u8), (17, 0x22), (63, 0x33)] {
            let ptr = raw_alloc(layout);
            // SAFETY: freed once, by its owner.
            unsafe { raw_free(ptr, layout) };
            // SAFETY: the block sits in the layer's quarantine (poison on),
            // so the memory is still the layer's: writing it is the bug
            // being provoked, not a use of someone else's memory.
            unsafe { ptr.as_ptr().add(offset).write_volatile(value) };
            let (damaged, captured) = capture(validate);
            kassert_eq!(damaged, 1, "offset {offset}");
            let report = single(&captured)?;
            let ReportKind::WriteAfterFree { offset: found_at, expected, found } = report.kind else {
                return Err(crate::ktest::Failure::new(format_args!("not a write after free: {report}")));
            };
            kassert_eq!(found_at, offset);
            kassert_eq!(expected, FREE_POISON);
            kassert_eq!(found.as_slice()[0], value);
            kassert_eq!(report.addr, ptr.addr().get());
            kassert_eq!(report.action, Action::Repaired);
            kassert!(report.block.is_some_and(|b| b.free_site.is_known() && b.size == 64));
            // Restore the poison so the block leaves quarantine quietly.
            // SAFETY: as above.
            unsafe { ptr.as_ptr().add(offset).write_volatile(FREE_POISON) };
        }
        Ok(())
    }
}

ktest! {
    fn global_one_byte_overflow_and_underflow_hit_the_red_zones() {
        if !enabled(DebugFlags::REDZONE)? {
            return Ok(());
        }
        let layout = Layout::from_size_align(40, 8).unwrap();
        for (offset, side) in [(40isize, Side::Rear), (-1, Side::Front)] {
            let ptr = raw_alloc(layout);
            // SAFETY: the byte lies in the red zone the layer placed around
            // the object (part of the same inner block): the provoked bug.
            unsafe { ptr.as_ptr().offset(offset).write_volatile(0x41) };
            // SAFETY: freed once, by its owner, with its layout.
            let ((), captured) = capture(|| unsafe { raw_free(ptr, layout) });
            let report = single(&captured)?;
            let ReportKind::RedZone { side: found_side, offset: found_at, expected, found } = report.kind else {
                return Err(crate::ktest::Failure::new(format_args!("not a red-zone report: {report}")));
            };
            kassert_eq!(found_side, side);
            kassert_eq!(found_at, offset);
            kassert_eq!(expected, REDZONE_ACTIVE);
            kassert_eq!(found.as_slice()[0], 0x41);
            kassert_eq!(report.addr, ptr.addr().get());
            kassert_eq!(report.action, Action::Repaired);
        }
        Ok(())
    }
}

ktest! {
    fn page_double_foreign_interior_and_wrong_size_frees_are_refused() {
        if !enabled(DebugFlags::TRACK)? {
            return Ok(());
        }
        let (block, alloc_line) = (pages::alloc(2, PAGE_SIZE).map_err(|e| crate::ktest::Failure::new(format_args!("{e}")))?, line!());
        let (wrong, captured) = capture(|| pages::free(block, 1));
        kassert!(wrong.is_err());
        let report = single(&captured)?;
        kassert_eq!(report.layer, "pages");
        kassert_eq!(report.kind, ReportKind::WrongLayout { size: 1, align: PAGE_SIZE });
        kassert_eq!(report.block.map(|b| b.size), Some(2));
        kassert_eq!(line_here(report.block.unwrap().alloc_site), Some(alloc_line));

        let (interior, captured) = capture(|| pages::free(block + PAGE_SIZE, 1));
        kassert!(interior.is_err());
        kassert_eq!(single(&captured)?.kind, ReportKind::InteriorFree { offset: PAGE_SIZE });

        static NOT_RAM: [u8; 8] = [0; 8];
        let (foreign, captured) = capture(|| pages::free(NOT_RAM.as_ptr().addr() & !(PAGE_SIZE - 1), 1));
        kassert!(foreign.is_err());
        kassert_eq!(single(&captured)?.kind, ReportKind::OutOfRange);

        kassert!(pages::free(block, 2).is_ok(), "the right free was refused");
        let free_line = line!() - 1;
        let (double, captured) = capture(|| pages::free(block, 2));
        let double_line = line!() - 1;
        kassert!(double.is_err());
        let report = single(&captured)?;
        kassert_eq!(report.kind, ReportKind::DoubleFree);
        kassert_eq!(report.addr, block);
        kassert_eq!(line_here(report.site), Some(double_line), "who: {}", report.site);
        kassert_eq!(report.action, Action::Refused);
        let info = report.block.unwrap();
        kassert_eq!(line_here(info.alloc_site), Some(alloc_line));
        kassert_eq!(line_here(info.free_site), Some(free_line));
        Ok(())
    }
}

ktest! {
    fn page_write_after_free_is_reported_with_offset() {
        if !enabled(DebugFlags::POISON | DebugFlags::TRACK)? {
            return Ok(());
        }
        for (offset, value) in [(0usize, 0x11u8), (100, 0x22), (PAGE_SIZE - 1, 0x33)] {
            let page = pages::alloc(1, PAGE_SIZE).map_err(|e| crate::ktest::Failure::new(format_args!("{e}")))?;
            kassert!(pages::free(page, 1).is_ok());
            let byte = page as *mut u8;
            // SAFETY: the page is held in the page layer's quarantine and
            // lies in the linear map; the write is the provoked bug.
            unsafe { byte.add(offset).write_volatile(value) };
            let (damaged, captured) = capture(validate);
            kassert_eq!(damaged, 1);
            let report = single(&captured)?;
            kassert_eq!(report.layer, "pages");
            let ReportKind::WriteAfterFree { offset: found_at, expected, found } = report.kind else {
                return Err(crate::ktest::Failure::new(format_args!("not a write after free: {report}")));
            };
            kassert_eq!((found_at, expected, found.as_slice()[0]), (offset, PAGE_FREE_POISON, value));
            kassert_eq!(report.addr, page);
            // SAFETY: as above; restores the poison.
            unsafe { byte.add(offset).write_volatile(PAGE_FREE_POISON) };
        }
        Ok(())
    }
}

ktest! {
    fn leak_checkpoint_names_the_leaked_vec_and_its_call_site() {
        if !enabled(DebugFlags::TRACK)? || !tracks(777) {
            return Ok(());
        }
        let checkpoint = leak::checkpoint().ok_or(crate::ktest::Failure::new(format_args!("no checkpoint")))?;
        let (leaked, line) = (at_site(|| Vec::<u8>::with_capacity(1000)), line!());
        let (bytes, _) = leak::outstanding_since(checkpoint);
        let found = bytes.sites().iter().find(|s| line_here(s.site) == Some(line));
        kassert!(found.is_some_and(|s| s.count == 1 && s.size == 1000), "leak not named: {bytes}");
        log::info!("leak checkpoint: {bytes}");
        // Without a scope, the site is the code address that allocated.
        let unscoped = Vec::<u8>::with_capacity(777);
        let (bytes, _) = leak::outstanding_since(checkpoint);
        kassert!(bytes.sites().iter().any(|s| matches!(s.site, CallSite::Code(pc) if pc != 0) && s.size == 777), "{bytes}");
        drop(unscoped);
        drop(leaked);
        let (bytes, _) = leak::outstanding_since(checkpoint);
        kassert!(bytes.sites().iter().all(|s| line_here(s.site) != Some(line)), "freed block still listed: {bytes}");
        Ok(())
    }
}

ktest! {
    fn leak_watch_names_a_site_that_keeps_growing() {
        if !enabled(DebugFlags::TRACK)? || !tracks(256 * 1024) {
            return Ok(());
        }
        let mut watch = memdebug::LeakWatch::<{ leak::SITES }>::new();
        let mut hoard: Vec<Vec<u8>> = Vec::with_capacity(8);
        let mut named = 0;
        for _ in 0..=leak::LEAK_STREAK {
            let (block, line) = (at_site(|| Vec::<u8>::with_capacity(256 * 1024)), line!());
            hoard.push(block);
            leak::watch_step(&mut watch, |site, streak| {
                if line_here(site.site) == Some(line) {
                    named = streak;
                }
            });
        }
        kassert_eq!(named, leak::LEAK_STREAK, "the growing site was not named");
        drop(hoard);
        Ok(())
    }
}

ktest! {
    fn exhausting_memory_logs_an_oom_report_and_the_kernel_goes_on() {
        const BLOCK: usize = 1 << 20;
        let before = oom::reports();
        let mut hoard: Vec<Vec<u8>> = Vec::with_capacity(4096);
        let (failed_line, captured) = capture(|| loop {
            let mut block = Vec::new();
            let (result, line) = (at_site(|| block.try_reserve_exact(BLOCK)), line!());
            if result.is_err() || hoard.len() == hoard.capacity() {
                return line;
            }
            hoard.push(block);
        });
        kassert!(hoard.len() < hoard.capacity(), "4 GiB allocated without a failure");
        kassert_eq!(oom::reports(), before + 1);
        let report = oom::last().unwrap();
        // 256 pages; 258 with the red zones (a page in front, 16 bytes behind).
        let order = if flags().contains(DebugFlags::REDZONE) { 9 } else { 8 };
        kassert_eq!((report.size, report.align, report.order), (BLOCK, 1, order));
        kassert!(report.free_pages <= crate::memory::pages::usage().1, "{report:?}");
        if bytes_on() {
            kassert_eq!(line_here(report.site), Some(failed_line));
            let layer_report = captured.reports().find(|r| r.layer == "kheap");
            kassert!(
                layer_report.is_some_and(|r| matches!(r.kind, ReportKind::OutOfMemory { size, .. } if size == BLOCK) && r.action == Action::Failed),
                "the byte layer reported no OOM"
            );
        }
        if flags().contains(DebugFlags::TRACK) {
            let top = report.top_site.unwrap();
            kassert!(top.size >= BLOCK * hoard.len() / 2, "top site {top:?}");
        }
        drop(hoard);
        // The kernel kept running and the memory is back.
        let mut again = Vec::<u8>::new();
        kassert!(again.try_reserve_exact(BLOCK).is_ok(), "no memory after the hoard was freed");
        Ok(())
    }
}

ktest! {
    fn the_timer_driven_leak_watch_logs_a_site_that_keeps_growing() {
        if !enabled(DebugFlags::LEAKCHECK)? || !tracks(256 * 1024) {
            return Ok(());
        }
        let mut hoard: Vec<Vec<u8>> = Vec::with_capacity(8);
        let (grow, line) = (|| at_site(|| Vec::<u8>::with_capacity(256 * 1024)), line!());
        for _ in 0..=leak::LEAK_STREAK + 1 {
            hoard.push(grow());
            // Wait for the boot hart's timer to run the next check.
            let seen = leak::checks();
            kassert!(wait_until(10, || leak::checks() != seen), "no leak check within 10 s (memdebug.leakwatch too long?)");
        }
        let named = leak::last_named();
        kassert!(
            named.is_some_and(|(site, streak)| line_here(site.site) == Some(line) && streak >= leak::LEAK_STREAK),
            "the periodic watch did not name the growing site: {named:?}"
        );
        drop(hoard);
        Ok(())
    }
}
