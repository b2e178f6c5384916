//! Lists of free objects, linked through each object's first word: a
//! slab's free list, and the mark of an object parked in a magazine.
//!
//! A free object's first word is its link, stored encoded, and a list ends
//! at an object linked to itself:
//!
//! ```text
//!   word 0 of a free object   = next - own address + LINK_KEY (wrapping)
//!                               (next = own address at the end of a list)
//!   word 0 of a parked object = LINK_KEY       (a list of one: next = itself)
//!   word 0 of a live object   = whatever its user wrote (zeroed when handed out)
//! ```
//!
//! The encoding is what lets a free tell a live object from a free one
//! with one load and no per-object state: a free object's word decodes to
//! an address in the slab allocator's pages (its successor, or itself),
//! while the word of a live object (user data, or the zero written when it
//! was handed out) almost never does, since the key and the object's own
//! address are mixed in. [`may_be_free`] is that test, one range compare
//! (the self-link, not null, ends a list so that the end decodes into the
//! range too). The key is added, not XORed, so that the decoding's
//! subtraction of the key and the range test's subtraction of the hull's
//! start fold into one, made ahead ([`link_lo`], kept in the hull): the
//! test is a load, an add, a subtract and a compare. It is exact in one
//! direction only ("false" means certainly live), so a "maybe" is settled
//! by looking the object up on the lists (`cache/check.rs`). A plain
//! pointer, such as a link of the user's own list or a stray write into a
//! freed object, does not decode to a valid link either (the hardening
//! Linux's SLUB gets from `CONFIG_SLAB_FREELIST_HARDENED`).

use core::ptr;

use super::Hull;

/// Mixed into every link word; odd high bits keep it far from addresses
/// and from small integers.
const LINK_KEY: usize = 0xa5c3_96e1_f00d_b10c_u64 as usize;

/// The word stored in free `object` to link it to `next` (`object` itself
/// at the end of a list).
#[inline(always)]
pub(super) fn encode(object: *mut u8, next: *mut u8) -> usize {
    next.expose_provenance()
        .wrapping_sub(object.addr())
        .wrapping_add(LINK_KEY)
}

/// What [`may_be_free`] subtracts from a decoded link to test it against
/// a range starting at `lo`: `lo` plus the key, which the decoding would
/// subtract.
pub(super) const fn link_lo(lo: usize) -> usize {
    lo.wrapping_add(LINK_KEY)
}

/// The word of an object alone: linked to itself, the end of a list. What
/// an object parked in a magazine holds.
pub(super) const ALONE: usize = LINK_KEY;

/// The address `word`, read from `object`, links to if `object` is free.
/// The inverse of [`encode`].
#[inline(always)]
fn decode(object: *mut u8, word: usize) -> usize {
    word.wrapping_add(object.addr()).wrapping_sub(LINK_KEY)
}

/// A LIFO list of free objects of one slab.
#[derive(Clone, Copy)]
pub(super) struct FreeList {
    head: *mut u8,
}

impl FreeList {
    pub const EMPTY: Self = Self {
        head: ptr::null_mut(),
    };

    /// Puts `object` at the front.
    ///
    /// # Safety
    /// `object` is a free, word-aligned object of at least one word, of a
    /// slab the allocator holds, and on no list.
    #[inline(always)]
    pub unsafe fn push(&mut self, object: *mut u8) {
        let next = if self.head.is_null() {
            object
        } else {
            self.head
        };
        let word = encode(object, next);
        // What makes `may_be_free` sound: a listed object's word decodes
        // to its successor or itself, an object of a slab (in the hull).
        debug_assert_eq!(decode(object, word), next.addr());
        // SAFETY: the caller's guarantee: the word is the allocator's.
        unsafe { object.cast::<usize>().write(word) };
        self.head = object;
    }

