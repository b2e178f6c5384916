//! A shadow model of a page allocator: the regions, the live blocks and the
//! counters, with the exact answer every operation must give. `Harness`
//! applies an operation to an allocator and to the model and checks them.
//!
//! Bad frees are judged against the model alone, so a free of pages that
//! were freed and handed out again as a block of another size is checked
//! as strictly as a free of pages never handed out.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use kalloc::{AllocError, AllocResult};

use super::{Arena, PAGE, Subject, add, check_stats};

/// One step of a test sequence. Indices are reduced modulo what exists.
#[derive(Clone, Debug)]
pub enum Op {
    Alloc {
        count: usize,
        align_log2: u32,
    },
    AllocAt {
        region: usize,
        page: usize,
        count: usize,
        align_log2: u32,
    },
    Free {
        which: usize,
    },
    /// A bad free derived from a live (or recently freed) block, a region
    /// or the space around them; see `BAD_FREE_KINDS`.
    BadFree {
        which: usize,
        kind: u8,
    },
    /// Adds the next slot of the arena, with `lead` unaligned bytes in front.
    AddMemory {
        pages: usize,
        lead: usize,
    },
    /// Adds a region overlapping an existing one (must be refused).
    AddOverlap {
        region: usize,
    },
}

/// How many kinds of bad free `Op::BadFree` picks from (by `kind % 15`).
pub const BAD_FREE_KINDS: u8 = 15;

/// How many freed blocks the model remembers for stale frees.
const RECENT: usize = 32;

/// The allocator, the model, and the memory behind them.
pub struct Harness<A: Subject> {
    pub alloc: A,
    arena: Arena,
    /// Next free byte offset in the arena for `AddMemory`.
    cursor: usize,
    /// Regions as given to `add_memory`.
    spans: Vec<Range<usize>>,
    /// Managed byte ranges, as the allocator reports them.
    managed: Vec<Range<usize>>,
    /// Live blocks: address -> pages.
    pub live: BTreeMap<usize, usize>,
    /// Blocks freed lately (address, pages), oldest first.
    freed: VecDeque<(usize, usize)>,
    used: usize,
    /// Bad frees issued per kind.
    pub issued: [usize; BAD_FREE_KINDS as usize],
}

impl<A: Subject> Harness<A> {
    /// An allocator over a first region of `first_pages` pages, in an arena
    /// of `arena_pages` pages.
    pub fn new(arena_pages: usize, first_pages: usize) -> Self {
        let mut h = Self {
            alloc: A::fresh(),
            arena: Arena::new(arena_pages, 1 << 21),
            cursor: 0,
            spans: Vec::new(),
            managed: Vec::new(),
            live: BTreeMap::new(),
            freed: VecDeque::new(),
            used: 0,
            issued: [0; BAD_FREE_KINDS as usize],
        };
        h.apply(&Op::AddMemory {
            pages: first_pages,
            lead: 0,
        });
        assert!(!h.managed.is_empty(), "{}: first region refused", A::NAME);
        h
    }

    fn region_of(&self, start: usize, pages: usize) -> Option<&Range<usize>> {
        self.managed
            .iter()
            .find(|r| r.start <= start && pages <= (r.end - start.min(r.end)) / PAGE)
    }

    fn overlaps_live(&self, start: usize, pages: usize) -> bool {
        let end = start + pages * PAGE;
        self.live
            .range(..end)
            .next_back()
            .is_some_and(|(&a, &n)| a + n * PAGE > start)
    }

    /// Where first fit places `count` pages at `align`: the lowest aligned
    /// start in the first region (in address order) that has room.
    fn first_fit(&self, count: usize, align: usize) -> Option<usize> {
        self.managed.iter().find_map(|r| {
            let mut at = r.start.next_multiple_of(align);
            while at < r.end && count <= (r.end - at) / PAGE {
                if !self.overlaps_live(at, count) {
                    return Some(at);
                }
                at += align;
            }
            None
        })
    }

    /// The error `dealloc_pages(addr, count)` must return, if any.
    fn expected_free(&self, addr: usize, count: usize) -> AllocResult {
        if !self.spans.iter().any(|s| s.contains(&addr)) {
            return Err(AllocError::OutOfRange);
        }
        if count == 0 || !addr.is_multiple_of(PAGE) || self.region_of(addr, 1).is_none() {
            return Err(AllocError::NotAllocated);
        }
        match self.live.range(..=addr).next_back() {
            Some((&a, &n)) if a == addr && n == count => Ok(()),
            Some((&a, &n)) if a + n * PAGE > addr => Err(AllocError::NotAllocated),
            _ => Err(AllocError::DoubleFree),
        }
    }

