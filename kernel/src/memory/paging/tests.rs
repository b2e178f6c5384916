//! The kernel table is active on every hart, drops the identity map, and
//! remote invalidation reaches every hart.

use super::*;
use crate::arch::hart;
use crate::ktest::prelude::*;

static SATP_SEEN: [AtomicUsize; crate::platform::MAX_HARTS] =
    [const { AtomicUsize::new(0) }; crate::platform::MAX_HARTS];

fn record_satp(slot: usize) {
    SATP_SEEN[slot].store(crate::arch::mmu::current_satp(), Ordering::Release);
}

ktest! {
    fn every_hart_runs_on_the_kernel_table() {
        let satp = kernel_satp();
        kassert!(satp != 0, "no kernel table");
        kassert!(satp >> 60 == 8, "satp {satp:#x} is not Sv39");
        crate::arch::smp::run_on_all_harts(record_satp);
        for block in hart::online() {
            kassert_eq!(SATP_SEEN[block.slot()].load(Ordering::Acquire), satp, "hart {}", block.hart_id());
        }
        Ok(())
    }
}

ktest! {
    fn the_identity_map_is_gone_and_the_linear_map_stays() {
        kassert_eq!(is_mapped(0x8020_0000), Some(false), "identity alias of the kernel still mapped");
        kassert_eq!(is_mapped(platform::get().uart.base), Some(false), "identity alias of the UART still mapped");
        let image = crate::memory::layout::kernel_image_virt();
        kassert_eq!(is_mapped(image.start), Some(true));
        let free = crate::memory::layout::get().free.as_slice()[0];
        kassert_eq!(is_mapped(arch::phys_to_virt(free.start() as usize)), Some(true));
        Ok(())
    }
}

ktest! {
    fn remote_tlb_invalidation_reaches_every_hart_through_sbi_rfence() {
        // Every online hart must accept the RFENCE call (the assertion in
        // `flush_all_harts` checks each SBI return).
        let text = crate::memory::layout::sections()[0].virt.clone();
        let remote = crate::arch::mmu::flush_all_harts(text.start..text.start + 4 * PAGE_SIZE);
        kassert_eq!(remote, hart::online().count() - 1);
        Ok(())
    }
}

ktest! {
    fn table_pages_and_the_direct_map_are_counted() {
        kassert!(table_pages() >= 3, "{} table pages", table_pages());
        let [small, mid, large] = direct_map_leaves();
        let mapped = small * PAGE_SIZE + mid * (2 << 20) + large * (1 << 30);
        let ram = platform::get().ram.total_size() as usize;
        kassert!(mapped > ram / 2 && mapped <= ram, "direct map {mapped} bytes of {ram}");
        Ok(())
    }
}