    /// Takes the front object off, its link word still set (the caller
    /// clears it with [`clear_link`] when handing the object out).
    ///
    /// # Safety
    /// Every object on the list was put there by [`push`](Self::push) and
    /// its first word has not been written since (the allocator's
    /// invariant for the lists of slabs it holds).
    #[inline(always)]
    pub unsafe fn pop(&mut self) -> Option<*mut u8> {
        if self.head.is_null() {
            return None;
        }
        let object = self.head;
        // SAFETY: the caller's guarantee: `object` is listed, its first
        // word an encoded link.
        let next = decode(object, unsafe { object.cast::<usize>().read() });
        self.head = if next == object.addr() {
            ptr::null_mut()
        } else {
            ptr::with_exposed_provenance_mut(next)
        };
        Some(object)
    }

    /// The listed objects, front first, at most `bound` of them (a bound,
    /// not a length: a list corrupted by a write after free cannot make
    /// the walk loop forever).
    ///
    /// # Safety
    /// As for [`pop`](Self::pop), and the objects stay allocated while the
    /// iterator is used.
    pub unsafe fn iter(&self, bound: usize) -> impl Iterator<Item = *mut u8> {
        let mut rest = *self;
        // SAFETY: the caller's guarantee, for every object of the list.
        core::iter::from_fn(move || unsafe { rest.pop() }).take(bound)
    }
}

/// Zeroes the link word of an object about to be handed out, so that it
/// does not look free while its user has not written it.
///
/// # Safety
/// `object` is a word-aligned object of at least one word, of a slab the
/// allocator holds.
#[inline(always)]
pub(super) unsafe fn clear_link(object: *mut u8) {
    // SAFETY: the caller's guarantee.
    unsafe { object.cast::<usize>().write(0) }
}

/// Whether `object`'s first word could be a link: it decodes to an
/// address in `hull`, the pages the slab allocator holds. `false` means
/// the object is certainly not on any list nor parked; `true` means it
/// may be (a free object always is), to be settled by a lookup.
///
/// # Safety
/// `object` is an object of a slab in service: its first word is readable
/// and initialised (every object is zeroed or linked before it is handed
/// out).
#[inline(always)]
pub(super) unsafe fn may_be_free(object: *mut u8, hull: Hull) -> bool {
    // SAFETY: the caller's guarantee.
    let word = unsafe { object.cast::<usize>().read() };
    // `hull.contains(decode(object, word))`, with the key and `lo`
    // subtracted at once (`link_lo`).
    let maybe = word.wrapping_add(object.addr()).wrapping_sub(hull.link_lo) < hull.len;
    debug_assert_eq!(maybe, hull.contains(decode(object, word)));
    maybe
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn links_decode_to_what_was_pushed_and_plain_words_do_not() {
        let mut words = [0usize; 4];
        let objects: Vec<*mut u8> = words.iter_mut().map(|w| ptr::from_mut(w).cast()).collect();
        let lo = objects[0].addr();
        let hull = Hull::new(lo, size_of_val(&words));
        let mut list = FreeList::EMPTY;
        // SAFETY: the words are ours, word-aligned and on no list.
        unsafe {
            for &object in &objects[..3] {
                list.push(object);
            }
            assert_eq!(
                list.iter(8).collect::<Vec<_>>(),
                [2, 1, 0].map(|i| objects[i])
            );
            for &object in &objects[..3] {
                assert!(may_be_free(object, hull), "a listed object");
            }
            // A live object holding a plain pointer into the hull, zero,
            // or a small integer does not look free.
            for word in [objects[1].addr(), 0, 1, 42] {
                objects[3].cast::<usize>().write(word);
                assert!(!may_be_free(objects[3], hull), "word {word:#x}");
            }
            assert_eq!(list.pop(), Some(objects[2]));
            clear_link(objects[2]);
            assert!(!may_be_free(objects[2], hull), "a cleared object");
            // An object alone (parked) is a list of one.
            objects[3].cast::<usize>().write(ALONE);
            assert!(may_be_free(objects[3], hull), "a parked object");
            assert_eq!(decode(objects[3], ALONE), objects[3].addr());
        }
    }
}
