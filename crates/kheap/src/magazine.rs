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
//! read-modify-write, no fence. Any CPU may look for an object in it
//! ([`Magazine::contains`], the exact double-free check), and its answer
//! is exact for every object whose fate the looker can know of:
//!
//! - an object parked before the look (the push happens before it) is
//!   found: the looker reads that push's slot and length or later values,
//!   and the length stays above the slot while the object is parked
//!   (only `pop`, from the top, or `clear` takes it out);
//! - an object taken out before the look (a live object the looker frees)
//!   is not found: `pop` and `clear` null every slot they take an object
//!   from, so the looker reads the null or a later value, never the
//!   object; a length read from a later push can make it look at a slot
//!   whose new object it does not see yet, but then it sees a null or an
//!   older object, never the one it looks for.
//!
//! Release and Acquire on the length would say the same with a fence on
//! every push and every lookup; on RISC-V that is a fence per free (under
//! QEMU a full host barrier, which waits for the free's store to the
//! object), where nulling a slot is one store to a line the owner holds.

use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering::Relaxed;

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
        self.len.store(len + 1, Relaxed);
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
        self.len.store(len + 1, Relaxed);
        true
    }

    /// Takes the object added last (owner only, interrupts masked).
    #[inline(always)]
    pub fn pop(&self) -> Option<NonNull<u8>> {
        let len = self.len.load(Relaxed);
        let top = len.checked_sub(1)?;
        debug_assert!(top < MAGAZINE_SLOTS);
        // SAFETY: `len` never exceeds MAGAZINE_SLOTS (`push`).
        let slot = unsafe { self.slots.get_unchecked(top) };
        let object = slot.load(Relaxed);
        self.len.store(top, Relaxed);
        // The object is handed out: no looker may find it here any more.
        slot.store(ptr::null_mut(), Relaxed);
        debug_assert!(!object.is_null(), "slots below len hold objects");
        // SAFETY: slots below `len` hold what `push` stored, a `NonNull`.
        Some(unsafe { NonNull::new_unchecked(object) })
    }

    /// Whether `object` is in the magazine (any CPU).
    pub fn contains(&self, object: NonNull<u8>) -> bool {
        let len = self.len.load(Relaxed).min(MAGAZINE_SLOTS);
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

    /// Forgets every object (owner only, once they are elsewhere), nulling
    /// their slots so no looker finds them here any more.
    pub fn clear(&self) {
        let len = self.len.load(Relaxed);
        self.len.store(0, Relaxed);
        for slot in &self.slots[..len] {
            slot.store(ptr::null_mut(), Relaxed);
        }
    }
}
