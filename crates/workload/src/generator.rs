//! The workload generator: a seeded sequence of allocations and frees over
//! a bounded set of live blocks, each filled with its own pattern and
//! checked before it is freed.

use core::fmt;
use core::ptr::NonNull;

use kalloc::AllocError;

use crate::pattern;
use crate::{Aligns, Lifetimes, Rng, Sizes, Target};

/// A workload, fully determined by its fields (print it to replay a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub seed: u64,
    pub sizes: Sizes,
    pub aligns: Aligns,
    pub lifetimes: Lifetimes,
    /// Most blocks live at once (also bounded by the slots given).
    pub max_live: usize,
    /// Chance, in percent, that a step frees rather than allocates when
    /// both are possible (50 keeps the live set around its middle).
    pub free_percent: u32,
    /// Whether `NoMemory` is an expected outcome (counted) or a failure.
    pub oom_expected: bool,
    /// Tags this generator's blocks (a hart or thread number).
    pub owner: u32,
}

impl Spec {
    /// Random sizes in `min..=max`, natural alignment, random lifetimes.
    pub const fn random(seed: u64, min: usize, max: usize, max_live: usize) -> Self {
        Spec {
            seed,
            sizes: Sizes::Random { min, max },
            aligns: Aligns::Natural,
            lifetimes: Lifetimes::Random,
            max_live,
            free_percent: 50,
            oom_expected: false,
            owner: 0,
        }
    }
}

/// A live block of some generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub ptr: NonNull<u8>,
    pub size: usize,
    pub align: usize,
    pub owner: u32,
    pub seq: u64,
    long_lived: bool,
}

/// What went wrong, with everything needed to replay it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub seed: u64,
    /// The step at which it was seen.
    pub step: u64,
    pub kind: FailureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A block's contents changed while it was live.
    Corrupted {
        addr: usize,
        size: usize,
        owner: u32,
        seq: u64,
        offset: usize,
        expected: u8,
        found: u8,
    },
    /// The allocator returned a block that is not aligned as asked.
    Misaligned { addr: usize, align: usize },
    /// An allocation failed when failure was not expected.
    AllocFailed {
        size: usize,
        align: usize,
        error: AllocError,
    },
    /// A free of a live block was refused.
    FreeFailed {
        addr: usize,
        size: usize,
        error: AllocError,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workload failed at step {} (seed {:#x}): ",
            self.step, self.seed
        )?;
        match self.kind {
            FailureKind::Corrupted {
                addr,
                size,
                owner,
                seq,
                offset,
                expected,
                found,
            } => write!(
                f,
                "block {addr:#x} ({size} bytes, owner {owner}, #{seq}) corrupted at offset {offset}: \
                 expected {expected:#04x}, found {found:#04x}"
            )?,
            FailureKind::Misaligned { addr, align } => {
                write!(f, "block {addr:#x} is not aligned to {align}")?
            }
            FailureKind::AllocFailed { size, align, error } => write!(
                f,
                "allocation of {size} bytes (align {align}) failed: {error}"
            )?,
            FailureKind::FreeFailed { addr, size, error } => write!(
                f,
                "free of live block {addr:#x} ({size} bytes) refused: {error}"
            )?,
        }
        write!(f, "; rerun with SEED={}", self.seed)
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub steps: u64,
    pub allocs: u64,
    pub frees: u64,
    /// Allocations that failed with `NoMemory` while `oom_expected`.
    pub expected_failures: u64,
    pub peak_live_blocks: usize,
    pub peak_live_bytes: usize,
    pub live_blocks: usize,
    pub live_bytes: usize,
}

/// A running workload. The live set is a ring in `slots`: LIFO frees at
/// its tail, FIFO at its head.
pub struct Generator<'s> {
    spec: Spec,
    rng: Rng,
    slots: &'s mut [Option<Block>],
    head: usize,
    len: usize,
    next_seq: u64,
    summary: Summary,
}

