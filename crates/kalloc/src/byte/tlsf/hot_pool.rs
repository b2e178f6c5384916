//! The TLSF's hot pool: the pool of the last free, kept beside the
//! bitmaps so `dealloc` finds and range-checks a pointer's pool with one
//! subtraction, rotate and compare, and searches the sorted pool table
//! only on a miss.

use core::ptr;

use super::TlsfPool;
use super::block::{self, Block, GRANULE, HEADER, MIN_BLOCK, granules};

/// The pool the last `dealloc` hit (at first, the first pool added): a
/// free checks "inside a pool, granule-aligned, in front of the sentinel"
/// against it before any table search. A miss falls back to the pool table
/// (which then refills it). With no pool it matches no address.
#[derive(Clone, Copy, Debug)]
pub(super) struct HotPool {
    /// The pool's base pointer (provenance for every block pointer); null
    /// while empty.
    pub base: *mut u8,
    /// The lowest payload address: the first block's payload.
    pub payload_lo: usize,
    /// How many granules the highest possible payload (that of a minimum
    /// block ending at the sentinel) lies above `payload_lo`.
    payload_granules: usize,
    pub first_block: usize,
    /// The sentinel's address: where the last block ends.
    pub sentinel: usize,
}

impl HotPool {
    pub const EMPTY: Self = Self {
        base: ptr::null_mut(),
        payload_lo: 0,
        payload_granules: 0,
        first_block: 0,
        sentinel: 0,
    };

    pub fn of(pool: &TlsfPool) -> Self {
        let payload_lo = pool.first_block + HEADER;
        Self {
            base: pool.base.as_ptr(),
            payload_lo,
            payload_granules: (pool.sentinel - MIN_BLOCK + HEADER - payload_lo) / GRANULE,
            first_block: pool.first_block,
            sentinel: pool.sentinel,
        }
    }

    /// Whether `addr` is a payload address at which a block of this pool
    /// could start its payload: at most `payload_granules` whole granules
    /// above `payload_lo` (which is granule-aligned), so inside the pool
    /// and granule-aligned; an address below `payload_lo` wraps to a huge
    /// offset. The empty hot pool matches nothing: a non-null `addr` either
    /// is misaligned or is at least one granule.
    #[inline(always)]
    pub fn holds_payload(&self, addr: usize) -> bool {
        granules(addr.wrapping_sub(self.payload_lo)) <= self.payload_granules
    }

    /// The block whose header is at `addr`, with the pool's provenance.
    #[inline(always)]
    pub fn block_at(&self, addr: usize) -> *mut Block {
        block::block_at(self.base, addr)
    }
}
