//! One buddy zone's free structures: per-order free bitmaps (is the block
//! of order `k` at frame `p` free? one bit test) and per-order doubly linked
//! free lists threaded through side arrays (O(1) push, pop and removal of
//! any block), so neither allocation nor merging scans a list.

use core::mem::size_of;

use super::super::bits::{self, RawBits};
use super::super::occupancy::Occupancy;
use super::super::zone::{Zone, ZoneMeta};

/// Orders the metadata has room for: `0..ORDER_SLOTS`.
pub(crate) const ORDER_SLOTS: usize = 32;
const NIL: usize = usize::MAX;

/// A buddy zone's metadata (lives in the zone's own region).
pub(crate) struct BuddyMeta {
    pub occ: Occupancy,
    /// `free_bits[k]`: bit `(p >> k) - (base_pfn >> k)` is set iff the
    /// order-`k` block at frame `p` is on free list `k`.
    free_bits: [RawBits; ORDER_SLOTS],
    /// First page index (relative to `base_pfn`) of each free list.
    heads: [usize; ORDER_SLOTS],
    pub nr_free: [usize; ORDER_SLOTS],
    /// Bit `k` set iff free list `k` is non-empty.
    pub nonempty: u32,
    /// `links[2 * i]` / `links[2 * i + 1]`: next / previous free block head
    /// of the block whose head is page index `i`.
    links: *mut usize,
    pages: usize,
}

/// Bits of the order-`order` free bitmap of a zone of `pages` pages at
/// `base_pfn`: one per aligned block overlapping the zone.
fn order_bits(base_pfn: usize, pages: usize, order: usize) -> usize {
    ((base_pfn + pages - 1) >> order) - (base_pfn >> order) + 1
}

impl ZoneMeta for BuddyMeta {
    fn trailing_bytes(pages: usize) -> usize {
        let order_words: usize = (0..ORDER_SLOTS)
            .map(|k| bits::words_for((pages >> k) + 2))
            .sum();
        Occupancy::bytes(pages) + 8 * order_words + 2 * size_of::<usize>() * pages
    }

    unsafe fn new(trailing: *mut u8, base_pfn: usize, pages: usize) -> Self {
        // SAFETY (whole block): the pieces below are consecutive and disjoint
        // and together take at most `trailing_bytes(pages)` bytes, because
        // `order_bits(..) <= (pages >> k) + 2`.
        unsafe {
            let occ = Occupancy::new(trailing, pages);
            let mut cursor = trailing.add(Occupancy::bytes(pages)).cast::<u64>();
            let mut free_bits = [RawBits::EMPTY; ORDER_SLOTS];
            for (k, slot) in free_bits.iter_mut().enumerate() {
                let n = order_bits(base_pfn, pages, k);
                *slot = RawBits::new(cursor, n);
                cursor = cursor.add(bits::words_for(n));
            }
            Self {
                occ,
                free_bits,
                heads: [NIL; ORDER_SLOTS],
                nr_free: [0; ORDER_SLOTS],
                nonempty: 0,
                links: cursor.cast::<usize>(),
                pages,
            }
        }
    }
}

impl BuddyMeta {
    fn links(&mut self) -> &mut [usize] {
        // SAFETY: `2 * pages` words reserved by `trailing_bytes`, owned by
        // this zone; `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(self.links, 2 * self.pages) }
    }
}

impl Zone<BuddyMeta> {
    fn bit_of(&self, pfn: usize, order: usize) -> usize {
        (pfn >> order) - (self.base_pfn >> order)
    }

    /// Whether the order-`order` block at frame `pfn` is free (one bit test).
    pub fn is_free_block(&self, pfn: usize, order: usize) -> bool {
        if pfn + (1 << order) <= self.base_pfn || pfn >= self.end_pfn() {
            return false;
        }
        bits::get(self.meta.free_bits[order].words(), self.bit_of(pfn, order))
    }

    /// Puts the free block at `pfn` on list `order`, without merging.
    pub fn push(&mut self, pfn: usize, order: usize) {
        let bit = self.bit_of(pfn, order);
        let index = pfn - self.base_pfn;
        let meta = &mut self.meta;
        bits::set(meta.free_bits[order].words_mut(), bit);
        let old = meta.heads[order];
        let links = meta.links();
        links[2 * index] = old;
        links[2 * index + 1] = NIL;
        if old != NIL {
            links[2 * old + 1] = index;
        }
        meta.heads[order] = index;
        meta.nr_free[order] += 1;
        meta.nonempty |= 1 << order;
    }

    /// Takes the free block at `pfn` off list `order`, in O(1).
    pub fn unlink(&mut self, pfn: usize, order: usize) {
        let bit = self.bit_of(pfn, order);
        let index = pfn - self.base_pfn;
        let meta = &mut self.meta;
        bits::clear(meta.free_bits[order].words_mut(), bit);
        let links = meta.links();
        let (next, prev) = (links[2 * index], links[2 * index + 1]);
        if next != NIL {
            links[2 * next + 1] = prev;
        }
        if prev != NIL {
            links[2 * prev] = next;
        } else {
            meta.heads[order] = next;
        }
        meta.nr_free[order] -= 1;
        if meta.heads[order] == NIL {
            meta.nonempty &= !(1 << order);
        }
    }

    /// Takes the first block off non-empty list `order`; returns its frame.
    pub fn pop(&mut self, order: usize) -> usize {
        let pfn = self.base_pfn + self.meta.heads[order];
        self.unlink(pfn, order);
        pfn
    }

    /// Frees the order-`order` block at `pfn`, merging with its buddy while
    /// the buddy is free, up to `max_order`.
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

    /// The free block containing free page frame `pfn`: its head and order.
    pub fn free_block_containing(&self, pfn: usize, max_order: usize) -> Option<(usize, usize)> {
        (0..=max_order)
            .map(|order| (pfn & !((1 << order) - 1), order))
            .find(|&(head, order)| self.is_free_block(head, order))
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
