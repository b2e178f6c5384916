//! The contents every block carries while it is live: a pattern derived
//! from its owner and sequence number, so a block overwritten by another
//! (overlap), by the allocator (metadata in live memory) or by a stale
//! writer is caught when it is checked before being freed.

/// The pattern's seed for one block.
pub(crate) fn seed(owner: u32, seq: u64) -> u64 {
    ((owner as u64) << 40) ^ seq ^ 0x5eed_0000_0000_0000
}

fn word(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Writes the pattern over `len` bytes at `ptr`.
///
/// # Safety
/// `ptr..ptr + len` must be valid for writes.
pub(crate) unsafe fn fill(ptr: *mut u8, len: usize, seed: u64) {
    let words = len / 8;
    for index in 0..words {
        // SAFETY: `index * 8 + 8 <= len`; unaligned writes are allowed.
        unsafe {
            ptr.add(index * 8)
                .cast::<u64>()
                .write_unaligned(word(seed, index))
        };
    }
    let tail = word(seed, words).to_le_bytes();
    for (offset, byte) in (words * 8..len).zip(tail) {
        // SAFETY: `offset < len`.
        unsafe { ptr.add(offset).write(byte) };
    }
}

/// The first offset where the pattern differs, with the bytes expected and
/// found there.
///
/// # Safety
/// `ptr..ptr + len` must be valid for reads.
pub(crate) unsafe fn check(ptr: *const u8, len: usize, seed: u64) -> Option<(usize, u8, u8)> {
    let words = len / 8;
    for index in 0..words {
        let expected = word(seed, index);
        // SAFETY: `index * 8 + 8 <= len`; unaligned reads are allowed.
        let found = unsafe { ptr.add(index * 8).cast::<u64>().read_unaligned() };
        if found != expected {
            let byte = ((found ^ expected).to_le().trailing_zeros() / 8) as usize;
            return Some((
                index * 8 + byte,
                expected.to_le_bytes()[byte],
                found.to_le_bytes()[byte],
            ));
        }
    }
    let tail = word(seed, words).to_le_bytes();
    for (offset, expected) in (words * 8..len).zip(tail) {
        // SAFETY: `offset < len`.
        let found = unsafe { ptr.add(offset).read() };
        if found != expected {
            return Some((offset, expected, found));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_any_changed_byte() {
        let mut buf = [0u8; 29];
        for at in 0..29 {
            // SAFETY: `buf` is a live 29-byte local (offset 1 makes it unaligned).
            unsafe { fill(buf.as_mut_ptr().add(1), 28, 7) };
            // SAFETY: as above.
            assert_eq!(unsafe { check(buf.as_ptr().add(1), 28, 7) }, None);
            if at == 0 {
                continue;
            }
            buf[at] ^= 0x10;
            // SAFETY: as above.
            let (offset, expected, found) = unsafe { check(buf.as_ptr().add(1), 28, 7) }.unwrap();
            assert_eq!(offset, at - 1);
            assert_eq!(expected ^ found, 0x10);
        }
        // Another owner's pattern differs.
        // SAFETY: as above.
        assert!(unsafe { check(buf.as_ptr().add(1), 28, seed(2, 1)) }.is_some());
    }
}
