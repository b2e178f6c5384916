//! Memory failure (Linux's hwpoison / soft-offline): physical pages marked
//! bad are never handed out again. `badmem=0x84000000,0x84001000` marks
//! pages at boot, [`mark_page_bad`] at run time.
//!
//! ```text
//!   mark_page_bad(pa)
//!     page free  ──► alloc_pages_at(page, 1): the buddy splits the free
//!                    block around it; the page stays allocated forever
//!     page used  ──► pending; pages::free of the block holding it calls
//!                    free_checked, which isolates it under the same lock
//!     page backs a slab ──► pending as above, and the slab is retired
//!                    (memory::global::retire_slab_at): no object of it is
//!                    handed out again; when its last object is freed its
//!                    pages go back, and the bad one is isolated then
//! ```
//!
//! The list is faultinject's `BadPageList`, behind its own lock taken only
//! inside the page allocator's (order: pages, then badmem), so a free and
//! the isolation it triggers are one step to every other hart. Isolated
//! pages count as used pages of the page allocator.

use crate::arch::{self, PAGE_SIZE};
use crate::memory::hooks;
use crate::memory::pages::{self, BootPageAllocator};
use crate::sync::IrqSpinLock;
use core::sync::atomic::{AtomicBool, Ordering};
use faultinject::{BadPage, BadPageList};
use kalloc::{AllocError, AllocResult, PageAllocator};

/// Bad pages the kernel can remember.
pub const MAX_BAD_PAGES: usize = 64;
/// Pages `badmem=` may name.
pub const MAX_BOOT_BAD_PAGES: usize = 16;

static BAD: IrqSpinLock<BadPageList<MAX_BAD_PAGES>> =
    IrqSpinLock::new("bad pages", BadPageList::new());
/// What `badmem=` named, for the tests to check.
static BOOT_PAGES: IrqSpinLock<BootBadPages> = IrqSpinLock::new(
    "badmem boot pages",
    BootBadPages {
        addrs: [0; MAX_BOOT_BAD_PAGES],
        count: 0,
    },
);
/// Whether any page was ever marked: frees skip the list until then.
static ANY_BAD: AtomicBool = AtomicBool::new(false);

/// The physical addresses `badmem=` named.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootBadPages {
    addrs: [u64; MAX_BOOT_BAD_PAGES],
    count: usize,
}

impl BootBadPages {
    pub fn as_slice(&self) -> &[u64] {
        &self.addrs[..self.count]
    }

    /// Parses `badmem=`'s value: comma-separated physical addresses,
    /// hexadecimal with `0x` or decimal, each inside the page it names.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let mut list = BootBadPages::default();
        for item in text.split(',').map(str::trim) {
            let addr =
                parse_address(item).ok_or("comma-separated physical addresses (0x84000000,...)")?;
            if list.count == MAX_BOOT_BAD_PAGES {
                return Err("at most 16 addresses");
            }
            list.addrs[list.count] = addr;
            list.count += 1;
        }
        Ok(list)
    }
}

/// A number, hexadecimal with `0x` (digits may be grouped with `_`) or
/// decimal. Parsed by hand: boot arguments are read before the heap exists.
fn parse_address(text: &str) -> Option<u64> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    let mut value: u64 = 0;
    let mut any = false;
    for ch in digits.chars().filter(|&c| c != '_' || radix != 16) {
        let digit = ch.to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))?;
        any = true;
    }
    any.then_some(value)
}

/// Frees `count` pages at `addr` in `allocator` (the page allocator, its
/// lock held): refuses a free covering an isolated bad page and isolates
/// any pending bad page the block holds.
pub fn free_checked(allocator: &mut BootPageAllocator, addr: usize, count: usize) -> AllocResult {
    if !ANY_BAD.load(Ordering::Acquire) {
        return allocator.dealloc_pages(addr, count);
    }
    let mut bad = BAD.lock();
    bad.check_free::<BootPageAllocator>(addr, count)?;
    allocator.dealloc_pages(addr, count)?;
    if bad.has_pending() {
        bad.after_free(allocator, addr, count);
        hooks::PAGES_FILTERED.store(bad.has_pending(), Ordering::Release);
    }
    Ok(())
}

/// Marks the physical page holding `pa` bad. A free page is isolated at
/// once; an allocated one when its block is freed; if it backs a slab of
/// the kernel heap, that slab is retired too. `OutOfRange` if the page
/// allocator does not manage it; `NoMemory` if the list is full.
pub fn mark_page_bad(pa: usize) -> AllocResult<BadPage> {
    if !crate::memory::paging::is_ram(pa) {
        return Err(AllocError::OutOfRange);
    }
    let virt = arch::phys_to_virt(pa & !(PAGE_SIZE - 1));
    // No bad page may sit in (or enter) a hart's list: while the page is
    // marked, frees go through the filter, and the lists go back to the
    // allocator first, so a free page is isolated at once. A page a list
    // took meanwhile is pending: the second drain sends it through the
    // filter. Frees keep skipping the lists while any page is pending.
    hooks::PAGES_FILTERED.store(true, Ordering::Release);
    pages::drain_lists();
    let outcome = pages::with(|allocator| {
        let mut bad = BAD.lock();
        let outcome = bad.mark_bad(allocator, virt);
        ANY_BAD.store(bad.bad_pages() != (0, 0), Ordering::Release);
        outcome
    });
    if outcome == Ok(BadPage::Pending) {
        pages::drain_lists();
    }
    hooks::PAGES_FILTERED.store(BAD.lock().has_pending(), Ordering::Release);
    let outcome = outcome?;
    if outcome == BadPage::Pending && crate::memory::global::retire_slab_at(virt) {
        log::warn!("bad page {pa:#x} backs a slab: slab retired");
    }
    Ok(outcome)
}

#[cfg_attr(
    not(feature = "ktest"),
    expect(dead_code, reason = "run-time API; the in-kernel tests use it so far")
)]
/// Whether the page holding physical address `pa` is marked bad.
pub fn is_bad(pa: usize) -> bool {
    BAD.lock()
        .is_bad::<BootPageAllocator>(arch::phys_to_virt(pa & !(PAGE_SIZE - 1)))
}

/// Bad pages isolated, and those waiting for their block to be freed.
pub fn counts() -> (usize, usize) {
    BAD.lock().bad_pages()
}

/// Marks the `badmem=` pages (right after the page allocator starts, so a
/// bad page is never handed out at all).
pub fn init(boot: &BootBadPages) {
    *BOOT_PAGES.lock() = *boot;
    for &pa in boot.as_slice() {
        match mark_page_bad(pa as usize) {
            Ok(outcome) => log::warn!("page {pa:#x} marked bad ({outcome:?})"),
            Err(error) => log::error!("page {pa:#x} not marked: {error}"),
        }
    }
}

/// The pages `badmem=` named.
#[cfg(feature = "ktest")]
pub fn boot_pages() -> BootBadPages {
    *BOOT_PAGES.lock()
}

#[cfg(feature = "ktest")]
#[allow(
    unsafe_code,
    reason = "the tests write into pages they took to check them"
)]
mod tests;