    fn record(&mut self, addr: usize, count: usize, align: usize) {
        assert_eq!(
            addr % align.max(PAGE),
            0,
            "{}: misaligned {addr:#x}",
            A::NAME
        );
        assert!(
            self.region_of(addr, count).is_some(),
            "{}: outside regions",
            A::NAME
        );
        assert!(
            !self.overlaps_live(addr, count),
            "{}: overlap at {addr:#x}",
            A::NAME
        );
        self.live.insert(addr, count);
        self.used += count;
    }

    pub fn apply(&mut self, op: &Op) {
        match *op {
            Op::Alloc { count, align_log2 } => {
                self.alloc_block(count, 1 << align_log2);
            }
            Op::AllocAt {
                region,
                page,
                count,
                align_log2,
            } => {
                let align = 1usize << align_log2;
                let Some(r) = self.managed.get(region % self.managed.len()).cloned() else {
                    return;
                };
                let addr = (r.start + page * PAGE).next_multiple_of(align);
                let expected = if self.region_of(addr, count).is_none() {
                    Err(AllocError::OutOfRange)
                } else if self.overlaps_live(addr, count) {
                    Err(AllocError::NoMemory)
                } else {
                    Ok(addr)
                };
                let got = self.alloc.alloc_pages_at(addr, count, align);
                assert_eq!(
                    got,
                    expected,
                    "{}: alloc_pages_at({addr:#x}, {count})",
                    A::NAME
                );
                if got.is_ok() {
                    self.record(addr, count, align);
                }
            }
            Op::Free { which } => {
                let Some((&addr, _)) = self.live.iter().nth(which % self.live.len().max(1)) else {
                    return;
                };
                self.free_block(addr);
            }
            Op::BadFree { which, kind } => self.bad_free(which, kind),
            Op::AddMemory { pages, lead } => {
                let start = self.cursor + lead;
                let size = pages * PAGE;
                if start + size > self.arena.len() {
                    return;
                }
                self.cursor = (start + size).next_multiple_of(PAGE);
                let addr = self.arena.addr(start);
                match add(&mut self.alloc, addr, size) {
                    Ok(()) => {
                        self.spans.push(addr..addr + size);
                        self.managed = self.alloc.managed();
                        assert_eq!(self.managed.len(), self.spans.len());
                    }
                    // Too small for the metadata and a page: nothing managed.
                    Err(AllocError::InvalidParam) => {
                        assert!(pages <= 2, "{}: refused {pages} pages", A::NAME)
                    }
                    Err(e) => panic!("{}: add_memory gave {e:?}", A::NAME),
                }
            }
            Op::AddOverlap { region } => {
                let Some(s) = self.spans.get(region % self.spans.len().max(1)).cloned() else {
                    return;
                };
                let got = add(&mut self.alloc, s.start + PAGE / 2, PAGE * 4);
                assert_eq!(got, Err(AllocError::MemoryOverlap), "{}", A::NAME);
            }
        }
        self.check();
    }

    /// Allocates `count` pages at `align` and records the block; its
    /// address, or `None` if the allocator refused (rightly).
    pub fn alloc_block(&mut self, count: usize, align: usize) -> Option<usize> {
        match self.alloc.alloc_pages(count, align) {
            Ok(addr) => {
                if A::MAX_BLOCK.is_none() {
                    let expected = self.first_fit(count, align.max(PAGE));
                    assert_eq!(Some(addr), expected, "{}: not first fit", A::NAME);
                }
                self.record(addr, count, align);
                Some(addr)
            }
            Err(AllocError::NoMemory) => {
                self.check_no_memory(count, align);
                None
            }
            Err(AllocError::InvalidParam) => {
                assert!(
                    count == 0 || A::MAX_BLOCK.is_some_and(|m| count > m || align / PAGE > m),
                    "{}: InvalidParam for {count} pages at {align:#x}",
                    A::NAME
                );
                None
            }
            Err(e) => panic!("{}: alloc_pages gave {e:?}", A::NAME),
        }
    }

    /// Frees the live block at `addr`.
    pub fn free_block(&mut self, addr: usize) {
        let count = self.live[&addr];
        assert_eq!(self.alloc.dealloc_pages(addr, count), Ok(()), "{}", A::NAME);
        self.live.remove(&addr);
        if self.freed.len() == RECENT {
            self.freed.pop_front();
        }
        self.freed.push_back((addr, count));
        self.used -= count;
    }

