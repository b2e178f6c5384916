//! "Is `n` a multiple of the object size?" without a division: the test
//! every slab free makes to refuse a pointer into the middle of an object.
//!
//! Granlund and Montgomery, "Division by invariant integers using
//! multiplication" (PLDI 1994), section 9: write the divisor as
//! `odd << shift`; multiplying by the inverse of `odd` modulo `2^64` maps
//! the multiples of `odd` exactly onto `0..=usize::MAX / odd` (it is a
//! bijection of `usize` that sends `k * odd` to `k`), and the multiples of
//! `odd << shift` are those among them whose low `shift` bits are zero,
//! which a rotation right by `shift` moves to the top, out of that range.
//! [`ExactDivisor::divides`] checks itself against `%` in debug builds.

/// A divisor `d = odd << shift`, prepared for exact divisibility tests.
#[derive(Clone, Copy, Debug)]
pub(super) struct ExactDivisor {
    /// `odd_inverse * odd == 1 (mod 2^64)`.
    odd_inverse: usize,
    shift: u32,
    /// `usize::MAX / divisor`: the largest quotient of a multiple.
    max_quotient: usize,
}

impl ExactDivisor {
    /// Prepares `divisor`, which is not zero.
    pub const fn new(divisor: usize) -> Self {
        assert!(divisor != 0);
        let shift = divisor.trailing_zeros();
        Self {
            odd_inverse: odd_inverse(divisor >> shift),
            shift,
            max_quotient: usize::MAX / divisor,
        }
    }

    /// Whether `n` is a multiple of the divisor: `n % divisor == 0`, for
    /// every `usize`, in a multiply, a rotate and a compare.
    #[inline(always)]
    pub fn divides(&self, n: usize) -> bool {
        let fast = n.wrapping_mul(self.odd_inverse).rotate_right(self.shift) <= self.max_quotient;
        debug_assert_eq!(
            fast,
            n.is_multiple_of(self.divisor()),
            "{n} / {}",
            self.divisor()
        );
        fast
    }

    /// The divisor, recovered (the inverse of the inverse is `odd`): for
    /// the debug check, which keeps the struct at three words.
    fn divisor(&self) -> usize {
        odd_inverse(self.odd_inverse) << self.shift
    }
}

/// The inverse of odd `odd` modulo `2^64`, by Newton's iteration: `odd` is
/// its own inverse modulo 8 (3 correct low bits), and each step doubles
/// the correct bits (3, 6, 12, 24, 48, 96 >= 64).
const fn odd_inverse(odd: usize) -> usize {
    let mut inverse = odd;
    let mut step = 0;
    while step < 5 {
        inverse = inverse.wrapping_mul(2usize.wrapping_sub(odd.wrapping_mul(inverse)));
        step += 1;
    }
    inverse
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn divides_exactly_the_multiples_at_every_scale() {
        let sizes = [8, 16, 24, 40, 64, 96, 104, 192, 1000, 2048, 4000, 12345 * 8];
        for size in sizes {
            let divisor = ExactDivisor::new(size);
            assert_eq!(divisor.divisor(), size);
            // Every offset of 64 objects natively; under Miri, each
            // object's start and its neighbours.
            let offsets: Vec<usize> = if cfg!(miri) {
                (0..8)
                    .flat_map(|k| [0, 1, 8, size / 2, size - 1].map(|d| k * size + d))
                    .collect()
            } else {
                (0..64 * size).collect()
            };
            // Offsets "below" the first object wrap to huge values.
            let wrapped =
                [1, 8, size - 1, size, size + 8, 2 * size].map(|b| 0usize.wrapping_sub(b));
            for n in offsets.into_iter().chain(wrapped).chain([usize::MAX]) {
                // `divides` asserts its agreement with `%` itself in debug
                // builds; the explicit compare covers release test runs.
                assert_eq!(
                    divisor.divides(n),
                    n.is_multiple_of(size),
                    "size {size}, n {n}"
                );
            }
        }
    }
}
