//! A fixed-capacity hash table from block address to record, living in
//! memory the kernel hands over (a debug layer must not allocate from the
//! allocator it watches).
//!
//! Open addressing with linear probing and backward-shift deletion (no
//! tombstones, so probe lengths stay short however long the system runs).
//!
//! ```text
//!   slots: [ - | A | B | - | - | C | D | E | - ]   (capacity a power of two)
//!                ^home(A)       ^home(C)=home(D)... a run ends at an empty slot
//! ```
//! Invariant: every entry sits in the run that starts at or before its home
//! slot, with no empty slot between its home and its position.
//!
//! Slots are 64-byte aligned, and a layer's slot (address and record) is
//! exactly 64 bytes: looking a block up costs one cache line, not two.
//! Keys are pointers, compared by address, so the layer keeps the
//! provenance it needs to touch a block's memory later.

use core::mem::MaybeUninit;

/// One slot of a table, opaque to users (they only provide the memory).
#[derive(Clone, Copy)]
#[repr(align(64))]
pub struct Slot<V: Copy>(Option<(*mut u8, V)>);

/// The table: at most 7/8 full, so lookups stay short.
pub(crate) struct Table<'t, V: Copy> {
    slots: &'t mut [Slot<V>],
    mask: usize,
    len: usize,
}

impl<'t, V: Copy> Table<'t, V> {
    /// Initialises a table in `memory` (uses the largest power-of-two prefix).
    pub(crate) fn new(memory: &'t mut [MaybeUninit<Slot<V>>]) -> Self {
        let capacity = if memory.is_empty() {
            0
        } else {
            1 << memory.len().ilog2()
        };
        let memory = &mut memory[..capacity];
        for slot in memory.iter_mut() {
            slot.write(Slot(None));
        }
        // SAFETY: every element was initialised just above, and
        // `MaybeUninit<T>` has the same layout as `T`.
        let slots = unsafe { &mut *(memory as *mut [MaybeUninit<Slot<V>>] as *mut [Slot<V>]) };
        Table {
            slots,
            mask: capacity.wrapping_sub(1),
            len: 0,
        }
    }