impl<'s> Generator<'s> {
    /// A generator that keeps its live blocks in `slots`.
    pub fn new(spec: Spec, slots: &'s mut [Option<Block>]) -> Self {
        let capacity = spec.max_live.min(slots.len());
        Generator {
            spec: Spec {
                max_live: capacity,
                ..spec
            },
            rng: Rng::new(spec.seed),
            slots: &mut slots[..capacity],
            head: 0,
            len: 0,
            next_seq: 1,
            summary: Summary::default(),
        }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn summary(&self) -> Summary {
        self.summary
    }

    fn fail(&self, kind: FailureKind) -> Failure {
        Failure {
            seed: self.spec.seed,
            step: self.summary.steps,
            kind,
        }
    }

    fn slot(&self, index: usize) -> usize {
        (self.head + index) % self.slots.len()
    }

    /// One step: an allocation or a free.
    pub fn step(&mut self, target: &mut impl Target) -> Result<(), Failure> {
        self.summary.steps += 1;
        let free = match self.len {
            0 => false,
            n if n == self.spec.max_live => true,
            _ => self.rng.chance(self.spec.free_percent),
        };
        if free {
            let block = self.take_victim().expect("a live block exists");
            return self.check_and_free(target, block);
        }
        self.allocate(target)
    }

    /// Runs `steps` steps.
    pub fn run(&mut self, target: &mut impl Target, steps: u64) -> Result<Summary, Failure> {
        for _ in 0..steps {
            self.step(target)?;
        }
        Ok(self.summary)
    }

    fn allocate(&mut self, target: &mut impl Target) -> Result<(), Failure> {
        let nth = self.summary.allocs as usize + self.summary.expected_failures as usize;
        let size = self.spec.sizes.draw(&mut self.rng, nth).max(1);
        let align = self.spec.aligns.draw(&mut self.rng, size);
        let ptr = match target.alloc(size, align) {
            Ok(ptr) => ptr,
            Err(AllocError::NoMemory) if self.spec.oom_expected => {
                self.summary.expected_failures += 1;
                return Ok(());
            }
            Err(error) => return Err(self.fail(FailureKind::AllocFailed { size, align, error })),
        };
        if ptr.addr().get() % align != 0 {
            return Err(self.fail(FailureKind::Misaligned {
                addr: ptr.addr().get(),
                align,
            }));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        // SAFETY: the target just handed out `size` bytes at `ptr`.
        unsafe { pattern::fill(ptr.as_ptr(), size, pattern::seed(self.spec.owner, seq)) };
        let long_lived = match self.spec.lifetimes {
            Lifetimes::Mixed { long_lived_percent } => self.rng.chance(long_lived_percent),
            _ => false,
        };
        self.summary.allocs += 1;
        self.adopt(Block {
            ptr,
            size,
            align,
            owner: self.spec.owner,
            seq,
            long_lived,
        });
        Ok(())
    }

    /// Adds a live block (e.g. one handed over by another generator, whose
    /// pattern is then checked with its original owner). Returns the block
    /// back if the live set is full.
    pub fn adopt(&mut self, block: Block) -> Option<Block> {
        if self.len == self.slots.len() {
            return Some(block);
        }
        let tail = self.slot(self.len);
        self.slots[tail] = Some(block);
        self.len += 1;
        self.summary.live_blocks = self.len;
        self.summary.live_bytes += block.size;
        self.summary.peak_live_blocks = self.summary.peak_live_blocks.max(self.len);
        self.summary.peak_live_bytes = self.summary.peak_live_bytes.max(self.summary.live_bytes);
        None
    }

    /// Removes the block the lifetime policy would free next, without
    /// freeing it (to hand it to another generator: a cross-thread free).
    pub fn take_victim(&mut self) -> Option<Block> {
        if self.len == 0 {
            return None;
        }
        let index = match self.spec.lifetimes {
            Lifetimes::Lifo => self.len - 1,
            Lifetimes::Fifo => 0,
            Lifetimes::Random => self.rng.below(self.len as u64) as usize,
            Lifetimes::Mixed { .. } => self.pick_mostly_short_lived(),
        };
        // Keep the ring contiguous: move the tail block into the hole
        // (FIFO takes the head instead, which needs no move).
        let block = if index == 0 && self.spec.lifetimes == Lifetimes::Fifo {
            let block = self.slots[self.head].take();
            self.head = (self.head + 1) % self.slots.len();
            block
        } else {
            let hole = self.slot(index);
            let last = self.slot(self.len - 1);
            self.slots.swap(hole, last);
            self.slots[last].take()
        }
        .expect("ring slots below len are occupied");
        self.len -= 1;
        self.summary.live_blocks = self.len;
        self.summary.live_bytes -= block.size;
        Some(block)
    }

    fn pick_mostly_short_lived(&mut self) -> usize {
        for _ in 0..8 {
            let index = self.rng.below(self.len as u64) as usize;
            let block = self.slots[self.slot(index)].as_ref().expect("occupied");
            if !block.long_lived || self.rng.below(16) == 0 {
                return index;
            }
        }
        self.rng.below(self.len as u64) as usize
    }

    /// Checks a block's pattern and frees it.
    pub fn check_and_free(
        &mut self,
        target: &mut impl Target,
        block: Block,
    ) -> Result<(), Failure> {
        let seed = pattern::seed(block.owner, block.seq);
        // SAFETY: the block is live and `size` bytes long.
        let damage = unsafe { pattern::check(block.ptr.as_ptr(), block.size, seed) };
        if let Some((offset, expected, found)) = damage {
            let Block {
                ptr,
                size,
                owner,
                seq,
                ..
            } = block;
            return Err(self.fail(FailureKind::Corrupted {
                addr: ptr.addr().get(),
                size,
                owner,
                seq,
                offset,
                expected,
                found,
            }));
        }
        // SAFETY: the block came from `target.alloc(size, align)` and is live.
        unsafe { target.free(block.ptr, block.size, block.align) }.map_err(|error| {
            self.fail(FailureKind::FreeFailed {
                addr: block.ptr.addr().get(),
                size: block.size,
                error,
            })
        })?;
        self.summary.frees += 1;
        Ok(())
    }

    /// Checks and frees every live block.
    pub fn drain(&mut self, target: &mut impl Target) -> Result<Summary, Failure> {
        while let Some(block) = self.take_victim() {
            self.check_and_free(target, block)?;
        }
        Ok(self.summary)
    }
}
