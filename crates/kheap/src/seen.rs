//! [`Seen`]: one CPU's memory of having read a [`Once`] as published, so
//! its later reads skip the Acquire load. On RISC-V that load is a fence,
//! and QEMU makes every fence a full host barrier, which on a free waits
//! for the store just made into the object.

use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering::Relaxed;

use ksync::Once;

/// Whether this CPU slot has read one `Once` as published. Read and
/// written only by the slot's owner, with its interrupts masked.
pub(crate) struct Seen(AtomicBool);

impl Seen {
    pub(crate) const fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    /// `once`'s value, if published: with an Acquire load the first time
    /// this slot reads it, with a plain read afterwards.
    ///
    /// # Safety
    /// `once` is the same cell at every call on this `Seen`, and the
    /// caller is the CPU owning the slot this `Seen` belongs to, its
    /// interrupts masked.
    #[inline(always)]
    pub(crate) unsafe fn get<'a, T>(&self, once: &'a Once<T>) -> Option<&'a T> {
        if self.0.load(Relaxed) {
            // SAFETY: this slot read this `once` as published (`first_get`)
            // earlier; uses of a slot are ordered by `Cpu::cpu_index`'s
            // contract, so that Acquire load happens before this read.
            return Some(unsafe { once.get_unchecked() });
        }
        self.first_get(once)
    }

    #[cold]
    fn first_get<'a, T>(&self, once: &'a Once<T>) -> Option<&'a T> {
        let value = once.get()?;
        self.0.store(true, Relaxed);
        Some(value)
    }
}
