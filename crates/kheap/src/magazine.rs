//! A magazine (Bonwick and Adams, USENIX 2001): a short array of free
//! objects of one class, used as a stack by the CPU that owns it.
//!
//! ```text
//!   slots: [ obj | obj | obj | ... | (stale) | (stale) ]    32 slots
//!            0     1     2          len
//! ```
//!
//! Only the owner writes it, with its interrupts masked, so `push` and
//! `pop` are plain loads and stores (relaxed atomics): no lock, no
//! read-modify-write. Any CPU may look for an object in it
//! ([`Magazine::contains`], the exact double-free check): `push` publishes
//! the slot with a release store of `len`, so a looker that reads the new
//! length also reads the object, and slots at or above `len` (stale
//! pointers to objects handed out since) are never looked at.

use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::shim::{AtomicPtr, AtomicUsize, const_unless_loom};

/// Slots per magazine: the largest capacity a class may have.
pub const MAGAZINE_SLOTS: usize = 32;

/// Up to [`MAGAZINE_SLOTS`] free objects of one class, a stack its owner
/// pushes and pops and any CPU may search.
pub struct Magazine {
    len: AtomicUsize,
    slots: [AtomicPtr<u8>; MAGAZINE_SLOTS],
}

impl Magazine {
    const_unless_loom! {
        /// An empty magazine.
        pub fn new() -> Self {
            Self {
                len: AtomicUsize::new(0),
                #[cfg(not(loom))]
                slots: [const { AtomicPtr::new(ptr::null_mut()) }; MAGAZINE_SLOTS],
                #[cfg(loom)]
                slots: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            }
        }
    }

    /// Objects held (exact for the owner; a recent value for others).
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Adds `object` (owner only, interrupts masked; the magazine is not
    /// full).
    #[inline(always)]
    pub fn push(&self, object: NonNull<u8>) {
        let len = self.len.load(Relaxed);
        debug_assert!(len < MAGAZINE_SLOTS, "push into a full magazine");
        // SAFETY: callers push only below the class's capacity, at most
        // MAGAZINE_SLOTS (checked in debug builds).
        unsafe { self.slots.get_unchecked(len) }.store(object.as_ptr(), Relaxed);
        self.len.store(len + 1, Release);
    }

    /// Adds `object` if the magazine holds fewer than `capacity` (at most
    /// [`MAGAZINE_SLOTS`]) objects; whether it did (owner only,
    /// interrupts masked).
    #[inline(always)]
    pub fn push_below(&self, object: NonNull<u8>, capacity: usize) -> bool {
        let len = self.len.load(Relaxed);
        if len >= capacity {
            return false;
        }
        debug_assert!(capacity <= MAGAZINE_SLOTS);
        // SAFETY: `len < capacity <= MAGAZINE_SLOTS` (checked in debug
        // builds).
        unsafe { self.slots.get_unchecked(len) }.store(object.as_ptr(), Relaxed);
        self.len.store(len + 1, Release);
        true
    }

    /// Takes the object added last (owner only, interrupts masked).
    #[inline(always)]
    pub fn pop(&self) -> Option<NonNull<u8>> {
        let len = self.len.load(Relaxed);
        let top = len.checked_sub(1)?;
        debug_assert!(top < MAGAZINE_SLOTS);
        // SAFETY: `len` never exceeds MAGAZINE_SLOTS (`push`).
        let object = unsafe { self.slots.get_unchecked(top) }.load(Relaxed);
        self.len.store(top, Relaxed);
        debug_assert!(!object.is_null(), "slots below len hold objects");
        // SAFETY: slots below `len` hold what `push` stored, a `NonNull`.
        Some(unsafe { NonNull::new_unchecked(object) })
    }

    /// Whether `object` is in the magazine (any CPU).
    pub fn contains(&self, object: NonNull<u8>) -> bool {
        let len = self.len.load(Acquire).min(MAGAZINE_SLOTS);
        self.slots[..len]
            .iter()
            .any(|slot| slot.load(Relaxed) == object.as_ptr())
    }

    /// The objects held, bottom first, into `out` (owner only): the first
    /// half of emptying it. The objects stay in the magazine, visible to
    /// [`contains`](Self::contains), until [`clear`](Self::clear).
    pub fn copy_out(&self, out: &mut [NonNull<u8>; MAGAZINE_SLOTS]) -> usize {
        let len = self.len.load(Relaxed);
        for (slot, out) in self.slots[..len].iter().zip(out.iter_mut()) {
            *out = NonNull::new(slot.load(Relaxed)).expect("magazine slots below len hold objects");
        }
        len
    }

    /// Forgets every object (owner only, once they are elsewhere).
    pub fn clear(&self) {
        self.len.store(0, Release);
    }
}
