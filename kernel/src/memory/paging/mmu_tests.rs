//! The kernel page table through the real MMU: permissions of the image
//! and the linear map raise the expected faults with the expected
//! diagnosis, and `map`/`unmap`/`protect` on the live table take effect on
//! every hart.

use super::*;
use crate::arch::trap::TrapCause;
use crate::ktest::prelude::*;
use crate::memory::{kernel_map::Perms, layout, pages};
use core::sync::atomic::AtomicUsize;

const LOAD_PAGE_FAULT: TrapCause = TrapCause::Exception(13);
const STORE_PAGE_FAULT: TrapCause = TrapCause::Exception(15);
const FETCH_PAGE_FAULT: TrapCause = TrapCause::Exception(12);

ktest! {
    fn writing_to_rodata_faults_and_is_named() {
        static CONSTANT: u64 = 0x0123_4567_89ab_cdef;
        let addr = core::hint::black_box(&raw const CONSTANT) as usize;
        kassert!(layout::sections()[1].virt.contains(&addr), "CONSTANT at {addr:#x} is not in .rodata");
        expect_fault(
            ExpectedFault { cause: STORE_PAGE_FAULT, address: addr..addr + 8, diagnosis: Some("write to .rodata") },
            || {
                // SAFETY: deliberately faults; caught.
                unsafe { core::ptr::write_volatile(addr as *mut u64, 0) };
            },
        )?;
        kassert_eq!(CONSTANT, 0x0123_4567_89ab_cdef);
        Ok(())
    }
}

ktest! {
    fn executing_from_the_heap_faults_and_is_named() {
        // `ret` (c.jr ra) twice: harmless if the fetch were allowed.
        let code = alloc::boxed::Box::new([0x8082u16; 8]);
        let addr = code.as_ptr() as usize;
        let result = expect_fault(
            ExpectedFault {
                cause: FETCH_PAGE_FAULT,
                address: addr..addr + 2,
                diagnosis: Some("execute from the linear map of RAM (RW-, never executable)"),
            },
            || {
                // SAFETY: deliberately jumps into data; the fetch faults
                // and is caught.
                let function: extern "C" fn() = unsafe { core::mem::transmute(addr) };
                function();
            },
        );
        drop(code);
        result
    }
}

ktest! {
    fn touching_the_guard_page_below_this_hart_s_stack_faults_and_is_named() {
        let me = crate::arch::hart::current();
        let guard = layout::boot_stack_guard();
        kassert_eq!(me.slot(), crate::arch::hart::BOOT_SLOT, "tests run on the boot hart");
        let addr = guard.end - 8;
        let expected = alloc::format!("guard page below hart {}'s stack", me.hart_id());
        expect_fault(
            ExpectedFault { cause: LOAD_PAGE_FAULT, address: addr..addr + 8, diagnosis: Some(&expected) },
            || {
                // SAFETY: deliberately faults; caught.
                unsafe { core::ptr::read_volatile(addr as *const u64) };
            },
        )
    }
}

static DEPTH: AtomicUsize = AtomicUsize::new(0);

/// Far more levels than any kernel stack holds: the guard page stops it.
const RECURSION_LIMIT: usize = 1 << 20;

#[inline(never)]
fn recurse(level: usize) -> usize {
    if core::hint::black_box(level) >= RECURSION_LIMIT {
        return level;
    }
    let mut frame = [level as u8; 256];
    core::hint::black_box(&mut frame);
    DEPTH.store(level, Ordering::Relaxed);
    recurse(level + 1) + usize::from(frame[0])
}

ktest! {
    fn a_real_stack_overflow_hits_the_guard_page_and_is_reported() {
        let me = crate::arch::hart::current();
        let guard = layout::boot_stack_guard();
        let expected = alloc::format!("guard page below hart {}'s stack", me.hart_id());
        DEPTH.store(0, Ordering::Relaxed);
        expect_fault(
            ExpectedFault { cause: STORE_PAGE_FAULT, address: guard.clone(), diagnosis: Some(&expected) },
            || {
                core::hint::black_box(recurse(0));
            },
        )?;
        kassert!(DEPTH.load(Ordering::Relaxed) > 100, "overflowed after only {} levels", DEPTH.load(Ordering::Relaxed));
        Ok(())
    }
}

/// A window of the kernel half outside the linear map (root index 0x140)
/// that nothing else maps.
const WINDOW: usize = 0xffff_ffd0_0000_0000;

