//! One buddy zone's bitmaps and free lists: per-order free bitmaps (is the
//! block of order `k` at frame `p` free? one bit test), a bitmap of live
//! allocation heads whose lengths sit in the spare links of those pages,
//! and per-order doubly linked free lists threaded through a side array
//! (O(1) push, pop and removal of any block). Neither allocation, nor
//! merging, nor the checks of a free scan a list or a bitmap range.

use core::mem::size_of;

use super::super::bits::{self, RawBits};
use super::super::zone::{Zone, ZoneMeta};

/// Orders the metadata has room for: `0..ORDER_SLOTS`.
pub(crate) const ORDER_SLOTS: usize = 32;
const NIL: usize = usize::MAX;

/// One order's free bitmap: bit `(pfn >> order) - first` is set iff the
/// order-`order` block at frame `pfn` is on free list `order`.
#[derive(Clone, Copy)]
struct OrderBits {
    words: *mut u64,
    bits: usize,
    /// `base_pfn >> order`: the aligned block holding the zone's first page.
    first: usize,
}

impl OrderBits {
    const EMPTY: Self = Self {
        words: core::ptr::null_mut(),
        bits: 0,
        first: 0,
    };

    /// The word and mask of the block at `pfn`, if that block overlaps
    /// the zone (a frame below the zone wraps past the last bit).
    #[inline]
    fn locate(&self, pfn: usize, order: usize) -> Option<(*mut u64, u64)> {
        let bit = (pfn >> order).wrapping_sub(self.first);
        // SAFETY: `bit < bits`, so the word is one of the `words_for(bits)`
        // words this zone reserved for the order (`BuddyMeta::new`).
        (bit < self.bits).then(|| unsafe { (self.words.add(bit / 64), 1 << (bit % 64)) })
    }

    #[inline]
    fn get(&self, pfn: usize, order: usize) -> bool {
        // SAFETY: an in-bounds word of this zone's bitmap (`locate`).
        self.locate(pfn, order)
            .is_some_and(|(word, mask)| unsafe { *word & mask != 0 })
    }

    /// Sets (`free`) or clears the bit of a block inside the zone.
    #[inline]
    fn put(&mut self, pfn: usize, order: usize, free: bool) {
        let (word, mask) = self.locate(pfn, order).expect("block inside the zone");
        // SAFETY: an in-bounds word of this zone's bitmap (`locate`); the
        // `&mut self` of the owning metadata makes this the only access.
        unsafe {
            if free {
                *word |= mask;
            } else {
                *word &= !mask;
            }
        }
    }
}

/// A buddy zone's metadata (lives in the zone's own region).
pub(crate) struct BuddyMeta {
    free_bits: [OrderBits; ORDER_SLOTS],
    /// `live`: bit `i` set iff page index `i` is the first page of a live
    /// allocation; its length is then `links[i][0]` (a live page is on no
    /// list, so its links are spare).
    live: RawBits,
    /// First page index (relative to `base_pfn`) of each free list.
    heads: [usize; ORDER_SLOTS],
    pub nr_free: [usize; ORDER_SLOTS],
    /// Bit `k` set iff free list `k` is non-empty.
    pub nonempty: u32,
    /// `links[i]`: `[next, prev]` free block heads of the free block headed
    /// by page index `i`, or `[length, _]` if `i` heads a live allocation.
    links: *mut [usize; 2],
    pages: usize,
}

/// Bits of the order-`order` free bitmap of a zone of `pages` pages at
/// `base_pfn`: one per aligned block overlapping the zone.
fn order_bits(base_pfn: usize, pages: usize, order: usize) -> usize {
    ((base_pfn + pages - 1) >> order) - (base_pfn >> order) + 1
}

impl ZoneMeta for BuddyMeta {
    fn trailing_bytes(pages: usize) -> usize {
        let bitmap_words: usize = bits::words_for(pages)
            + (0..ORDER_SLOTS)
                .map(|k| bits::words_for((pages >> k) + 2))
                .sum::<usize>();
        8 * bitmap_words + pages * size_of::<[usize; 2]>()
    }