    /// How many entries the table accepts.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len() / 8 * 7
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn home(&self, key: usize) -> usize {
        // Fibonacci hashing: block addresses share their low bits, the
        // multiply spreads the high ones.
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as usize)).rotate_left(20) & self.mask
    }

    /// The slot holding `key` (`Ok`), or the empty slot where it would
    /// go (`Err`); one probe sequence either way. `Err(usize::MAX)` if the
    /// table has no slots.
    fn locate(&self, key: usize) -> Result<usize, usize> {
        if self.slots.is_empty() {
            return Err(usize::MAX);
        }
        let mut index = self.home(key);
        loop {
            match self.slots[index].0 {
                None => return Err(index),
                Some((k, _)) if k.addr() == key => return Ok(index),
                Some(_) => index = (index + 1) & self.mask,
            }
        }
    }

    /// The slot holding `key`. Slot numbers stay valid until the next
    /// insert or remove.
    pub(crate) fn position(&self, key: usize) -> Option<usize> {
        self.locate(key).ok()
    }

    #[cfg(test)]
    pub(crate) fn get(&self, key: usize) -> Option<&V> {
        let index = self.position(key)?;
        self.slots[index].0.as_ref().map(|(_, v)| v)
    }

    /// The value in an occupied slot (from [`position`](Self::position)).
    pub(crate) fn at(&self, slot: usize) -> &V {
        &self.slots[slot]
            .0
            .as_ref()
            .expect("slot from position() is occupied")
            .1
    }

    /// The value in an occupied slot, mutably.
    pub(crate) fn at_mut(&mut self, slot: usize) -> &mut V {
        &mut self.slots[slot]
            .0
            .as_mut()
            .expect("slot from position() is occupied")
            .1
    }

    /// The key of an occupied slot, with its provenance.
    pub(crate) fn key_at(&self, slot: usize) -> *mut u8 {
        self.slots[slot]
            .0
            .expect("slot from position() is occupied")
            .0
    }

    /// Inserts or replaces; `Err(value)` when the table is full.
    pub(crate) fn insert(&mut self, key: *mut u8, value: V) -> Result<(), V> {
        match self.locate(key.addr()) {
            Ok(slot) => {
                *self.at_mut(slot) = value;
                Ok(())
            }
            Err(_) if self.len >= self.capacity() => Err(value),
            Err(slot) => {
                self.slots[slot] = Slot(Some((key, value)));
                self.len += 1;
                Ok(())
            }
        }
    }

    /// Removes and returns the entry for `key`.
    #[cfg(test)]
    pub(crate) fn remove(&mut self, key: usize) -> Option<V> {
        let slot = self.position(key)?;
        Some(self.remove_at(slot).1)
    }

    /// Removes the entry in an occupied slot.
    pub(crate) fn remove_at(&mut self, slot: usize) -> (*mut u8, V) {
        let mut hole = slot;
        let removed = self.slots[hole]
            .0
            .take()
            .expect("slot from position() is occupied");
        self.len -= 1;
        // Backward shift: pull later entries of the run into the hole when
        // their home does not lie strictly between the hole and them.
        let mut next = (hole + 1) & self.mask;
        while let Some((k, _)) = self.slots[next].0 {
            let home = self.home(k.addr());
            let distance_to_next = next.wrapping_sub(home) & self.mask;
            let distance_to_hole = hole.wrapping_sub(home) & self.mask;
            if distance_to_hole <= distance_to_next {
                self.slots[hole] = self.slots[next];
                self.slots[next] = Slot(None);
                hole = next;
            }
            next = (next + 1) & self.mask;
        }
        removed
    }

    /// The first entry at slot `from` or later: `(slot, key, value)`.
    pub(crate) fn next_from(&self, from: usize) -> Option<(usize, *mut u8, V)> {
        (from..self.slots.len()).find_map(|slot| self.slots[slot].0.map(|(k, v)| (slot, k, v)))
    }

    /// Every entry, in table order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (*mut u8, &V)> + '_ {
        self.slots
            .iter()
            .filter_map(|slot| slot.0.as_ref().map(|(k, v)| (*k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    fn address(addr: usize) -> *mut u8 {
        core::ptr::without_provenance_mut(addr)
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn slots_are_one_cache_line() {
        assert_eq!(core::mem::size_of::<crate::RecordSlot>(), 64);
        assert_eq!(core::mem::align_of::<crate::RecordSlot>(), 64);
    }

    fn memory(n: usize) -> Vec<MaybeUninit<Slot<u32>>> {
        (0..n).map(|_| MaybeUninit::uninit()).collect()
    }

    #[test]
    fn refuses_inserts_beyond_seven_eighths() {
        let mut mem = memory(16);
        let mut table = Table::new(&mut mem);
        for key in 0..14 {
            table.insert(address(key * 64), key as u32).unwrap();
        }
        assert_eq!(table.insert(address(9999), 1), Err(1));
        assert_eq!(table.len(), 14);
    }

    #[test]
    fn uses_power_of_two_prefix_of_memory() {
        let mut mem = memory(100);
        let table = Table::<u32>::new(&mut mem);
        assert_eq!(table.capacity(), 56);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0usize..48, any::<bool>()), 1..200)) {
            let mut mem = memory(64);
            let mut table = Table::new(&mut mem);
            let mut model = BTreeMap::new();
            for (i, (key, insert)) in ops.into_iter().enumerate() {
                let key = key * 4096;
                if insert {
                    let ok = table.insert(address(key), i as u32).is_ok();
                    if ok { model.insert(key, i as u32); }
                    prop_assert!(ok || model.len() >= table.capacity());
                } else {
                    prop_assert_eq!(table.remove(key), model.remove(&key));
                }
                prop_assert_eq!(table.len(), model.len());
                for (k, v) in &model {
                    prop_assert_eq!(table.get(*k), Some(v));
                }
            }
        }
    }
}
