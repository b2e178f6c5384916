//! Call sites for allocations through Rust's `alloc`.
//!
//! `Vec`, `Box` and friends reach `GlobalAlloc` through `alloc`'s shims,
//! which `#[track_caller]` does not cross, and the kernel is built without
//! frame pointers. So an allocation records, in order of preference:
//! the source location of the innermost [`at_site`] scope running on this
//! hart (exact `file:line:column`), or else the return address seen by
//! `GlobalAlloc` (`pc 0x...`, resolve it on the host with
//! `addr2line -e <kernel ELF> 0x...`). Page allocations (`pages::alloc`)
//! are `#[track_caller]` and always record their source location.
//!
//! A scope covers everything its closure runs on this hart, including an
//! interrupt handler that allocates in the middle of it.

use crate::platform::MAX_HARTS;
use core::panic::Location;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use memdebug::CallSite;

/// The innermost scope's location per hart slot (null: none).
static SCOPES: [AtomicPtr<Location<'static>>; MAX_HARTS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_HARTS];

/// Runs `f`; the allocations and frees it makes on this hart are
/// attributed to the caller's source location.
#[track_caller]
pub fn at_site<R>(f: impl FnOnce() -> R) -> R {
    let location = Location::caller();
    let Some(hart) = crate::arch::hart::try_current() else {
        return f();
    };
    let slot = &SCOPES[hart.slot()];
    let outer = slot.swap(ptr::from_ref(location).cast_mut(), Ordering::Relaxed);
    let result = f();
    slot.store(outer, Ordering::Relaxed);
    result
}

/// The current scope's site on this hart, if any.
pub fn current() -> Option<CallSite> {
    let hart = crate::arch::hart::try_current()?;
    let location = SCOPES[hart.slot()].load(Ordering::Relaxed);
    // SAFETY: the slot only ever holds null or a `&'static Location`
    // stored by `at_site`.
    unsafe { location.as_ref() }.map(CallSite::Source)
}
