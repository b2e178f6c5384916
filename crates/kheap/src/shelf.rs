//! The depot's shelf of full magazines (Bonwick's depot layer): a CPU
//! whose two magazines of a class are full puts one on the shelf, and a
//! CPU whose two are empty takes one, both under the heap's lock, a copy
//! of at most 32 pointers. Objects on the shelf stay parked (marked, not
//! in the slab allocator), so a producer CPU gets back what a consumer
//! CPU freed without the slab allocator doing any work, and a batch is
//! always a whole magazine, whatever the slab geometry.
//!
//! ```text
//!   ShelfClass (one per kmalloc class), under the heap's lock
//!   +-- magazines: [[object; 32]; 4]   lens: [n0, n1, 0, 0]   count: 2
//!   +-- parked: objects held (read without the lock, for statistics)
//! ```
//!
//! A full shelf sends a flush to the slab allocator instead; a drain of
//! every CPU, and memory pressure, empty it into the slab allocator.

use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::Relaxed;

use kalloc::byte::KMALLOC_CLASSES;

use crate::magazine::MAGAZINE_SLOTS;

/// Full magazines the shelf holds per class.
pub const SHELF_MAGAZINES: usize = 4;

struct ShelfClass {
    magazines: [[Option<NonNull<u8>>; MAGAZINE_SLOTS]; SHELF_MAGAZINES],
    lens: [usize; SHELF_MAGAZINES],
    count: usize,
}

impl ShelfClass {
    const fn new() -> Self {
        Self {
            magazines: [[None; MAGAZINE_SLOTS]; SHELF_MAGAZINES],
            lens: [0; SHELF_MAGAZINES],
            count: 0,
        }
    }
}

pub(crate) struct Shelf {
    classes: [ShelfClass; KMALLOC_CLASSES],
}

// SAFETY: the shelf holds addresses of free objects the heap owns, used
// only under the heap's lock, by whichever CPU holds it.
unsafe impl Send for Shelf {}

/// Objects on the shelf per class, written under the heap's lock, read
/// without it (statistics).
pub(crate) struct ShelfCounts([AtomicUsize; KMALLOC_CLASSES]);

impl ShelfCounts {
    pub(crate) const fn new() -> Self {
        Self([const { AtomicUsize::new(0) }; KMALLOC_CLASSES])
    }

    pub(crate) fn get(&self, class: usize) -> usize {
        self.0[class].load(Relaxed)
    }

    fn add(&self, class: usize, delta: isize) {
        let counter = &self.0[class];
        counter.store(counter.load(Relaxed).wrapping_add_signed(delta), Relaxed);
    }
}

impl Shelf {
    pub(crate) const fn new() -> Self {
        Self {
            classes: [const { ShelfClass::new() }; KMALLOC_CLASSES],
        }
    }

    /// Puts `objects` (a full magazine of `class`) on the shelf; `false`
    /// if the shelf of that class is full.
    pub(crate) fn put(
        &mut self,
        class: usize,
        objects: &[NonNull<u8>],
        counts: &ShelfCounts,
    ) -> bool {
        let shelf = &mut self.classes[class];
        if shelf.count == SHELF_MAGAZINES {
            return false;
        }
        let slot = shelf.count;
        for (to, &object) in shelf.magazines[slot].iter_mut().zip(objects) {
            *to = Some(object);
        }
        shelf.lens[slot] = objects.len();
        shelf.count += 1;
        counts.add(class, objects.len() as isize);
        true
    }

    /// Takes a magazine of `class` off the shelf into `out`; how many
    /// objects it held (0: none on the shelf).
    pub(crate) fn take(
        &mut self,
        class: usize,
        out: &mut [NonNull<u8>; MAGAZINE_SLOTS],
        counts: &ShelfCounts,
    ) -> usize {
        let shelf = &mut self.classes[class];
        let Some(slot) = shelf.count.checked_sub(1) else {
            return 0;
        };
        let len = shelf.lens[slot];
        for (to, from) in out.iter_mut().zip(&mut shelf.magazines[slot][..len]) {
            *to = from.take().expect("shelf slots below len hold objects");
        }
        shelf.count = slot;
        counts.add(class, -(len as isize));
        len
    }

    /// Whether `object` is on the shelf of `class`.
    pub(crate) fn contains(&self, class: usize, object: NonNull<u8>) -> bool {
        let shelf = &self.classes[class];
        (0..shelf.count)
            .any(|slot| shelf.magazines[slot][..shelf.lens[slot]].contains(&Some(object)))
    }
}
