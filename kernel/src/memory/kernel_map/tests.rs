//! The plan of the kernel address space on this machine: W^X, sections
//! with their permissions, guard pages left out, all other RAM and the
//! devices in.

use super::*;
use crate::ktest::prelude::*;

ktest! {
    fn no_mapping_is_both_writable_and_executable_and_none_overlap() {
        let plan = plan().map_err(|e| crate::ktest::Failure::new(format_args!("plan: {e}")))?;
        let items = plan.as_slice();
        for (i, a) in items.iter().enumerate() {
            kassert!(!(a.perms.writable() && a.perms.executable()), "{} {} is W+X", a.what, a.phys);
            kassert!(a.phys.start() % PAGE_SIZE as u64 == 0 && a.phys.end() % PAGE_SIZE as u64 == 0, "{} {} unaligned", a.what, a.phys);
            for b in &items[i + 1..] {
                kassert!(!a.phys.overlaps(b.phys), "{} {} overlaps {} {}", a.what, a.phys, b.what, b.phys);
            }
        }
        let executable: u64 = items.iter().filter(|m| m.perms.executable()).map(|m| m.phys.size()).sum();
        let text = &layout::sections()[0];
        kassert_eq!(executable, (text.virt.end - text.virt.start) as u64, "only .text is executable");
        Ok(())
    }
}

ktest! {
    fn sections_guards_ram_and_devices_get_their_planned_permissions() {
        let plan = plan().map_err(|e| crate::ktest::Failure::new(format_args!("plan: {e}")))?;
        let rodata = arch::virt_to_phys(layout::sections()[1].virt.start);
        kassert_eq!(plan.find(rodata).map(|m| m.perms), Some(Perms::Ro));
        let data = arch::virt_to_phys(layout::sections()[3].virt.start);
        kassert_eq!(plan.find(data).map(|m| m.perms), Some(Perms::Rw));
        for guard in guard_pages() {
            kassert!(plan.find(guard.start() as usize).is_none(), "guard page {guard} is mapped");
        }
        for block in hart::online() {
            let bottom = arch::virt_to_phys(block.stack().start);
            kassert_eq!(plan.find(bottom).map(|m| m.perms), Some(Perms::Rw), "stack of hart {}", block.hart_id());
        }
        let platform = platform::get();
        let image = layout::kernel_image_phys();
        let is_guard = |pa: usize| guard_pages().any(|g| g.contains(pa as u64));
        for free in crate::memory::layout::get().free.as_slice() {
            // The stacks (and their guard pages) come from free RAM too: probe
            // the first page at or after the middle that is not a guard.
            let mid = (free.start() + free.size() / 2) as usize;
            let probe = (0..).map(|i| mid + i * PAGE_SIZE).find(|&pa| !is_guard(pa)).expect("guards are single pages");
            let mapping = plan.find(probe);
            kassert!(mapping.is_some_and(|m| m.what == "linear map" && m.perms == Perms::Rw), "free RAM {probe:#x} not in the linear map");
        }
        kassert!(plan.find(image.start() as usize).is_some_and(|m| m.what == ".text"));
        kassert!(plan.find(platform.uart.base).is_some_and(|m| m.what == "devices" && m.perms == Perms::Rw), "UART not mapped");
        kassert!(plan.find(0x8000_0000).is_none(), "the firmware below the kernel is mapped");
        Ok(())
    }
}
