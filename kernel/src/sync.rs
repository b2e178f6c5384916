//! Boot-time synchronisation helpers: write-once cells for the facts the boot
//! hart discovers (platform, devices) before any other hart runs, and the
//! console lock. General-purpose kernel locks come from the `ksync` crate.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

/// A value set once and then read by anyone; a second `set` panics.
pub struct BootCell<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is written exactly once, before `state` becomes READY
// with Release ordering; readers only touch it after an Acquire load of
// READY, and never mutably.
unsafe impl<T: Send + Sync> Sync for BootCell<T> {}

impl<T> BootCell<T> {
    pub const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
        }
    }

    /// Stores the value; panics if the cell was already set.
    pub fn set(&self, value: T) -> &T {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            panic!("BootCell<{}> set twice", core::any::type_name::<T>());
        }
        // SAFETY: the EMPTY -> WRITING transition makes us the only writer,
        // and no reader looks before READY.
        unsafe { *self.value.get() = Some(value) };
        self.state.store(READY, Ordering::Release);
        self.get().expect("just set")
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) != READY {
            return None;
        }
        // SAFETY: READY means the single write happened-before this read and
        // no further write will occur.
        unsafe { (*self.value.get()).as_ref() }
    }
}