    /// `NoMemory` must be true: first-fit allocators fail only when no
    /// aligned run exists; the buddy only when no free block is big enough.
    fn check_no_memory(&self, count: usize, align: usize) {
        match A::MAX_BLOCK {
            None => assert!(
                self.first_fit(count, align.max(PAGE)).is_none(),
                "{}: NoMemory but it fits",
                A::NAME
            ),
            Some(_) => {
                let need = (count.next_power_of_two().max(align / PAGE)).trailing_zeros() as usize;
                let stats = self.alloc.page_stats();
                assert!(
                    stats.free_blocks[need..].iter().all(|&n| n == 0),
                    "{}: NoMemory with a free block",
                    A::NAME
                );
            }
        }
    }

    fn bad_free(&mut self, which: usize, kind: u8) {
        let live: Vec<(usize, usize)> = self.live.iter().map(|(&a, &n)| (a, n)).collect();
        let pick = |i: usize| live.get(i % live.len().max(1)).copied();
        let stale = self.freed.get(which % self.freed.len().max(1)).copied();
        let span = self.spans[which % self.spans.len()].clone();
        let region = self.managed[which % self.managed.len()].clone();
        let (addr, count) = match (kind % BAD_FREE_KINDS, pick(which)) {
            (0, _) => match stale {
                Some((a, _)) => (a, 1),
                None => return,
            },
            (1, Some((a, n))) => (a + PAGE, n),
            (2, Some((a, n))) => (a, n + 1),
            (3, Some((a, n))) if n > 1 => (a, n - 1),
            (4, Some((a, n))) => (a + 1, n),
            (5, _) => (self.spans[0].start.wrapping_sub(PAGE * 1000), 1),
            (6, _) => (self.spans[0].start, 1), // metadata or unaligned edge
            // A block freed earlier, with its own size and with another,
            // after later allocations may have reused its pages.
            (7, _) => match stale {
                Some(block) => block,
                None => return,
            },
            (8, _) => match stale {
                Some((a, n)) => (a, n * 2),
                None => return,
            },
            // Any page of a region, free, live or inside a block.
            (9, _) => {
                let pages = region.len() / PAGE;
                (region.start + (which / 7 % pages) * PAGE, 1 + which / 3 % 3)
            }
            // Where a region's metadata or unaligned lead is, and where a
            // region ends: managed by nothing, or by the next region.
            (10, _) => (span.start.next_multiple_of(PAGE), 1),
            (11, _) => (span.end.next_multiple_of(PAGE), 1),
            (12, _) => (region.end - PAGE, 2),
            (13, Some((a, _))) => (a, 0), // no pages at all
            (14, _) => {
                if self.free_reuse_free(1 + which % 8, 1 + which / 8 % 8, which) {
                    self.issued[14] += 1;
                }
                return;
            }
            _ => return,
        };
        if self.refused_free(addr, count) {
            self.issued[usize::from(kind % BAD_FREE_KINDS)] += 1;
        }
    }

    /// Frees `count` pages at `addr`, which the model says must be refused
    /// (nothing is done if the model says the free is valid, e.g. a freed
    /// address handed out again with that size). The error must be exactly
    /// the model's (for a subject with exact refusals) and nothing may
    /// change. Returns whether the free was issued.
    pub fn refused_free(&mut self, addr: usize, count: usize) -> bool {
        let expected = self.expected_free(addr, count);
        if expected.is_ok() {
            return false;
        }
        let before = (self.alloc.page_stats(), self.alloc.used_pages());
        let got = self.alloc.dealloc_pages(addr, count);
        let right = match (expected, got) {
            _ if A::EXACT_REFUSALS => got == expected,
            (Err(AllocError::OutOfRange), _) => got == expected,
            (_, Err(e)) => matches!(e, AllocError::NotAllocated | AllocError::DoubleFree),
            (_, Ok(())) => false,
        };
        assert!(
            right,
            "{}: dealloc_pages({addr:#x}, {count}) gave {got:?}, expected {expected:?}; \
             live blocks there: {:x?}",
            A::NAME,
            self.live
                .range(..addr + count.max(1) * PAGE)
                .filter(|&(&a, &n)| a + n * PAGE > addr)
                .collect::<Vec<_>>()
        );
        let after = (self.alloc.page_stats(), self.alloc.used_pages());
        assert_eq!(
            before,
            after,
            "{}: a refused free changed the allocator",
            A::NAME
        );
        true
    }

