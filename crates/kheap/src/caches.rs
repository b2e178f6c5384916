//! One CPU's caches: per `kmalloc` class a loaded and a previous magazine
//! (Bonwick's pair), its counters and its drain requests, in a block of
//! its own cache lines.
//!
//! ```text
//!   CpuCache (one per CPU, 64-byte aligned)
//!   +-- classes[0..11]: ClassCache { loaded: 0|1, magazines: [Magazine; 2] }
//!   +-- stats: CpuStats
//!   +-- drain: DrainRequests
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
use crate::stats::CpuStats;

/// Objects a magazine of `class` holds: a full magazine for classes up to
/// 256 bytes, half of one above (so a CPU parks at most 64 KiB of 2 KiB
/// objects). At least 16 everywhere: at most one trip to the lock per 16
/// operations of a class.
pub const fn magazine_capacity(class: usize) -> usize {
    if KMALLOC_SIZES[class] <= 256 {
        MAGAZINE_SLOTS
    } else {
        MAGAZINE_SLOTS / 2
    }
}

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

    #[inline(always)]
    fn loaded(&self) -> (&Magazine, &Magazine) {
        let loaded = self.loaded.load(Relaxed) & 1;
        (&self.magazines[loaded], &self.magazines[loaded ^ 1])
    }

    #[inline(always)]
    fn swap(&self) {
        self.loaded.store(self.loaded.load(Relaxed) ^ 1, Relaxed);
    }

    /// An object, if either magazine has one (owner, interrupts masked).
    #[inline(always)]
    pub(crate) fn pop(&self) -> Option<NonNull<u8>> {
        let (loaded, previous) = self.loaded();
        if let Some(object) = loaded.pop() {
            return Some(object);
        }
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
        let (loaded, previous) = self.loaded();
        if loaded.len() < capacity {
            loaded.push(object);
            return true;
        }
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
}

impl CpuCache {
    pub(crate) const fn new() -> Self {
        Self {
            classes: [const { ClassCache::new() }; KMALLOC_CLASSES],
            stats: CpuStats::new(),
            drain: DrainRequests::new(),
        }
    }

    /// Objects parked in all classes.
    pub(crate) fn parked(&self) -> usize {
        self.classes.iter().map(ClassCache::len).sum()
    }
}
