//! The byte patterns the layers write, and the scan that finds the first
//! byte that differs. Values follow Linux's `include/linux/poison.h`.

/// Freed byte-allocator objects (SLUB's `POISON_FREE`). Eight of them make
/// 0x6b6b_6b6b_6b6b_6b6b, a non-canonical Sv39 address: a stale pointer
/// loaded from freed memory faults at once.
pub const FREE_POISON: u8 = 0x6b;
/// Freed pages (a pattern distinct from objects, so reports tell them apart).
pub const PAGE_FREE_POISON: u8 = 0xaa;
/// New blocks when alloc poisoning is on (SLUB's `POISON_INUSE`).
pub const ALLOC_POISON: u8 = 0x5a;
/// Red zones of live objects (SLUB's `SLUB_RED_ACTIVE`).
pub const REDZONE_ACTIVE: u8 = 0xcc;
/// Red zones of freed objects (SLUB's `SLUB_RED_INACTIVE`).
pub const REDZONE_INACTIVE: u8 = 0xbb;

/// Fills `len` bytes at `ptr` with `byte`.
///
/// # Safety
/// `ptr..ptr + len` must be valid for writes.
pub(crate) unsafe fn fill(ptr: *mut u8, len: usize, byte: u8) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::write_bytes(ptr, byte, len) }
}

/// The offset of the first byte in `ptr..ptr + len` that is not `byte`.
///
/// Poison and red zones are checked on every quarantine eviction and every
/// free, and they are almost always intact, so the common case is made
/// fast: one pass ORs `word ^ pattern` over the whole range with no early
/// exit (a reduction the compiler turns into wide vector or unrolled word
/// operations, several times faster than a compare-and-branch per word),
/// and only when that finds damage does a second, bytewise pass locate the
/// first bad byte for the report. Nothing is sampled: every byte is
/// compared either way.
///
/// # Safety
/// `ptr..ptr + len` must be valid for reads.
pub(crate) unsafe fn first_mismatch(ptr: *const u8, len: usize, byte: u8) -> Option<usize> {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    if is_filled(bytes, byte) {
        return None;
    }
    bytes.iter().position(|&b| b != byte)
}

/// Whether every byte of `bytes` is `byte` (no early exit: see
/// [`first_mismatch`]).
fn is_filled(bytes: &[u8], byte: u8) -> bool {
    let word = u64::from_ne_bytes([byte; 8]);
    // SAFETY: any bit pattern is a valid u64.
    let (head, middle, tail) = unsafe { bytes.align_to::<u64>() };
    let edges = head
        .iter()
        .chain(tail)
        .fold(0, |diff, &b| diff | (b ^ byte));
    let words = middle.iter().fold(0, |diff, &w| diff | (w ^ word));
    edges == 0 && words == 0
}

/// Copies up to 16 bytes at `ptr + offset` (bounded by `len`) for a report.
///
/// # Safety
/// `ptr..ptr + len` must be valid for reads.
pub(crate) unsafe fn found_bytes(ptr: *const u8, len: usize, offset: usize) -> crate::FoundBytes {
    let end = len.min(offset + 16);
    // SAFETY: `offset..end` lies within `0..len`, valid per the caller.
    let bytes = unsafe { core::slice::from_raw_parts(ptr.add(offset), end - offset) };
    crate::FoundBytes::new(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_mismatch_in_head_middle_and_tail() {
        let mut buf = [FREE_POISON; 67];
        assert_eq!(
            // SAFETY: `buf` is a live local array of 67 bytes.
            unsafe { first_mismatch(buf.as_ptr(), 67, FREE_POISON) },
            None
        );
        for at in [0, 1, 7, 8, 31, 60, 66] {
            let mut copy = buf;
            copy[at] = 0;
            assert_eq!(
                // SAFETY: as above.
                unsafe { first_mismatch(copy.as_ptr(), 67, FREE_POISON) },
                Some(at)
            );
        }
        let mut long = [FREE_POISON; 4099];
        for at in [0, 9, 2048, 4090, 4098] {
            long[at] = 0x6a;
            // SAFETY: `long` is a live local array; offset 3 leaves a head,
            // a long aligned middle and a tail.
            let found = unsafe { first_mismatch(long.as_ptr().add(3), 4096, FREE_POISON) };
            assert_eq!(found, at.checked_sub(3).filter(|&o| o < 4096));
            long[at] = FREE_POISON;
        }
        buf[40] = 1;
        buf[50] = 1;
        assert_eq!(
            // SAFETY: as above; starting one byte in makes the head unaligned.
            unsafe { first_mismatch(buf.as_ptr().add(1), 66, FREE_POISON) },
            Some(39)
        );
    }
}
