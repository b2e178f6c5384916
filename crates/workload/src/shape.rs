//! The shapes of a workload: request sizes, alignments and lifetimes.

use crate::Rng;

/// How request sizes are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// Log-uniform in `min..=max` (each power-of-two range equally likely).
    Random { min: usize, max: usize },
    /// Always the same size.
    Fixed(usize),
    /// `min`, `min + step`, ... up to `max`, then again from `min`.
    Increasing { min: usize, max: usize, step: usize },
    /// `max`, `max - step`, ... down to `min`, then again from `max`.
    Decreasing { min: usize, max: usize, step: usize },
    /// Powers of two in `min..=max`.
    PowersOfTwo { min: usize, max: usize },
    /// Odd sizes in `min..=max` (every request needs rounding).
    Odd { min: usize, max: usize },
    /// Whole pages: `1..=max_pages` pages of `page_size` bytes, log-uniform.
    Pages { page_size: usize, max_pages: usize },
}

impl Sizes {
    /// The size of the `nth` request.
    pub(crate) fn draw(&self, rng: &mut Rng, nth: usize) -> usize {
        match *self {
            Sizes::Random { min, max } => rng.log_uniform(min.max(1), max),
            Sizes::Fixed(size) => size,
            Sizes::Increasing { min, max, step } => min + (nth * step) % (max - min + 1),
            Sizes::Decreasing { min, max, step } => max - (nth * step) % (max - min + 1),
            Sizes::PowersOfTwo { min, max } => {
                1 << rng.between(min.max(1).ilog2() as usize, max.ilog2() as usize)
            }
            Sizes::Odd { min, max } => rng.between(min, max) | 1,
            Sizes::Pages {
                page_size,
                max_pages,
            } => rng.log_uniform(1, max_pages) * page_size,
        }
    }
}

/// How alignments are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aligns {
    /// What `Layout::new::<T>()` would give for a size: its largest power
    /// of two factor, capped at 16.
    Natural,
    /// Always this alignment.
    Fixed(usize),
    /// A power of two up to `max`, large ones rare (1 in 16 requests draws
    /// uniformly among all powers, the rest are natural).
    Occasional { max: usize },
}

impl Aligns {
    pub(crate) fn draw(&self, rng: &mut Rng, size: usize) -> usize {
        let natural = 1 << size.trailing_zeros().min(4);
        match *self {
            Aligns::Natural => natural,
            Aligns::Fixed(align) => align,
            Aligns::Occasional { max } if rng.below(16) == 0 => {
                1 << rng.between(0, max.ilog2() as usize)
            }
            Aligns::Occasional { .. } => natural,
        }
    }
}

/// Which live block is freed next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetimes {
    /// The newest (a stack).
    Lifo,
    /// The oldest (a queue).
    Fifo,
    /// Any, uniformly.
    Random,
    /// `long_lived_percent` of the blocks live much longer than the rest
    /// (they are picked for freeing 1 time in 16), the others are random.
    Mixed { long_lived_percent: u32 },
}
