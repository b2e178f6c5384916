//! The expected-fault mechanism itself: faults are caught, matched and
//! diagnosed; a mismatch fails the test.

use super::*;
use crate::arch::trap::TrapCause;
use crate::ktest::prelude::*;

/// A low-half gigabyte no table maps (the boot table maps gigabytes 0 and
/// 2 of the low half only; the kernel table none).
const UNMAPPED: usize = 0x4000_1000;

ktest! {
    fn a_load_from_an_unmapped_address_is_caught_and_diagnosed() {
        expect_fault(
            ExpectedFault {
                cause: TrapCause::Exception(13),
                address: UNMAPPED..UNMAPPED + 8,
                diagnosis: Some("unmapped"),
            },
            || {
                // SAFETY: deliberately faults; the fault is caught.
                unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
            },
        )
    }
}

ktest! {
    fn a_store_to_an_unmapped_address_is_caught_and_diagnosed() {
        expect_fault(
            ExpectedFault {
                cause: TrapCause::Exception(15),
                address: UNMAPPED..UNMAPPED + 8,
                diagnosis: Some("unmapped"),
            },
            || {
                // SAFETY: deliberately faults; the fault is caught.
                unsafe { core::ptr::write_volatile(UNMAPPED as *mut u64, 0x5a) };
            },
        )
    }
}

ktest! {
    fn an_illegal_instruction_is_caught() {
        expect_fault(
            ExpectedFault {
                cause: TrapCause::Exception(2),
                address: 0..usize::MAX,
                diagnosis: None,
            },
            || {
                // SAFETY: the exception is expected and caught.
                unsafe { crate::arch::cpu::raise_illegal_instruction() };
            },
        )
    }
}

ktest! {
    fn a_fault_that_does_not_happen_or_differs_fails_the_check() {
        let no_fault = expect_fault(
            ExpectedFault { cause: TrapCause::Exception(13), address: 0..usize::MAX, diagnosis: None },
            || {},
        );
        kassert!(no_fault.is_err(), "a missing fault passed");
        let wrong_kind = expect_fault(
            ExpectedFault { cause: TrapCause::Exception(15), address: UNMAPPED..UNMAPPED + 8, diagnosis: None },
            || {
                // SAFETY: deliberately faults (a load, not the store expected).
                unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
            },
        );
        kassert!(wrong_kind.is_err(), "a load fault passed as a store fault");
        let wrong_place = expect_fault(
            ExpectedFault { cause: TrapCause::Exception(13), address: 0..8, diagnosis: None },
            || {
                // SAFETY: deliberately faults, elsewhere than expected.
                unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
            },
        );
        kassert!(wrong_place.is_err(), "a fault at the wrong address passed");
        Ok(())
    }
}

ktest! {
    fn diagnosis_names_stack_guards_and_sections() {
        for block in crate::arch::hart::online() {
            let guard = if block.slot() == crate::arch::hart::BOOT_SLOT {
                layout::boot_stack_guard()
            } else {
                stacks::guard_of(block)
            };
            kassert_eq!(region_of(guard.start), Region::StackGuard { hart_id: block.hart_id() });
            kassert_eq!(region_of(guard.end), region_of(block.stack().start));
            let trap_guard = stacks::trap_guard_of(block);
            kassert!(!trap_guard.is_empty(), "hart {} has no trap stack", block.hart_id());
            kassert_eq!(region_of(trap_guard.start), Region::TrapStackGuard { hart_id: block.hart_id() });
        }
        let rodata = layout::sections()[1].virt.start;
        let text = diagnose(rodata, Access::Store);
        kassert_eq!(text.region, Region::Section(".rodata"));
        Ok(())
    }
}
