//! The generator against the host's allocator (shapes, replay, handover)
//! and against deliberately broken targets (each failure is caught).

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::NonNull;
use std::string::ToString;
use std::vec::Vec;

use kalloc::AllocError;
use workload::{Aligns, Block, FailureKind, Generator, Lifetimes, Sizes, Spec, Target};

/// The host allocator, recording every request.
#[derive(Default)]
struct Host {
    requests: Vec<(usize, usize)>,
    live: usize,
}

impl Target for Host {
    fn alloc(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        self.requests.push((size, align));
        self.live += 1;
        // SAFETY: sizes are >= 1.
        NonNull::new(unsafe { alloc(Layout::from_size_align(size, align).unwrap()) })
            .ok_or(AllocError::NoMemory)
    }

    unsafe fn free(
        &mut self,
        ptr: NonNull<u8>,
        size: usize,
        align: usize,
    ) -> Result<(), AllocError> {
        self.live -= 1;
        // SAFETY: allocated above with this layout.
        unsafe { dealloc(ptr.as_ptr(), Layout::from_size_align(size, align).unwrap()) };
        Ok(())
    }
}

fn slots(n: usize) -> Vec<Option<Block>> {
    vec![None; n]
}

const STEPS: u64 = if cfg!(miri) { 40 } else { 5000 };

#[test]
fn every_shape_and_lifetime_runs_and_drains() {
    let sizes = [
        Sizes::Random { min: 1, max: 4096 },
        Sizes::Fixed(64),
        Sizes::Increasing {
            min: 8,
            max: 2000,
            step: 24,
        },
        Sizes::Decreasing {
            min: 8,
            max: 2000,
            step: 24,
        },
        Sizes::PowersOfTwo { min: 8, max: 8192 },
        Sizes::Odd { min: 1, max: 999 },
        Sizes::Pages {
            page_size: 4096,
            max_pages: 8,
        },
    ];
    let lifetimes = [
        Lifetimes::Lifo,
        Lifetimes::Fifo,
        Lifetimes::Random,
        Lifetimes::Mixed {
            long_lived_percent: 20,
        },
    ];
    for (i, sizes) in sizes.into_iter().enumerate() {
        for lifetimes in lifetimes {
            let spec = Spec {
                sizes,
                lifetimes,
                aligns: Aligns::Occasional { max: 4096 },
                ..Spec::random(i as u64, 1, 1, 64)
            };
            let mut live = slots(64);
            let mut generator = Generator::new(spec, &mut live);
            let mut host = Host::default();
            generator.run(&mut host, STEPS).unwrap();
            let summary = generator.drain(&mut host).unwrap();
            assert_eq!(summary.allocs, summary.frees, "{spec:?}");
            assert_eq!(
                (summary.live_blocks, summary.live_bytes, host.live),
                (0, 0, 0)
            );
            assert!(summary.peak_live_blocks > 1);
        }
    }
}

#[test]
fn the_seed_replays_the_same_requests() {
    // Under Miri every byte of every block is written and checked in the
    // interpreter: smaller blocks and fewer steps keep it to seconds.
    let (max_size, steps) = if cfg!(miri) {
        (4096, 60)
    } else {
        (100_000, 500)
    };
    let run = |seed| {
        let mut live = slots(32);
        let mut generator = Generator::new(Spec::random(seed, 1, max_size, 32), &mut live);
        let mut host = Host::default();
        generator.run(&mut host, steps).unwrap();
        generator.drain(&mut host).unwrap();
        host.requests
    };
    assert_eq!(run(99), run(99));
    assert_ne!(run(99), run(100));
}

#[test]
fn sizes_follow_their_shape() {
    let mut host = Host::default();
    let spec = Spec {
        sizes: Sizes::Increasing {
            min: 10,
            max: 20,
            step: 5,
        },
        ..Spec::random(1, 1, 1, 4)
    };
    let mut live = slots(4);
    let mut generator = Generator::new(spec, &mut live);
    generator.run(&mut host, 100).unwrap();
    let sizes: Vec<usize> = host.requests.iter().map(|r| r.0).take(5).collect();
    assert_eq!(sizes, [10, 15, 20, 14, 19]);
    generator.drain(&mut host).unwrap();
}

/// A page-aligned 4 KiB host buffer (the host allocator, and Miri's,
/// only promise the element type's alignment otherwise).
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// A [`Page`] behind one raw pointer, so every block a fake target hands
/// out shares its provenance (no `&mut` re-borrows between allocations).
struct Buffer(*mut Page);

