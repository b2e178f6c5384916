//! The link word of a free object: its first word holds the next object
//! of its list (magazine or slab free list) XORed with its own address and
//! a key. Live objects hold user data there, which almost never decodes
//! to a plausible link, so a free can tell "certainly live" from "maybe
//! free" with one load; only a "maybe free" object is looked up on the
//! lists (exact, and rare: a double free, or user data that happens to
//! mimic a link). Every allocation zeroes the word, so an object whose
//! user never wrote it does not look free.
//!
//! The encoding also means a stray write of a plain pointer into a freed
//! object does not become a valid link (the hardening Linux's SLUB gets
//! from `CONFIG_SLAB_FREELIST_HARDENED`).

use core::ptr;

/// Mixed into every link word; odd high bits keep an encoded null far
/// from addresses and from small integers.
const LINK_KEY: usize = 0xa5c3_96e1_f00d_b10c_u64 as usize;

/// The word stored in free `object` to link it to `next` (null ends a
/// list).
#[inline(always)]
pub(super) fn encode(object: *mut u8, next: *mut u8) -> usize {
    next.expose_provenance() ^ object.addr() ^ LINK_KEY
}

/// The address `object`'s first word would link to if it were free.
#[inline(always)]
fn decoded(object: *mut u8, word: usize) -> usize {
    word ^ object.addr() ^ LINK_KEY
}

/// Links the free `object` to `next`.
///
/// # Safety
/// `object` is a free, word-aligned object of at least one word that the
/// allocator owns.
#[inline(always)]
pub(super) unsafe fn write(object: *mut u8, next: *mut u8) {
    // SAFETY: the caller's guarantee.
    unsafe { object.cast::<usize>().write(encode(object, next)) }
}

/// The object the free `object` links to (null at the end of its list).
///
/// # Safety
/// `object` was linked with [`write`] and has not been changed since.
#[inline(always)]
pub(super) unsafe fn read(object: *mut u8) -> *mut u8 {
    // SAFETY: the caller's guarantee: the word is an encoded link.
    let word = unsafe { object.cast::<usize>().read() };
    ptr::with_exposed_provenance_mut(decoded(object, word))
}

/// The objects of the list that starts at `head`, in order, at most
/// `bound` of them (a bound, not a length: a list corrupted by a write
/// after free cannot loop forever).
///
/// # Safety
/// Every object on the list was linked with [`write`], has not been
/// changed since, and stays allocated while the iterator is used.
pub(super) unsafe fn chain(head: *mut u8, bound: usize) -> impl Iterator<Item = *mut u8> {
    let mut next = head;
    core::iter::from_fn(move || {
        if next.is_null() {
            return None;
        }
        let object = next;
        // SAFETY: the caller's guarantee: `object` is on the list.
        next = unsafe { read(object) };
        Some(object)
    })
    .take(bound)
}

/// Clears the link word of an object about to be handed out, so it does
/// not look free while its user has not written it.
///
/// # Safety
/// As for [`write`].
#[inline(always)]
pub(super) unsafe fn clear(object: *mut u8) {
    // SAFETY: the caller's guarantee.
    unsafe { object.cast::<usize>().write(0) }
}

/// Whether the first word of `object`, a live-or-free object of a slab in
/// `lo..hi`, could be a link: it decodes to null or into `lo..hi`. False
/// means the object is certainly not free.
///
/// # Safety
/// `object` is an object of a live slab: its first word is readable and
/// initialised (every object is zeroed or linked before it is handed out).
#[inline(always)]
pub(super) unsafe fn may_be_free(object: *mut u8, lo: usize, hi: usize) -> bool {
    // SAFETY: the caller's guarantee.
    let next = decoded(object, unsafe { object.cast::<usize>().read() });
    next == 0 || next.wrapping_sub(lo) < hi.wrapping_sub(lo)
}
