//! A small, fast, seedable generator (SplitMix64): workloads must replay
//! exactly from a printed seed, on the host and inside the kernel.

/// SplitMix64 (Steele, Lea, Flood 2014): one add and a 64-bit mix per
/// number; every seed, including 0, gives a full-period sequence.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub const fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`), by Lemire's multiply-shift.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below((high - low) as u64 + 1) as usize
    }

    /// Log-uniform in `low..=high` (`low >= 1`): each power-of-two range is
    /// equally likely, as in allocator benchmarks.
    pub fn log_uniform(&mut self, low: usize, high: usize) -> usize {
        let low_log = low.ilog2();
        let high_log = high.ilog2();
        let log = self.between(low_log as usize, high_log as usize) as u32;
        let start = (1usize << log).max(low);
        let end = if log == usize::BITS - 1 {
            high
        } else {
            ((1usize << (log + 1)) - 1).min(high)
        };
        self.between(start, end)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn ranges_are_respected_and_covered() {
        let mut rng = Rng::new(7);
        let mut seen = [false; 6];
        for _ in 0..1000 {
            let v = rng.between(3, 8);
            assert!((3..=8).contains(&v));
            seen[v - 3] = true;
            let l = rng.log_uniform(8, 65536);
            assert!((8..=65536).contains(&l));
        }
        assert!(seen.iter().all(|&s| s));
    }
}
