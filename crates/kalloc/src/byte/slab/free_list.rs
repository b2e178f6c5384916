//! Lists of free objects, linked through each object's first word: a
//! slab's free list and a cache's magazine are both a [`FreeList`].
//!
//! A free object's first word is its link, stored encoded:
//!
//! ```text
//!   word 0 of a free object = next ^ own address ^ LINK_KEY   (next: null ends the list)
//!   word 0 of a live object = whatever its user wrote (zeroed when handed out)
//! ```
//!
//! The encoding is what lets a free tell a live object from a free one
//! with one load and no per-object state: a free object's word decodes to
//! null or to an address in the slab allocator's pages (its successor),
//! while the word of a live object (user data, or the zero written when it
//! was handed out) almost never does, since the key and the object's own
//! address are mixed in. [`may_be_free`] is that test; it is exact in one
//! direction only ("false" means certainly live), so a "maybe" is settled
//! by looking the object up on the lists (`cache/check.rs`). A plain
//! pointer, such as a link of the user's own list or a stray write into a
//! freed object, does not decode to a valid link either (the hardening
//! Linux's SLUB gets from `CONFIG_SLAB_FREELIST_HARDENED`).

use core::ptr;

use super::Hull;

/// Mixed into every link word; odd high bits keep an encoded null far
/// from addresses and from small integers.
const LINK_KEY: usize = 0xa5c3_96e1_f00d_b10c_u64 as usize;

/// The word stored in free `object` to link it to `next`.
#[inline(always)]
pub(super) fn encode(object: *mut u8, next: *mut u8) -> usize {
    next.expose_provenance() ^ object.addr() ^ LINK_KEY
}

/// The address `word`, read from `object`, links to if `object` is free.
/// The inverse of [`encode`] (XOR undoes itself).
#[inline(always)]
fn decode(object: *mut u8, word: usize) -> usize {
    word ^ object.addr() ^ LINK_KEY
}

/// A LIFO list of free objects of one cache.
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
        let word = encode(object, self.head);
        // What makes `may_be_free` sound: a listed object's word decodes
        // to its successor, null or an object of a slab (in the hull).
        debug_assert_eq!(decode(object, word), self.head.addr());
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
        let word = unsafe { object.cast::<usize>().read() };
        self.head = ptr::with_exposed_provenance_mut(decode(object, word));
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

/// Whether `object`'s first word could be a link: it decodes to null or
/// into `hull`, the pages the slab allocator holds. `false` means the
/// object is certainly not on any list; `true` means it may be (a free
/// object always is), to be settled by a lookup.
///
/// # Safety
/// `object` is an object of a slab in service: its first word is readable
/// and initialised (every object is zeroed or linked before it is handed
/// out).
#[inline(always)]
pub(super) unsafe fn may_be_free(object: *mut u8, hull: Hull) -> bool {
    // SAFETY: the caller's guarantee.
    let next = decode(object, unsafe { object.cast::<usize>().read() });
    next == 0 || hull.contains(next)
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
        let hull = Hull {
            lo,
            hi: lo + size_of_val(&words),
        };
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
        }
    }
}
