//! The memory core: physical memory as the kernel sees it at boot
//! (`layout`), the page allocator (`pages`), the kernel heap (`heap`) and
//! the global allocator over it (`global`), the kernel page table
//! (`paging`, `kernel_map`), hart stacks (`stacks`) and the counters the
//! allocation paths keep (`counters`). The algorithms live in the `kalloc`
//! and `sv39` crates; this module decides what they own.
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
