//! The buddy allocator's free lists: one per order, doubly linked through
//! the free blocks' first unit, with the head's `prev` left stale (a pop
//! never touches the next block) and a lazy bitmap of the non-empty ones.

use super::pool::{BuddyPool, FREE};
use super::{BuddyByteAllocator, FreeNode, HEADS};

impl BuddyByteAllocator {
    #[inline(always)]
    pub(super) fn head(&mut self, order: usize) -> &mut *mut FreeNode {
        &mut self.heads[order % HEADS]
    }

    /// Tags the block at `unit` (address `addr`) free and lists it.
    ///
    /// # Safety
    /// A block of `order` starts at `unit` of `pool` and is on no list.
    #[inline(always)]
    pub(super) unsafe fn push_free(
        &mut self,
        pool: &BuddyPool,
        unit: usize,
        addr: usize,
        order: usize,
    ) {
        let node = pool.node(addr);
        let head = self.head(order);
        let next = *head;
        *head = node;
        // SAFETY: the block is ours and at least one unit (two links) long;
        // a listed head is a valid free block.
        unsafe {
            pool.set_tag(unit, FREE | order as u8);
            (*node).next = next;
            if next.is_null() {
                self.nonempty |= 1 << order;
            } else {
                (*next).prev = node;
            }
        }
    }

    /// Removes the head of the list of `order` and returns it.
    ///
    /// # Safety
    /// The list of `order` is non-empty.
    #[inline(always)]
    pub(super) unsafe fn pop(&mut self, order: usize) -> *mut FreeNode {
        let head = self.head(order);
        let node = *head;
        // SAFETY: the caller guarantees a listed node.
        *head = unsafe { (*node).next };
        node
    }

    /// Unlinks a listed free block from the list of `order`, leaving its
    /// tag to the caller.
    ///
    /// # Safety
    /// `node` is a listed free block of `order`.
    #[inline(always)]
    pub(super) unsafe fn unlink(&mut self, node: *mut FreeNode, order: usize) {
        // SAFETY: listed nodes and their neighbours are valid free blocks;
        // `prev` is valid for every node but the head.
        unsafe {
            if *self.head(order) == node {
                self.pop(order);
                return;
            }
            let FreeNode { next, prev } = *node;
            (*prev).next = next;
            if !next.is_null() {
                (*next).prev = prev;
            }
        }
    }
}
