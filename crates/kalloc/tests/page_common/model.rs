//! A shadow model of a page allocator: the regions, the live blocks and the
//! counters, with the exact answer every operation must give. `Harness`
//! applies an operation to an allocator and to the model and checks them.

use std::collections::BTreeMap;
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
    /// A bad free derived from a live (or recently freed) block.
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
    freed: Vec<usize>,
    used: usize,
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
            freed: Vec::new(),
            used: 0,
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
                let align = 1usize << align_log2;
                match self.alloc.alloc_pages(count, align) {
                    Ok(addr) => {
                        if A::MAX_BLOCK.is_none() {
                            let expected = self.first_fit(count, align.max(PAGE));
                            assert_eq!(Some(addr), expected, "{}: not first fit", A::NAME);
                        }
                        self.record(addr, count, align)
                    }
                    Err(AllocError::NoMemory) => self.check_no_memory(count, align),
                    Err(AllocError::InvalidParam) => assert!(
                        count == 0 || A::MAX_BLOCK.is_some_and(|m| count > m || align / PAGE > m),
                        "{}: InvalidParam for {count} pages at {align:#x}",
                        A::NAME
                    ),
                    Err(e) => panic!("{}: alloc_pages gave {e:?}", A::NAME),
                }
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
                let Some((&addr, &count)) = self.live.iter().nth(which % self.live.len().max(1))
                else {
                    return;
                };
                assert_eq!(self.alloc.dealloc_pages(addr, count), Ok(()), "{}", A::NAME);
                self.live.remove(&addr);
                self.freed.push(addr);
                self.used -= count;
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
        let (addr, count) = match (kind % 7, pick(which)) {
            (0, _) => match self.freed.get(which % self.freed.len().max(1)) {
                Some(&a) => (a, 1),
                None => return,
            },
            (1, Some((a, n))) => (a + PAGE, n),
            (2, Some((a, n))) => (a, n + 1),
            (3, Some((a, n))) if n > 1 => (a, n - 1),
            (4, Some((a, n))) => (a + 1, n),
            (5, _) => (self.spans[0].start.wrapping_sub(PAGE * 1000), 1),
            (6, _) => (self.spans[0].start, 1), // metadata or unaligned edge
            _ => return,
        };
        let expected = self.expected_free(addr, count);
        if expected.is_ok() {
            return; // e.g. a freed address that was handed out again
        }
        let before = (self.alloc.page_stats(), self.alloc.used_pages());
        let got = self.alloc.dealloc_pages(addr, count);
        assert_eq!(
            got,
            expected,
            "{}: dealloc_pages({addr:#x}, {count})",
            A::NAME
        );
        let after = (self.alloc.page_stats(), self.alloc.used_pages());
        assert_eq!(
            before,
            after,
            "{}: a refused free changed the allocator",
            A::NAME
        );
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