    unsafe fn new(trailing: *mut u8, base_pfn: usize, pages: usize) -> Self {
        // SAFETY: (the whole block) links, live bits, then the order bitmaps are
        // consecutive, 8-aligned (as `trailing` is) and disjoint, and take at
        // most `trailing_bytes(pages)` bytes because
        // `order_bits(..) <= (pages >> k) + 2`.
        unsafe {
            let links = trailing.cast::<[usize; 2]>();
            let mut cursor = links.add(pages).cast::<u64>();
            let live = RawBits::new(cursor, pages);
            cursor = cursor.add(bits::words_for(pages));
            let mut free_bits = [OrderBits::EMPTY; ORDER_SLOTS];
            for (k, slot) in free_bits.iter_mut().enumerate() {
                let n = order_bits(base_pfn, pages, k);
                *slot = OrderBits {
                    words: cursor,
                    bits: n,
                    first: base_pfn >> k,
                };
                cursor = cursor.add(bits::words_for(n));
            }
            Self {
                free_bits,
                live,
                heads: [NIL; ORDER_SLOTS],
                nr_free: [0; ORDER_SLOTS],
                nonempty: 0,
                links,
                pages,
            }
        }
    }
}

impl BuddyMeta {
    #[inline]
    fn links(&mut self) -> &mut [[usize; 2]] {
        // SAFETY: `pages` entries reserved by `trailing_bytes`, owned by
        // this zone; `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(self.links, self.pages) }
    }

    /// The length of the live allocation whose first page is index
    /// `index` (`< pages`), if one starts there.
    #[inline]
    pub fn live_length(&self, index: usize) -> Option<usize> {
        if !bits::get(self.live.words(), index) {
            return None;
        }
        assert!(index < self.pages);
        // SAFETY: in bounds (checked); a read of one entry of the links
        // this zone owns, while no mutable view exists (`&self`).
        Some(unsafe { (*self.links.add(index))[0] })
    }

    /// Records a live allocation of `count` pages at page index `index`.
    #[inline]
    pub fn mark_live(&mut self, index: usize, count: usize) {
        bits::set(self.live.words_mut(), index);
        self.links()[index][0] = count;
    }

    /// Forgets the live allocation at page index `index`.
    #[inline]
    pub fn clear_live(&mut self, index: usize) {
        bits::clear(self.live.words_mut(), index);
    }
}

impl Zone<BuddyMeta> {
    /// Whether the order-`order` block at frame `pfn` is free: one bit
    /// test (a block outside the zone falls outside the bitmap).
    #[inline]
    pub fn is_free_block(&self, pfn: usize, order: usize) -> bool {
        self.meta.free_bits[order].get(pfn, order)
    }

    /// Puts the free block at `pfn` on list `order`, without merging.
    #[inline]
    pub fn push(&mut self, pfn: usize, order: usize) {
        let index = pfn - self.base_pfn;
        let meta = &mut self.meta;
        meta.free_bits[order].put(pfn, order, true);
        let old = meta.heads[order];
        let links = meta.links();
        links[index] = [old, NIL];
        if old != NIL {
            links[old][1] = index;
        }
        meta.heads[order] = index;
        meta.nr_free[order] += 1;
        meta.nonempty |= 1 << order;
    }

    /// Takes the free block at `pfn` off list `order`, in O(1).
    #[inline]
    pub fn unlink(&mut self, pfn: usize, order: usize) {
        let index = pfn - self.base_pfn;
        let meta = &mut self.meta;
        meta.free_bits[order].put(pfn, order, false);
        let links = meta.links();
        let [next, prev] = links[index];
        if next != NIL {
            links[next][1] = prev;
        }
        if prev != NIL {
            links[prev][0] = next;
        } else {
            meta.heads[order] = next;
            if next == NIL {
                meta.nonempty &= !(1 << order);
            }
        }
        meta.nr_free[order] -= 1;
    }

