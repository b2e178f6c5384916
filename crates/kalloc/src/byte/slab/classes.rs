//! The `kmalloc` size classes: which class serves a request (one compare
//! and a table load for the common case), each class's alignment, and the
//! cache names a report or a fault-injection filter uses.

use core::alloc::Layout;

/// The general-purpose size classes, as in Linux's `kmalloc` (with the
/// 96- and 192-byte classes that cut waste between powers of two).
pub const KMALLOC_SIZES: [usize; 11] = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048];
pub(super) const KMALLOC_NAMES: [&str; 11] = [
    "kmalloc-8",
    "kmalloc-16",
    "kmalloc-32",
    "kmalloc-64",
    "kmalloc-96",
    "kmalloc-128",
    "kmalloc-192",
    "kmalloc-256",
    "kmalloc-512",
    "kmalloc-1k",
    "kmalloc-2k",
];
/// The largest `kmalloc` class; larger requests are served in pages.
pub const KMALLOC_MAX: usize = KMALLOC_SIZES[KMALLOC_SIZES.len() - 1];

/// The entries of [`CLASS_BY_SIZE`] are classes shifted left by this: the
/// size of a cache (`cache.rs`, 256 bytes, a power of two), so an entry is
/// also its class's cache's offset in the allocator. [`small_class`] tells
/// the compiler so, and the free and the allocation find the cache with
/// the table load alone, no shift.
const SLOT_SHIFT: u32 = super::CACHE_BYTES.trailing_zeros();

/// Class index (shifted left by [`SLOT_SHIFT`]) for each request size in
/// 8-byte steps (`(size - 1) / 8`).
const CLASS_BY_SIZE: [u16; KMALLOC_MAX / 8] = {
    let mut table = [0u16; KMALLOC_MAX / 8];
    let (mut step, mut class) = (0, 0);
    while step < table.len() {
        while KMALLOC_SIZES[class] < (step + 1) * 8 {
            class += 1;
        }
        table[step] = (class << SLOT_SHIFT) as u16;
        step += 1;
    }
    table
};

/// The alignment every object of a class has: the largest power of two
/// dividing its size (96-byte objects are 32-aligned).
pub(super) const fn class_align(class: usize) -> usize {
    1 << KMALLOC_SIZES[class].trailing_zeros()
}

/// The `kmalloc` class serving `layout`: the smallest that holds its size
/// and whose objects are aligned enough. `None` means pages.
#[inline(always)]
pub(super) fn class_for(layout: Layout) -> Option<usize> {
    small_class(layout).or_else(|| class_for_general(layout))
}

/// The class of every request a class serves but one of a zero size:
/// 1..=2048 bytes aligned to at most 2048, in an OR, a compare and a table
/// load. `key = (size - 1) | (align - 1)` is `round_up(size, align) - 1`
/// (the alignment is a power of two), so the table gives the smallest
/// class of at least `round_up(size, align)` bytes, and that class is
/// also aligned enough: every class is a power of two or 96 or 192, and
/// neither is the smallest class above a multiple of an alignment it
/// lacks (96 follows 64, 192 follows 128). That is the class
/// [`class_for_general`] finds by walking; debug builds and a unit test
/// check that they agree. `key < KMALLOC_MAX` also refuses sizes above
/// 2048 and, as `size - 1` wraps, a zero size. `None` leaves the request
/// to [`class_for_general`].
#[inline(always)]
pub(super) fn small_class(layout: Layout) -> Option<usize> {
    let key = layout.size().wrapping_sub(1) | (layout.align() - 1);
    let class = (key < KMALLOC_MAX).then(|| {
        let slot = CLASS_BY_SIZE[key >> 3] as usize;
        // SAFETY: every entry is a class shifted left by `SLOT_SHIFT`
        // (checked by the unit test below), so its low bits are zero:
        // told, the compiler turns the shift back and the scaling of the
        // cache array into nothing.
        unsafe { core::hint::assert_unchecked(slot.is_multiple_of(1 << SLOT_SHIFT)) };
        slot >> SLOT_SHIFT
    });
    debug_assert_eq!(
        class.is_some(),
        (1..=KMALLOC_MAX).contains(&layout.size()) && layout.align() <= KMALLOC_MAX
    );
    debug_assert!(class.is_none() || class == class_for_general(layout));
    class
}

/// [`class_for`] for zero sizes, alignments above 8 and large requests.
#[inline(never)]
pub(super) fn class_for_general(layout: Layout) -> Option<usize> {
    if layout.size() > KMALLOC_MAX || layout.align() > KMALLOC_MAX {
        return None;
    }
    let mut class = (CLASS_BY_SIZE[layout.size().max(1).div_ceil(8) - 1] >> SLOT_SHIFT) as usize;
    while layout.align() > 8 && class_align(class) < layout.align() {
        class += 1;
    }
    Some(class)
}

/// The name of the `kmalloc` cache that serves `layout` (`kmalloc-64`,
/// ...), or `None` for a request served in pages: what a kernel's
/// `failslab` filter or a report names the request by.
pub fn kmalloc_cache_name(layout: Layout) -> Option<&'static str> {
    class_for(layout).map(|class| KMALLOC_NAMES[class])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_or_key_finds_the_walked_class_for_every_small_layout() {
        let mut align = 1;
        while align <= KMALLOC_MAX {
            for size in 1..=KMALLOC_MAX {
                let layout = Layout::from_size_align(size, align).unwrap();
                let class = small_class(layout).expect("a small layout");
                assert_eq!(Some(class), class_for_general(layout), "{layout:?}");
                assert!(KMALLOC_SIZES[class] >= size && class_align(class) >= align);
            }
            align *= 2;
        }
        for slot in CLASS_BY_SIZE {
            assert!(slot.is_multiple_of(1 << SLOT_SHIFT), "{slot:#x}");
        }
        for layout in [(0, 8), (KMALLOC_MAX + 1, 8), (8, 2 * KMALLOC_MAX)] {
            let layout = Layout::from_size_align(layout.0, layout.1).unwrap();
            assert_eq!(small_class(layout), None, "{layout:?}");
        }
    }
}
