//! In-kernel checks that discovery found what QEMU was started with
//! (`cargo xtask test` passes `-smp` and `-m` as `ktest.harts`/`ktest.mem`).

use super::*;
use crate::ktest::prelude::*;

ktest! {
    fn harts_and_ram_match_the_qemu_command_line() {
        let platform = get();
        let args = crate::ktest::test_args();
        kassert!(!platform.hart_ids().is_empty());
        if let Some(harts) = args.expect_harts {
            kassert_eq!(platform.hart_ids().len(), harts, "harts in the device tree vs -smp");
        }
        let boot_hart = crate::arch::hart::current_id();
        kassert!(boot_hart.is_some_and(|id| platform.hart_ids().contains(&id)), "boot hart {boot_hart:?} not listed");
        if let Some(mem) = args.expect_mem {
            kassert_eq!(platform.ram.total_size(), mem, "RAM in the device tree vs -m");
        }
        kassert!(args.expect_harts.is_some() && args.expect_mem.is_some(), "the runner must pass ktest.harts and ktest.mem");
        Ok(())
    }
}

ktest! {
    fn devices_and_timer_are_described() {
        let platform = get();
        kassert!(platform.timebase_hz > 0);
        kassert!(platform.finisher.is_some(), "no sifive,test device: failures would exit 0");
        kassert!(platform.uart.base != 0 && platform.uart.path_name.starts_with("serial"), "uart {:?}", platform.uart);
        kassert!(platform.ram.as_slice().iter().any(|ram| ram.covers(platform.dtb)), "device tree {} outside RAM", platform.dtb);
        kassert_eq!(platform.dtb.size() as usize, platform.fdt.total_size());
        Ok(())
    }
}

ktest! {
    fn boot_arguments_reach_the_kernel() {
        let args = bootargs::BootArgs::new(get().bootargs);
        kassert!(args.has("ktest.harts") == Ok(true), "bootargs {:?} lack ktest.harts", get().bootargs);
        Ok(())
    }
}