    /// Takes the first block off non-empty list `order`; returns its frame.
    #[inline]
    pub fn pop(&mut self, order: usize) -> usize {
        let pfn = self.base_pfn + self.meta.heads[order];
        self.unlink(pfn, order);
        pfn
    }

    /// Frees the order-`order` block at `pfn`, merging with its buddy while
    /// the buddy is free, up to `max_order`.
    #[inline]
    pub fn free_block(&mut self, mut pfn: usize, mut order: usize, max_order: usize) {
        while order < max_order {
            let buddy = pfn ^ (1 << order);
            if !self.is_free_block(buddy, order) {
                break;
            }
            self.unlink(buddy, order);
            pfn &= !(1 << order);
            order += 1;
        }
        self.push(pfn, order);
    }

    /// The free block containing page frame `pfn` (managed here), if the
    /// page is free: its head and order. O(`max_order`).
    pub fn free_block_containing(&self, pfn: usize, max_order: usize) -> Option<(usize, usize)> {
        (0..=max_order)
            .map(|order| (pfn & !((1 << order) - 1), order))
            .find(|&(head, order)| self.is_free_block(head, order))
    }

    /// Calls `f(first_pfn, len)` for every maximal run of free pages, by
    /// walking the blocks head to head: O(blocks * `max_order`).
    pub fn for_each_free_run(&self, max_order: usize, mut f: impl FnMut(usize, usize)) {
        let mut index = 0;
        let mut run: Option<usize> = None;
        while index < self.pages {
            let pfn = self.base_pfn + index;
            let (len, free) = match self.meta.live_length(index) {
                Some(count) => (count, false),
                None => {
                    let (head, order) = self
                        .free_block_containing(pfn, max_order)
                        .expect("every page is in a live allocation or a free block");
                    debug_assert_eq!(head, pfn);
                    (1 << order, true)
                }
            };
            match (free, run) {
                (true, None) => run = Some(index),
                (false, Some(start)) => {
                    f(self.base_pfn + start, index - start);
                    run = None;
                }
                _ => {}
            }
            index += len;
        }
        if let Some(start) = run {
            f(self.base_pfn + start, self.pages - start);
        }
    }
}

/// The maximal naturally aligned blocks, none above `max_order`, that tile
/// the page frames `[start, end)`, in address order.
pub(crate) fn aligned_blocks(
    mut start: usize,
    end: usize,
    max_order: usize,
) -> impl Iterator<Item = (usize, usize)> {
    core::iter::from_fn(move || {
        if start >= end {
            return None;
        }
        let align = if start == 0 {
            usize::BITS
        } else {
            start.trailing_zeros()
        };
        let order = (align.min((end - start).ilog2()) as usize).min(max_order);
        let block = (start, order);
        start += 1 << order;
        Some(block)
    })
}

/// The same blocks as [`aligned_blocks`], from the top down.
pub(crate) fn aligned_blocks_rev(
    start: usize,
    mut end: usize,
    max_order: usize,
) -> impl Iterator<Item = (usize, usize)> {
    core::iter::from_fn(move || {
        if start >= end {
            return None;
        }
        let align = if end == 0 {
            usize::BITS
        } else {
            end.trailing_zeros()
        };
        let order = (align.min((end - start).ilog2()) as usize).min(max_order);
        end -= 1 << order;
        Some((end, order))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn both_directions_give_the_same_maximal_blocks() {
        for (start, end, max) in [(0, 64, 4), (3, 77, 3), (1, 2, 5), (5, 1029, 18), (7, 8, 0)] {
            let mut up: Vec<_> = aligned_blocks(start, end, max).collect();
            let down: Vec<_> = aligned_blocks_rev(start, end, max).collect();
            up.reverse();
            assert_eq!(up, down, "[{start}, {end}) max {max}");
            let covered: usize = down.iter().map(|&(_, o)| 1usize << o).sum();
            assert_eq!(covered, end - start);
            assert!(down.iter().all(|&(p, o)| p % (1 << o) == 0 && o <= max));
        }
    }
}
