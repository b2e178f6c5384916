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
//! For a multiple, the result is the quotient itself
//! ([`ExactDivisor::quotient`]): an object's index from its offset, and
//! for any other `n` a value above every index, so one compare tells both
//! "on a boundary" and "below the objects handed out". It checks itself
//! against `%` and `/` in debug builds.

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

    /// `n / divisor` if the divisor divides `n`, else a value above
    /// `usize::MAX / divisor`: the multiply and the rotate of the module
    /// doc. So `quotient(n) < count`, for any `count` up
    /// to `usize::MAX / divisor`, is "`n` is one of the first `count`
    /// multiples" in a multiply, a rotate and one compare: a free's
    /// boundary and range checks at once.
    #[inline(always)]
    pub fn quotient(&self, n: usize) -> usize {
        let q = n.wrapping_mul(self.odd_inverse).rotate_right(self.shift);
        debug_assert!(if n.is_multiple_of(self.divisor()) {
            q == n / self.divisor()
        } else {
            q > self.max_quotient
        });
        q
    }

    /// `base`'s share of [`quotient_from`](Self::quotient_from), done
    /// once: the multiply distributes over the subtraction modulo `2^64`.
    pub const fn premultiply(&self, base: usize) -> usize {
        base.wrapping_mul(self.odd_inverse)
    }

    /// `quotient(n - base)`, given `premultiply(base)`: one subtraction
    /// fewer per call than subtracting `base` first, for a `base` fixed
    /// ahead (a slab's first object).
    #[inline(always)]
    pub fn quotient_from(&self, n: usize, premultiplied_base: usize) -> usize {
        let q = n
            .wrapping_mul(self.odd_inverse)
            .wrapping_sub(premultiplied_base)
            .rotate_right(self.shift);
        debug_assert_eq!(
            q,
            self.quotient(
                n.wrapping_sub(odd_inverse(self.odd_inverse).wrapping_mul(premultiplied_base))
            )
        );
        q
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
                // `quotient` asserts its agreement with `%` itself in debug
                // builds; the explicit compare covers release test runs.
                let q = divisor.quotient(n);
                assert_eq!(
                    q <= divisor.max_quotient,
                    n.is_multiple_of(size),
                    "size {size}, n {n}"
                );
                for base in [0, 8, 64, size] {
                    let from =
                        divisor.quotient_from(n.wrapping_add(base), divisor.premultiply(base));
                    assert_eq!(from, q, "size {size}, n {n}, base {base}");
                }
                if n.is_multiple_of(size) {
                    assert_eq!(q, n / size, "size {size}, n {n}");
                } else {
                    assert!(q > usize::MAX / size, "size {size}, n {n}");
                }
            }
        }
    }
}