impl Buffer {
    fn new() -> Self {
        Buffer(Box::into_raw(Box::new(Page([0; 4096]))))
    }

    fn at(&self, offset: usize) -> NonNull<u8> {
        NonNull::new(self.0.cast::<u8>().wrapping_add(offset)).unwrap()
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `Box::into_raw` in `new`.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// Hands out the same buffer every time: blocks overlap.
struct Overlapping(Buffer);

impl Target for Overlapping {
    fn alloc(&mut self, _: usize, _: usize) -> Result<NonNull<u8>, AllocError> {
        Ok(self.0.at(0))
    }

    unsafe fn free(&mut self, _: NonNull<u8>, _: usize, _: usize) -> Result<(), AllocError> {
        Ok(())
    }
}

#[test]
fn overlapping_blocks_are_caught_with_a_replayable_seed() {
    let spec = Spec {
        sizes: Sizes::Fixed(64),
        lifetimes: Lifetimes::Fifo,
        ..Spec::random(0xabc, 1, 1, 8)
    };
    let mut live = slots(8);
    let mut generator = Generator::new(spec, &mut live);
    let failure = generator
        .run(&mut Overlapping(Buffer::new()), 100)
        .unwrap_err();
    assert!(
        matches!(failure.kind, FailureKind::Corrupted { offset: 0, .. }),
        "{failure:?}"
    );
    let text = failure.to_string();
    assert!(
        text.contains("seed 0xabc") && text.contains("SEED=2748"),
        "{text}"
    );
}

/// Returns misaligned addresses.
struct Misaligned(Buffer);

impl Target for Misaligned {
    fn alloc(&mut self, _: usize, _: usize) -> Result<NonNull<u8>, AllocError> {
        Ok(self.0.at(1))
    }

    unsafe fn free(&mut self, _: NonNull<u8>, _: usize, _: usize) -> Result<(), AllocError> {
        Ok(())
    }
}

#[test]
fn misaligned_blocks_are_caught() {
    let spec = Spec {
        aligns: Aligns::Fixed(16),
        ..Spec::random(5, 8, 64, 8)
    };
    let mut live = slots(8);
    let failure = Generator::new(spec, &mut live)
        .run(&mut Misaligned(Buffer::new()), 10)
        .unwrap_err();
    assert!(matches!(
        failure.kind,
        FailureKind::Misaligned { align: 16, .. }
    ));
}

/// Fails every allocation.
struct Exhausted;

impl Target for Exhausted {
    fn alloc(&mut self, _: usize, _: usize) -> Result<NonNull<u8>, AllocError> {
        Err(AllocError::NoMemory)
    }

    unsafe fn free(&mut self, _: NonNull<u8>, _: usize, _: usize) -> Result<(), AllocError> {
        unreachable!()
    }
}

#[test]
fn out_of_memory_is_counted_only_when_expected() {
    let mut live = slots(4);
    let failure = Generator::new(Spec::random(1, 8, 8, 4), &mut live)
        .run(&mut Exhausted, 1)
        .unwrap_err();
    assert!(matches!(
        failure.kind,
        FailureKind::AllocFailed {
            error: AllocError::NoMemory,
            ..
        }
    ));
    let mut live = slots(4);
    let spec = Spec {
        oom_expected: true,
        ..Spec::random(1, 8, 8, 4)
    };
    let summary = Generator::new(spec, &mut live)
        .run(&mut Exhausted, 10)
        .unwrap();
    assert_eq!(summary.expected_failures, 10);
}

#[test]
fn blocks_handed_over_are_checked_with_their_owner() {
    let mut host = Host::default();
    let (mut live_a, mut live_b) = (slots(16), slots(32));
    let mut producer = Generator::new(
        Spec {
            owner: 1,
            ..Spec::random(1, 8, 512, 16)
        },
        &mut live_a,
    );
    let mut consumer = Generator::new(
        Spec {
            owner: 2,
            ..Spec::random(2, 8, 512, 32)
        },
        &mut live_b,
    );
    for _ in 0..200 {
        producer.step(&mut host).unwrap();
        if let Some(block) = producer.take_victim()
            && let Some(block) = consumer.adopt(block)
        {
            consumer.check_and_free(&mut host, block).unwrap();
        }
        consumer.step(&mut host).unwrap();
    }
    producer.drain(&mut host).unwrap();
    consumer.drain(&mut host).unwrap();
    assert_eq!(host.live, 0);
}
