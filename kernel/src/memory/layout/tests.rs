//! In-kernel checks of the layout the boot path computed on this machine.

use super::*;
use crate::ktest::prelude::*;
use crate::platform;

ktest! {
    fn sections_are_ordered_page_aligned_and_inside_the_image() {
        let image = kernel_image_virt();
        let mut previous_end = image.start;
        for section in sections() {
            kassert!(section.virt.start >= previous_end, "{} overlaps the section before it", section.name);
            kassert!(section.virt.start % PAGE_SIZE == 0, "{} starts unaligned at {:#x}", section.name, section.virt.start);
            kassert!(section.virt.end <= image.end, "{} ends beyond the image", section.name);
            previous_end = section.virt.end;
        }
        kassert_eq!(kernel_image_phys().start(), 0x8020_0000);
        Ok(())
    }
}

ktest! {
    fn free_ranges_avoid_every_reservation_and_stay_in_ram() {
        let platform = platform::get();
        let layout = get();
        kassert!(!layout.free.is_empty(), "no free memory at all");
        for free in layout.free.as_slice() {
            kassert!(free.start() % PAGE_SIZE as u64 == 0 && free.end() % PAGE_SIZE as u64 == 0, "{free} is not page aligned");
            kassert!(platform.ram.as_slice().iter().any(|ram| ram.covers(*free)), "{free} is not inside RAM");
            for item in layout.reserved.as_slice() {
                kassert!(!free.overlaps(item.range), "{free} overlaps {} {}", item.owner, item.range);
            }
        }
        let kernel = kernel_image_phys();
        kassert!(!layout.free.overlaps(kernel), "kernel image is free");
        kassert!(!layout.free.overlaps(platform.dtb), "device tree is free");
        // Everything not reserved is free, up to page rounding at each edge.
        let reserved_in_ram: u64 = layout.reserved.as_slice().iter().map(|r| r.range.size()).sum();
        let slack = (2 * PAGE_SIZE * (layout.reserved.as_slice().len() + 1)) as u64;
        kassert!(
            layout.free.total_size() + reserved_in_ram + slack >= platform.ram.total_size(),
            "free {} + reserved {} is far below RAM {}",
            layout.free.total_size(),
            reserved_in_ram,
            platform.ram.total_size()
        );
        Ok(())
    }
}

ktest! {
    fn boot_stack_is_the_current_stack() {
        let stack = sections()[5].virt.clone();
        let sp = crate::arch::cpu::stack_pointer();
        kassert!(stack.contains(&sp), "sp {sp:#x} outside the boot stack {:#x}..{:#x}", stack.start, stack.end);
        Ok(())
    }
}