    /// Allocates `count` pages, frees them, allocates `other` pages (which
    /// may reuse them), then frees the first block again: refused unless
    /// the second block is exactly like it.
    fn free_reuse_free(&mut self, count: usize, other: usize, which: usize) -> bool {
        let Some(addr) = self.alloc_block(count, PAGE) else {
            return false;
        };
        self.free_block(addr);
        self.alloc_block(other, PAGE << (which % 3));
        self.refused_free(addr, count)
    }

    pub fn check(&self) {
        assert_eq!(
            self.alloc.used_pages(),
            self.used,
            "{}: used pages",
            A::NAME
        );
        let managed: usize = self.managed.iter().map(|r| r.len() / PAGE).sum();
        assert_eq!(
            self.alloc.total_pages(),
            managed,
            "{}: total pages",
            A::NAME
        );
        check_stats(&self.alloc);
    }

    /// Frees every live block in the order given by `seed`, then checks the
    /// allocator is back to the state of a fresh one over the same regions
    /// (for the buddy: its initial maximal blocks, fully coalesced).
    pub fn free_all_and_check(mut self, seed: u64) {
        let mut blocks: Vec<(usize, usize)> = self.live.iter().map(|(&a, &n)| (a, n)).collect();
        let mut state = seed | 1;
        for i in (1..blocks.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            blocks.swap(i, (state >> 33) as usize % (i + 1));
        }
        for (addr, count) in blocks {
            assert_eq!(self.alloc.dealloc_pages(addr, count), Ok(()), "{}", A::NAME);
            self.live.remove(&addr);
            self.used -= count;
            self.check();
        }
        let end_stats = check_stats(&self.alloc);
        let spans = std::mem::take(&mut self.spans);
        drop(std::mem::replace(&mut self.alloc, A::fresh()));
        for s in &spans {
            add(&mut self.alloc, s.start, s.len()).unwrap();
        }
        assert_eq!(
            end_stats,
            self.alloc.page_stats(),
            "{}: not back to the initial blocks",
            A::NAME
        );
    }
}

/// A seeded sequence with the weights of the property tests, but bad frees
/// (of a kind drawn uniformly) at about a quarter of the steps, for long
/// runs without a property-testing framework (which the debug layers'
/// tests, sharing this model, do not depend on for this).
pub fn seeded_ops(seed: u64, count: usize) -> Vec<Op> {
    let mut state = seed;
    let mut next = move || {
        // SplitMix64: small, seedable, and the same in every crate.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as usize
    };
    (0..count)
        .map(|_| {
            let (what, a, b, c) = (next() % 22, next(), next(), next());
            match what {
                0..=5 => Op::Alloc {
                    count: 1 + a % 9,
                    align_log2: (b % 16) as u32,
                },
                6 => Op::Alloc {
                    count: 17 + a % 184,
                    align_log2: 12 + (b % 7) as u32,
                },
                7 | 8 => Op::AllocAt {
                    region: a,
                    page: b % 80,
                    count: 1 + c % 12,
                    align_log2: 12 + (c / 16 % 5) as u32,
                },
                9..=14 => Op::Free { which: a },
                15..=20 => Op::BadFree {
                    which: a,
                    kind: (b % usize::from(BAD_FREE_KINDS)) as u8,
                },
                _ if a % 2 == 0 => Op::AddMemory {
                    pages: 1 + b % 60,
                    lead: if c % 2 == 0 { 0 } else { 1 + c % 4095 },
                },
                _ => Op::AddOverlap { region: b },
            }
        })
        .collect()
}

/// alloc(4), free, 1-page blocks until one lands in those pages, free(4)
/// again; then that page freed, 4-page blocks until one covers it (its
/// pages are a whole aligned group: they were one block), free(1) again
/// (and its neighbour, now inside the block).
pub fn pages_reused_as_another_size<A: Subject>() {
    let mut h = Harness::<A>::new(256, 128);
    let four = h.alloc_block(4, PAGE).unwrap();
    h.free_block(four);
    let one = loop {
        let one = h.alloc_block(1, PAGE).expect("a page of the freed block");
        if (four..four + 4 * PAGE).contains(&one) {
            break one;
        }
    };
    assert!(h.refused_free(four, 4));
    h.check();
    h.free_block(one);
    loop {
        let four = h.alloc_block(4, PAGE).expect("a block over the freed page");
        if (four..four + 4 * PAGE).contains(&one) {
            break;
        }
    }
    assert!(h.refused_free(one, 1));
    assert!(h.refused_free(one + PAGE, 1));
    h.check();
    h.free_all_and_check(1);
}
