//! The memory core: physical memory as the kernel sees it at boot
//! (`layout`), the page allocator (`pages`), the kernel heap (`heap`) and
//! the global allocator over it (`global`), the kernel page table
//! (`paging`, `kernel_map`), hart stacks (`stacks`) and the counters the
//! allocation paths keep (`counters`). The algorithms live in the `kalloc`,
//! `kheap` and `sv39` crates; this module decides what they own, and
//! answers what kheap's per-hart caches ask of a hart (`kheap::Cpu`).
//!
//! The diagnostics (`crate::memdiag`: memdebug layers, fault injection,
//! bad pages, statistics, stress) use the core and plug into it through
//! [`hooks`]; the core never names them.

pub mod counters;
pub mod global;
pub mod heap;
pub mod hooks;
pub mod kernel_map;
pub mod layout;
pub mod page_allocator;
pub mod pages;
pub mod paging;
pub mod size;
pub mod stacks;

pub use size::Size;

/// The IPI service: answers the drain requests other harts made of this
/// hart's heap caches and page lists.
pub fn serve_drain_requests() {
    global::serve_drain_requests();
    pages::serve_drain_requests();
}

/// What the global allocator's per-hart caches need: the hart's slot in
/// `arch::hart::HARTS` (0 before the hart-local block exists: only the
/// boot hart runs then), time in microseconds, and an IPI to ask another
/// hart to drain.
impl kheap::Cpu for crate::sync::KernelArch {
    #[inline(always)]
    fn cpu_index() -> usize {
        crate::arch::hart::try_current().map_or(0, crate::arch::hart::HartLocal::slot)
    }

    fn now() -> u64 {
        crate::arch::cpu::ticks() * 1_000_000 / crate::platform::get().timebase_hz
    }

    /// 100 ms: a hart answers from its IPI handler at once unless it runs
    /// with interrupts masked (spinning on a lock the asker holds).
    const DRAIN_PATIENCE: u64 = 100_000;

    /// Not in an interrupt handler and not with interrupts masked (inside
    /// an interrupt-masking lock, which a hart spinning on it cannot leave
    /// to answer an IPI).
    fn may_wait() -> bool {
        crate::arch::cpu::irq_enabled()
    }

    fn kick(cpu: usize) {
        crate::arch::smp::kick(cpu);
    }
}
