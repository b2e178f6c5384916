//! One CPU's caches: per `kmalloc` class a loaded and a previous magazine
//! (Bonwick's pair), its counters and its drain requests, in a block of
//! its own cache lines.
//!
//! ```text
//!   CpuCache (one per CPU, 64-byte aligned)
//!   +-- classes[0..11]: ClassCache { loaded: 0|1, magazines: [Magazine; 2] }
//!   +-- stats: CpuStats
//!   +-- drain: DrainRequests
//!   +-- probe_seen: Seen (this CPU read the probe as published)
//! ```
//!
//! The previous magazine is always empty or full, which is what bounds the
//! trips to the heap's lock: `pop` takes from the loaded magazine, swaps in
//! a full previous one when the loaded one is empty, and only when both
//! are empty does the caller refill (a whole magazine, one lock); `push`
//! mirrors it, and only when both are full does the caller flush the
//! previous magazine (one lock). Between two trips a class sees at least a
//! magazine's worth of operations.

use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::Relaxed;

use kalloc::byte::{KMALLOC_CLASSES, KMALLOC_SIZES};

use crate::drain::DrainRequests;
use crate::magazine::{MAGAZINE_SLOTS, Magazine};
use crate::seen::Seen;
use crate::stats::CpuStats;

/// Objects a magazine of `class` holds: a full magazine for classes up to
/// 256 bytes, half of one above (so a CPU parks at most 64 KiB of 2 KiB
/// objects). At least 16 everywhere: at most one trip to the lock per 16
/// operations of a class.
#[inline(always)]
pub const fn magazine_capacity(class: usize) -> usize {
    CAPACITY[class] as usize
}

/// [`magazine_capacity`] for a class the fast path got from kalloc's
/// class table, without the bounds check.
#[inline(always)]
pub(crate) fn capacity_unchecked(class: usize) -> usize {
    debug_assert!(class < KMALLOC_CLASSES);
    // SAFETY: the caller's `class` is a kmalloc class (checked in debug
    // builds).
    usize::from(unsafe { *CAPACITY.get_unchecked(class) })
}

/// [`magazine_capacity`] per class, a table load on the fast path.
const CAPACITY: [u8; KMALLOC_CLASSES] = {
    let mut capacity = [0; KMALLOC_CLASSES];
    let mut class = 0;
    while class < KMALLOC_CLASSES {
        capacity[class] = if KMALLOC_SIZES[class] <= 256 {
            MAGAZINE_SLOTS as u8
        } else {
            (MAGAZINE_SLOTS / 2) as u8
        };
        class += 1;
    }
    capacity
};

pub(crate) struct ClassCache {
    /// Which of `magazines` is the loaded one.
    loaded: AtomicUsize,
    magazines: [Magazine; 2],
}

impl ClassCache {
    const fn new() -> Self {
        Self {
            loaded: AtomicUsize::new(0),
            magazines: [Magazine::new(), Magazine::new()],
        }
    }

    /// The loaded magazine (the previous one is the other).
    #[inline(always)]
    fn magazine(&self, loaded: bool) -> &Magazine {
        let index = self.loaded.load(Relaxed) & 1;
        &self.magazines[if loaded { index } else { index ^ 1 }]
    }

    #[inline(always)]
    fn loaded(&self) -> (&Magazine, &Magazine) {
        (self.magazine(true), self.magazine(false))
    }

    #[inline(always)]
    fn swap(&self) {
        self.loaded.store(self.loaded.load(Relaxed) ^ 1, Relaxed);
    }

    /// An object, if either magazine has one (owner, interrupts masked).
    #[inline(always)]
    pub(crate) fn pop(&self) -> Option<NonNull<u8>> {
        if let Some(object) = self.magazine(true).pop() {
            return Some(object);
        }
        self.pop_previous()
    }

    /// The loaded magazine is empty: swaps in the previous one if full.
    #[cold]
    fn pop_previous(&self) -> Option<NonNull<u8>> {
        let previous = self.magazine(false);
        if previous.len() == 0 {
            return None;
        }
        self.swap();
        previous.pop()
    }

    /// Parks `object` unless both magazines are full (owner, interrupts
    /// masked); `false` asks the caller to flush.
    #[inline(always)]
    pub(crate) fn push(&self, object: NonNull<u8>, capacity: usize) -> bool {
        self.magazine(true).push_below(object, capacity) || self.push_previous(object)
    }

    /// The loaded magazine is full: swaps in the previous one if empty.
    #[cold]
    fn push_previous(&self, object: NonNull<u8>) -> bool {
        let previous = self.magazine(false);
        if previous.len() != 0 {
            return false;
        }
        self.swap();
        previous.push(object);
        true
    }

    /// The loaded magazine, which `refill` fills (both are empty then).
    pub(crate) fn loaded_magazine(&self) -> &Magazine {
        self.loaded().0
    }

    /// The previous magazine, which `flush` empties (both are full then),
    /// after which the two swap so the empty one is loaded.
    pub(crate) fn previous_magazine(&self) -> &Magazine {
        self.loaded().1
    }

    /// After a flush: the emptied previous magazine becomes the loaded one.
    pub(crate) fn swap_after_flush(&self) {
        self.swap();
    }

    pub(crate) fn magazines(&self) -> &[Magazine; 2] {
        &self.magazines
    }

    /// Objects parked (exact for the owner; recent for others).
    pub(crate) fn len(&self) -> usize {
        self.magazines[0].len() + self.magazines[1].len()
    }

    /// Whether `object` is parked here (any CPU).
    pub(crate) fn contains(&self, object: NonNull<u8>) -> bool {
        self.magazines.iter().any(|m| m.contains(object))
    }
}

#[repr(align(64))]
pub(crate) struct CpuCache {
    pub(crate) classes: [ClassCache; KMALLOC_CLASSES],
    pub(crate) stats: CpuStats,
    pub(crate) drain: DrainRequests,
    /// This CPU read the heap's probe as published: its later reads
    /// need no fence.
    pub(crate) probe_seen: Seen,
}

impl CpuCache {
    /// The caches of `class`, a kmalloc class the fast path got from
    /// kalloc's class table (below `KMALLOC_CLASSES`, checked in debug
    /// builds), without the bounds check.
    #[inline(always)]
    pub(crate) fn class(&self, class: usize) -> &ClassCache {
        debug_assert!(class < KMALLOC_CLASSES);
        // SAFETY: as documented: `class` is in bounds.
        unsafe { self.classes.get_unchecked(class) }
    }

    pub(crate) const fn new() -> Self {
        Self {
            classes: [const { ClassCache::new() }; KMALLOC_CLASSES],
            stats: CpuStats::new(),
            drain: DrainRequests::new(),
            probe_seen: Seen::new(),
        }
    }

    /// Objects parked in all classes.
    pub(crate) fn parked(&self) -> usize {
        self.classes.iter().map(ClassCache::len).sum()
    }
}