ktest! {
    fn a_frame_mapped_twice_is_seen_through_both_addresses() {
        let frame = pages::alloc(1, arch::PAGE_SIZE).map_err(|e| crate::ktest::Failure::new(format_args!("frame: {e}")))?;
        let phys = arch::virt_to_phys(frame);
        let (first, second) = (WINDOW, WINDOW + 16 * arch::PAGE_SIZE);
        map_page(first, phys, Perms::Rw).map_err(|e| crate::ktest::Failure::new(format_args!("map first: {e}")))?.log();
        map_page(second, phys, Perms::Rw).map_err(|e| crate::ktest::Failure::new(format_args!("map second: {e}")))?.log();
        // SAFETY: both addresses map the frame just taken, RW.
        unsafe {
            core::ptr::write_volatile(first as *mut u64, 0xfeed_f00d);
            kassert_eq!(core::ptr::read_volatile(second as *const u64), 0xfeed_f00d);
            core::ptr::write_volatile((second + 8) as *mut u64, 0xbeef);
            kassert_eq!(core::ptr::read_volatile((first + 8) as *const u64), 0xbeef);
            kassert_eq!(core::ptr::read_volatile((frame + 8) as *const u64), 0xbeef);
        }
        unmap_page(second).map_err(|e| crate::ktest::Failure::new(format_args!("unmap: {e}")))?.log();
        expect_fault(
            ExpectedFault { cause: LOAD_PAGE_FAULT, address: second..second + 8, diagnosis: Some("unmapped") },
            || {
                // SAFETY: deliberately faults after the unmap; caught.
                unsafe { core::ptr::read_volatile(second as *const u64) };
            },
        )?;
        protect_page(first, Perms::Ro).map_err(|e| crate::ktest::Failure::new(format_args!("protect: {e}")))?.log();
        // SAFETY: still mapped, now read-only: reading is fine.
        kassert_eq!(unsafe { core::ptr::read_volatile(first as *const u64) }, 0xfeed_f00d);
        expect_fault(
            ExpectedFault { cause: STORE_PAGE_FAULT, address: first..first + 8, diagnosis: None },
            || {
                // SAFETY: deliberately faults on the read-only page; caught.
                unsafe { core::ptr::write_volatile(first as *mut u64, 1) };
            },
        )?;
        unmap_page(first).map_err(|e| crate::ktest::Failure::new(format_args!("unmap: {e}")))?.log();
        pages::free(frame, 1).map_err(|e| crate::ktest::Failure::new(format_args!("free: {e}")))?;
        Ok(())
    }
}

/// Per slot: 1 = the hart's own guard page faulted with the right cause,
/// address and region; 2 = something else happened.
static GUARD_CHECK: [AtomicUsize; crate::platform::MAX_HARTS] =
    [const { AtomicUsize::new(0) }; crate::platform::MAX_HARTS];

fn touch_own_guard_page(slot: usize) {
    let me = crate::arch::hart::current();
    let guard = if slot == crate::arch::hart::BOOT_SLOT {
        layout::boot_stack_guard()
    } else {
        crate::memory::stacks::guard_of(me)
    };
    let addr = guard.start + 64;
    let caught = crate::arch::fault_catch::catch_fault(|| {
        // SAFETY: deliberately faults; caught.
        unsafe { core::ptr::read_volatile(addr as *const u64) };
    });
    let ok = caught.is_some_and(|fault| {
        TrapCause::from_scause(fault.scause) == LOAD_PAGE_FAULT
            && fault.stval == addr
            && crate::memdiag::fault_report::region_of(fault.stval)
                == crate::memdiag::fault_report::Region::StackGuard {
                    hart_id: me.hart_id(),
                }
    });
    GUARD_CHECK[slot].store(if ok { 1 } else { 2 }, Ordering::Release);
}

ktest! {
    fn every_hart_s_stack_guard_page_faults_on_that_hart_and_is_named() {
        for check in &GUARD_CHECK {
            check.store(0, Ordering::Relaxed);
        }
        crate::arch::smp::run_on_all_harts(touch_own_guard_page);
        for block in crate::arch::hart::online() {
            kassert_eq!(
                GUARD_CHECK[block.slot()].load(Ordering::Acquire),
                1,
                "hart {}: touching its guard page did not fault as `guard page below hart {}'s stack`",
                block.hart_id(),
                block.hart_id()
            );
        }
        Ok(())
    }
}
