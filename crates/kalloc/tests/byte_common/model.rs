//! The model-based checker shared by the property tests and the fuzz
//! targets: decodes bytes into alloc/dealloc/realloc/bad-free operations,
//! applies them, and checks after every step that live blocks are aligned,
//! in bounds, disjoint and intact, that bad frees fail and change nothing,
//! and that the counters match what each block was charged.
//!
//! A bad free is judged against the model alone: it must be refused unless
//! a live block starts at that address with a layout the algorithm cannot
//! tell from the one given (`Subject::same_block`), and then it is not
//! issued at all. So a free of memory that was freed and handed out again
//! as something else (a block of another size, a slab, pages a second
//! user of the page source took) is checked as strictly as a free of
//! memory never handed out.

use std::alloc::Layout;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::ptr::NonNull;

use kalloc::{AllocError, AllocResult};

use super::host::PAGE;
use super::subjects::{Setup, Subject};

/// How many bytes at each end of a block carry its fill pattern (fewer
/// under Miri, where every byte checked costs).
const FILL_EDGE: usize = if cfg!(miri) { 4 } else { 64 };

/// How many freed blocks the model remembers for stale frees.
const RECENT: usize = 32;

/// The most page runs a second user of the page source holds at once.
const FOREIGN_MAX: usize = 4;

/// A large block and a small one to reuse its memory. In the first three
/// the small one's class takes a fresh slab as large as the block, so with
/// a page source that hands back the pages freed last the slab lands where
/// the block was; the others are a block of more pages than any slab, and
/// one just over a page, each against a class of a single page.
const REUSE_PAIRS: [(usize, usize); 5] = [
    (4096, 64),
    (8192, 1024),
    (16384, 2048),
    (3 * 4096, 200),
    (4096 + 1, 8),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadFree {
    /// Free a live block twice.
    Double,
    /// Free again a block freed earlier, after later allocations may have
    /// reused its memory (as a block of another size or class, or a slab).
    Stale,
    /// Realloc a block freed earlier: a free of it, with an allocation.
    StaleRealloc,
    /// Free an address inside a live block.
    Interior,
    /// Free a live block with another size (much larger, half, one byte
    /// more, another class, one page more).
    WrongSize,
    /// Free a live block with the same size and an alignment its address
    /// does not have.
    WrongAlign,
    /// Free a live block with the same size and another alignment its
    /// address does have (bad only where the algorithm can tell).
    OtherAlign,
    /// Free an address outside every pool.
    Outside,
    /// Free an address inside the heap's ranges where no live block
    /// starts: free memory, metadata, the inside of blocks.
    Unhanded,
    /// Allocate a large block, free it, allocate a small one (which may
    /// reuse the pages, as a slab of its class), free or realloc the large
    /// block again.
    Reused,
    /// As `Reused`, but a second user of the shared page source takes the
    /// freed pages (the allocator's own reuse where there is no shared
    /// source).
    ReusedBySource,
}

impl BadFree {
    pub const ALL: [BadFree; 11] = [
        BadFree::Double,
        BadFree::Stale,
        BadFree::StaleRealloc,
        BadFree::Interior,
        BadFree::WrongSize,
        BadFree::WrongAlign,
        BadFree::OtherAlign,
        BadFree::Outside,
        BadFree::Unhanded,
        BadFree::Reused,
        BadFree::ReusedBySource,
    ];

    fn index(self) -> usize {
        Self::ALL.iter().position(|&k| k == self).unwrap()
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Alloc { size: usize, align: usize },
    Dealloc { pick: usize },
    Realloc { pick: usize, new_size: usize },
    Bad { pick: usize, kind: BadFree },
}

/// Decodes 4 bytes per operation. Sizes are log-uniform from 1 B to
/// `2^max_size_log2`; alignments 1 to 4096, mostly small.
pub fn ops_from_bytes(data: &[u8], max_size_log2: u32) -> Vec<Op> {
    data.chunks_exact(4)
        .map(|c| {
            let size = {
                let exp = u32::from(c[1]) % (max_size_log2 + 1);
                ((1usize << exp) + (usize::from(c[2]) << exp >> 8)).max(1)
            };
            let pick = usize::from(c[2]) << 8 | usize::from(c[3]);
            match c[0] % 16 {
                0..=6 => {
                    let align = if c[3] % 4 == 0 {
                        1 << (c[3] / 4 % 13)
                    } else {
                        8
                    };
                    Op::Alloc { size, align }
                }
                7..=11 => Op::Dealloc { pick },
                12 | 13 => Op::Realloc {
                    pick,
                    new_size: size,
                },
                _ => Op::Bad {
                    pick,
                    kind: BadFree::ALL[usize::from(c[1]) % BadFree::ALL.len()],
                },
            }
        })
        .collect()
}

/// SplitMix64: a seeded generator small enough to share with every crate
/// that runs this model, so seeded runs need no dependency.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A long seeded run: one operation in four a bad free of a kind drawn
/// uniformly, the others decoded as by `ops_from_bytes` (half the
/// allocations small, so the pools fill with many blocks and the freed
/// memory is reused), checked after every step; then everything is freed
/// and must coalesce. Returns how many bad frees of each kind (in
/// `BadFree::ALL` order) were issued.
pub fn long_run<A: Subject>(
    pools: &[usize],
    seed: u64,
    steps: usize,
    max_size_log2: u32,
) -> [usize; BadFree::ALL.len()] {
    let mut rng = SplitMix::new(seed);
    let mut model = Model::<A>::new(pools);
    for step in 0..steps {
        let word = rng.next_u64();
        let op = if word.is_multiple_of(4) {
            Op::Bad {
                pick: (word >> 8) as usize,
                kind: BadFree::ALL[(word >> 40) as usize % BadFree::ALL.len()],
            }
        } else {
            let bytes = ((word >> 8) as u32).to_le_bytes();
            match ops_from_bytes(&bytes, max_size_log2)[0] {
                Op::Alloc { size, align } if step % 2 == 0 => Op::Alloc {
                    size: size % 512 + 1,
                    align,
                },
                op => op,
            }
        };
        model.apply(op);
    }
    let issued = model.issued;
    model.finish(&[7, 3, 1, 0]);
    issued
}

struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u8,
    /// What `used_bytes` grew by when the block was handed out.
    charged: usize,
}

/// A run of pages a second user of the page source holds.
struct Foreign {
    ptr: NonNull<u8>,
    pages: usize,
    tag: u8,
}

/// The misuse a bad free performs.
#[derive(Clone, Copy, Debug)]
enum Misuse {
    Dealloc,
    Realloc(usize),
}

pub struct Model<A: Subject> {
    setup: Setup<A>,
    live: Vec<Live>,
    /// Blocks freed lately (oldest first), for stale frees.
    recent: VecDeque<(NonNull<u8>, Layout)>,
    foreign: VecDeque<Foreign>,
    next_tag: u8,
    fingerprint: usize,
    outside: Box<[u64; 8]>,
    /// Bad frees issued per kind (`BadFree::ALL` order).
    issued: [usize; BadFree::ALL.len()],
    /// Valid operations applied, which pace the cross-checks under Miri.
    valid_ops: usize,
}

/// Row `tag` is the fill pattern of a block tagged `tag` (byte `offset`
/// holds `tag ^ offset as u8`) from offset 0, long enough that an edge of
/// any block starts in its first 256 bytes. Built at compile time, so
/// filling and checking copy and compare slices: the check runs for every
/// live block after every step and dominates the suite's time otherwise.
static PATTERNS: [[u8; 256 + FILL_EDGE]; 256] = {
    let mut rows = [[0; 256 + FILL_EDGE]; 256];
    let mut tag = 0;
    while tag < 256 {
        let mut offset = 0;
        while offset < 256 + FILL_EDGE {
            rows[tag][offset] = (tag ^ offset) as u8;
            offset += 1;
        }
        tag += 1;
    }
    rows
};

/// The head and the tail of a block that carry its fill pattern.
fn edges(size: usize) -> [std::ops::Range<usize>; 2] {
    let head = size.min(FILL_EDGE);
    [0..head, size.saturating_sub(FILL_EDGE).max(head)..size]
}

fn edge_offsets(size: usize) -> impl Iterator<Item = usize> {
    edges(size).into_iter().flatten()
}

fn expected(tag: u8, range: &std::ops::Range<usize>) -> &'static [u8] {
    &PATTERNS[usize::from(tag)][range.start % 256..][..range.len()]
}

fn fill(ptr: NonNull<u8>, size: usize, tag: u8) {
    for range in edges(size) {
        let pattern = expected(tag, &range);
        // SAFETY: the range lies inside a live block we own.
        unsafe {
            ptr.add(range.start)
                .copy_from_nonoverlapping(NonNull::from(pattern).cast(), pattern.len())
        };
    }
}

fn check_fill(ptr: NonNull<u8>, size: usize, tag: u8, what: &str) {
    for range in edges(size) {
        let pattern = expected(tag, &range);
        // SAFETY: the range lies inside a live block we own, which nothing
        // writes while the slice exists.
        let bytes =
            unsafe { std::slice::from_raw_parts(ptr.add(range.start).as_ptr(), range.len()) };
        if bytes != pattern {
            let index = (0..bytes.len()).find(|&i| bytes[i] != pattern[i]).unwrap();
            panic!(
                "{what}: byte {} of a {size}-byte block at {:#x} changed: {:#04x}, expected {:#04x}",
                range.start + index,
                ptr.addr(),
                bytes[index],
                pattern[index]
            );
        }
    }
}

impl<A: Subject> Model<A> {
    pub fn new(pool_sizes: &[usize]) -> Self {
        let mut setup = A::build(pool_sizes);
        let fingerprint = setup.alloc.settle();
        assert_eq!(setup.alloc.used_bytes(), 0);
        Self {
            setup,
            live: Vec::new(),
            recent: VecDeque::new(),
            foreign: VecDeque::new(),
            next_tag: 1,
            fingerprint,
            outside: Box::new([0; 8]),
            issued: [0; BadFree::ALL.len()],
            valid_ops: 0,
        }
    }

    pub fn alloc_mut(&mut self) -> &mut A {
        &mut self.setup.alloc
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The byte ranges blocks may lie in.
    pub fn ranges(&self) -> &[(usize, usize)] {
        &self.setup.ranges
    }

    pub fn apply(&mut self, op: Op) {
        match op {
            Op::Alloc { size, align } => {
                self.take(size, align);
            }
            Op::Dealloc { pick } if !self.live.is_empty() => {
                self.release(pick % self.live.len());
            }
            Op::Realloc { pick, new_size } if !self.live.is_empty() => {
                self.realloc(pick % self.live.len(), new_size)
            }
            Op::Bad { pick, kind } => {
                self.bad_free(pick, kind);
                self.check();
                return;
            }
            _ => {}
        }
        self.valid_ops += 1;
        // The cross-check reads every live block; under Miri it runs after
        // every fourth valid operation (a bad free is always checked).
        if !cfg!(miri) || self.valid_ops.is_multiple_of(4) {
            self.check();
        }
    }

    /// Allocates a block of `size` bytes at `align` and keeps it live;
    /// its address, or `None` if the allocator is out of memory.
    pub fn alloc(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let ptr = self.take(size, align);
        self.check();
        ptr
    }

    fn take(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let layout = Layout::from_size_align(size, align).unwrap();
        let before = self.used();
        match self.setup.alloc.alloc(layout) {
            Ok(ptr) => {
                let charged = self.used() - before;
                assert!(
                    charged >= size,
                    "{}: charged {charged} for {size} bytes",
                    A::NAME
                );
                let tag = self.take_tag();
                fill(ptr, size, tag);
                self.live.push(Live {
                    ptr,
                    layout,
                    tag,
                    charged,
                });
                Some(ptr)
            }
            Err(AllocError::NoMemory) => {
                assert_eq!(self.used(), before);
                None
            }
            Err(e) => panic!("{}: alloc({layout:?}) failed with {e:?}", A::NAME),
        }
    }

    /// Frees the live block at `ptr` correctly.
    pub fn free(&mut self, ptr: NonNull<u8>) {
        let index = self
            .live
            .iter()
            .position(|b| b.ptr == ptr)
            .expect("a live block");
        self.release(index);
        self.check();
    }

    /// Frees `ptr` as `layout`, which must be refused and change nothing.
    /// The explicit form of the bad frees `apply` draws; the model must
    /// agree that it is bad (no live block there that the algorithm
    /// cannot tell from `layout`).
    pub fn free_again(&mut self, ptr: NonNull<u8>, layout: Layout) -> AllocError {
        let refusal = self.refused(ptr, layout, Misuse::Dealloc, "free");
        self.check();
        refusal.unwrap_or_else(|| panic!("{}: {ptr:?} as {layout:?} is a live block", A::NAME))
    }

    /// Reallocs `ptr` as `layout` to `new_size`, which must be refused and
    /// change nothing (the model must agree, as for `free_again`).
    pub fn realloc_again(&mut self, ptr: NonNull<u8>, layout: Layout, new_size: usize) {
        let refusal = self.refused(ptr, layout, Misuse::Realloc(new_size), "realloc");
        assert!(
            refusal.is_some(),
            "{}: {ptr:?} as {layout:?} is a live block",
            A::NAME
        );
        self.check();
    }

    /// The layout of the live block at `ptr`.
    pub fn layout_of(&self, ptr: NonNull<u8>) -> Layout {
        self.live
            .iter()
            .find(|b| b.ptr == ptr)
            .expect("a live block")
            .layout
    }

    /// Allocates `size`-byte blocks until one lands in `[lo, hi)` (the
    /// others stay live) and returns it.
    pub fn alloc_within(&mut self, size: usize, (lo, hi): (usize, usize)) -> NonNull<u8> {
        loop {
            let ptr = self
                .take(size, 8)
                .unwrap_or_else(|| panic!("{}: no {size}-byte block in {lo:#x}..{hi:#x}", A::NAME));
            if (lo..hi).contains(&ptr.addr().get()) {
                self.check();
                return ptr;
            }
        }
    }

    /// Allocates blocks of each size in turn (largest first) until the
    /// allocator has none left, so that memory freed afterwards is the only
    /// place a later allocation can go.
    pub fn fill_up(&mut self, sizes: &[usize]) {
        for &size in sizes {
            while self.take(size, 8).is_some() {}
        }
        self.check();
    }

    /// The sequence a layer that passes frees on can get wrong, on the
    /// live block at `ptr`: free it, allocate `small`-byte blocks until
    /// one lands in its memory (a slab of that class, say; at most
    /// `tries`), then free and realloc the old block again (both refused,
    /// nothing changed) and allocate its size once more (which must not
    /// overlap anything live).
    pub fn free_reuse_free(&mut self, ptr: NonNull<u8>, small: usize, tries: usize) {
        let layout = self.layout_of(ptr);
        self.free(ptr);
        let (lo, hi) = (ptr.addr().get(), ptr.addr().get() + layout.size());
        // Checked once the memory is reused, not after each allocation:
        // under Miri a check per step makes this loop quadratic.
        let reused = (0..tries).any(|_| {
            self.take(small, 8)
                .is_some_and(|p| (lo..hi).contains(&p.addr().get()))
        });
        self.check();
        assert!(
            reused,
            "{}: no {small}-byte block reused the freed {lo:#x}..{hi:#x} in {tries} tries",
            A::NAME
        );
        self.free_again(ptr, layout);
        self.realloc_again(ptr, layout, layout.size());
        self.alloc(layout.size(), layout.align());
    }

    /// As `free_reuse_free`, but a second user of the shared page source
    /// takes exactly the freed pages.
    pub fn free_take_pages_free(&mut self, ptr: NonNull<u8>) {
        let layout = self.layout_of(ptr);
        self.free(ptr);
        let taken = self.take_source_pages(ptr, layout.size().div_ceil(PAGE));
        assert_eq!(
            taken,
            Some(true),
            "{}: a second user could not take the freed pages",
            A::NAME
        );
        self.check();
        self.free_again(ptr, layout);
        self.realloc_again(ptr, layout, layout.size());
        self.alloc(layout.size(), layout.align());
    }

    /// A pointer to `addr` in the heap, with the provenance of its range.
    pub fn pointer_to(&self, addr: usize) -> NonNull<u8> {
        self.setup.pointer_to(addr)
    }

    /// A second user of the shared page source takes the `pages` pages at
    /// `ptr` and keeps them (filled, checked intact after every step).
    /// Whether it got them; `None` if the allocator shares no page source.
    pub fn take_source_pages(&mut self, ptr: NonNull<u8>, pages: usize) -> Option<bool> {
        while self.foreign.len() >= FOREIGN_MAX {
            self.give_back_foreign();
        }
        let result = self
            .setup
            .alloc
            .take_source_pages(ptr.addr().get(), pages)?;
        if result.is_err() {
            return Some(false);
        }
        let tag = self.take_tag();
        fill(ptr, pages * PAGE, tag);
        self.foreign.push_back(Foreign { ptr, pages, tag });
        Some(true)
    }

    fn take_tag(&mut self) -> u8 {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        tag
    }

    fn give_back_foreign(&mut self) {
        let Some(run) = self.foreign.pop_front() else {
            return;
        };
        check_fill(run.ptr, run.pages * PAGE, run.tag, "pages of a second user");
        let result = self
            .setup
            .alloc
            .give_source_pages(run.ptr.addr().get(), run.pages);
        assert_eq!(
            result,
            Ok(()),
            "{}: page source refused its own pages",
            A::NAME
        );
    }

    fn used(&self) -> usize {
        self.setup.alloc.used_bytes()
    }

    fn release(&mut self, index: usize) {
        let block = self.live.swap_remove(index);
        self.dealloc(block);
    }

    fn remember_freed(&mut self, ptr: NonNull<u8>, layout: Layout) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((ptr, layout));
    }

    fn dealloc(&mut self, block: Live) {
        check_fill(block.ptr, block.layout.size(), block.tag, "before dealloc");
        let before = self.used();
        // SAFETY: a live block of this allocator, freed once.
        unsafe { self.setup.alloc.dealloc(block.ptr, block.layout) }.unwrap();
        assert_eq!(
            before - self.used(),
            block.charged,
            "{}: dealloc gave back a different charge",
            A::NAME
        );
        self.remember_freed(block.ptr, block.layout);
    }

    fn realloc(&mut self, index: usize, new_size: usize) {
        let block = &self.live[index];
        let before = self.used();
        // SAFETY: a live block of this allocator.
        match unsafe { self.setup.alloc.realloc(block.ptr, block.layout, new_size) } {
            Ok(ptr) => {
                let old_size = block.layout.size();
                let kept = old_size.min(new_size);
                for offset in edge_offsets(old_size).filter(|&o| o < kept) {
                    // SAFETY: `offset < kept <= new_size`, inside the new block.
                    let byte = unsafe { ptr.add(offset).read() };
                    assert_eq!(
                        byte,
                        block.tag ^ offset as u8,
                        "{}: realloc lost byte {offset}",
                        A::NAME
                    );
                }
                let charged = (block.charged + self.used()).checked_sub(before).unwrap();
                assert!(charged >= new_size);
                let layout = Layout::from_size_align(new_size, block.layout.align()).unwrap();
                let tag = block.tag;
                // Moved, the old block is freed; in place, its old layout
                // no longer describes it. Either is a bad free later.
                let old = (block.ptr, block.layout);
                fill(ptr, new_size, tag);
                self.live[index] = Live {
                    ptr,
                    layout,
                    tag,
                    charged,
                };
                self.remember_freed(old.0, old.1);
            }
            Err(AllocError::NoMemory) => assert_eq!(self.used(), before),
            Err(e) => panic!("{}: realloc to {new_size} failed with {e:?}", A::NAME),
        }
    }

    /// Everything a refused free must leave as it was.
    fn snapshot(&self) -> (usize, usize, usize, Vec<usize>) {
        let alloc = &self.setup.alloc;
        (
            alloc.used_bytes(),
            alloc.available_bytes(),
            alloc.total_bytes(),
            alloc.state(),
        )
    }

    fn in_heap(&self, addr: usize) -> bool {
        self.setup
            .ranges
            .iter()
            .any(|&(lo, hi)| (lo..hi).contains(&addr))
    }

    /// What the memory at `[addr, addr + size)` holds now, for messages.
    fn holders(&self, addr: usize, size: usize) -> String {
        let end = addr + size.max(1);
        let mut text = String::new();
        for b in &self.live {
            let start = b.ptr.addr().get();
            if start < end && addr < start + b.layout.size() {
                let _ = write!(text, " live block {start:#x} {:?};", b.layout);
            }
        }
        for run in &self.foreign {
            let start = run.ptr.addr().get();
            if start < end && addr < start + run.pages * PAGE {
                let _ = write!(
                    text,
                    " {} pages at {start:#x} held by a second user of the page source;",
                    run.pages
                );
            }
        }
        if text.is_empty() {
            text.push_str(" no live block");
        }
        text
    }

    /// Issues a bad free (or realloc) of `ptr` as `layout`: it must be
    /// refused (`OutOfRange` outside the heap, any refusal inside) and
    /// leave the counters, the algorithm's state and every live block as
    /// they were. Not issued if a live block starts at `ptr` that the
    /// algorithm cannot tell from `layout`. Returns the refusal, or `None`
    /// if nothing was issued.
    fn refused(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
        misuse: Misuse,
        what: &str,
    ) -> Option<AllocError> {
        let addr = ptr.addr().get();
        if self
            .live
            .iter()
            .any(|b| b.ptr == ptr && A::same_block(addr, b.layout, b.charged, layout))
        {
            return None;
        }
        let in_heap = self.in_heap(addr);
        let before = self.snapshot();
        // SAFETY: deliberately bad frees, which the contract requires to be
        // reported: the address is this allocator's memory or outside all of
        // it, and no block it names is used afterwards.
        let result: AllocResult<Option<NonNull<u8>>> = unsafe {
            match misuse {
                Misuse::Dealloc => self.setup.alloc.dealloc(ptr, layout).map(|()| None),
                Misuse::Realloc(new_size) => {
                    self.setup.alloc.realloc(ptr, layout, new_size).map(Some)
                }
            }
        };
        let refused = match result {
            Err(AllocError::OutOfRange) => true,
            Err(AllocError::DoubleFree | AllocError::NotAllocated) => in_heap,
            _ => false,
        };
        assert!(
            refused,
            "{}: {what} {misuse:?} of {addr:#x} as {layout:?} gave {result:?}, expected {}; \
             the memory there holds:{}",
            A::NAME,
            if in_heap {
                "DoubleFree, NotAllocated or OutOfRange"
            } else {
                "OutOfRange"
            },
            self.holders(addr, layout.size()),
        );
        assert_eq!(
            before,
            self.snapshot(),
            "{}: refused {what} of {addr:#x} as {layout:?} changed (used, available, total, \
             state)",
            A::NAME
        );
        result.err()
    }

    fn bad_free(&mut self, pick: usize, kind: BadFree) {
        let issued = match kind {
            BadFree::Double => {
                if self.live.is_empty() {
                    return;
                }
                let block = self.live.swap_remove(pick % self.live.len());
                let (ptr, layout) = (block.ptr, block.layout);
                self.dealloc(block);
                self.refused(ptr, layout, Misuse::Dealloc, "double free")
                    .is_some()
            }
            BadFree::Stale | BadFree::StaleRealloc => {
                if self.recent.is_empty() {
                    return;
                }
                let (ptr, layout) = self.recent[pick % self.recent.len()];
                if kind == BadFree::Stale {
                    self.refused(ptr, layout, Misuse::Dealloc, "stale free")
                        .is_some()
                } else {
                    let new_size = [layout.size(), layout.size() * 2, 1][pick / 64 % 3];
                    self.refused(ptr, layout, Misuse::Realloc(new_size), "stale realloc")
                        .is_some()
                }
            }
            BadFree::Interior => {
                let Some(block) = self.pick_live(pick) else {
                    return;
                };
                let (ptr, layout) = (block.ptr, block.layout);
                let size = layout.size();
                if size < 2 {
                    return;
                }
                let offsets = [
                    1,
                    8,
                    16,
                    (size / 2) & !15,
                    size - 1,
                    PAGE,
                    size & !(PAGE - 1),
                ];
                let offset = offsets[pick / 64 % offsets.len()];
                if offset == 0 || offset >= size {
                    return;
                }
                // SAFETY: `0 < offset < size`: inside the block.
                let inside = unsafe { ptr.add(offset) };
                self.refused(inside, layout, Misuse::Dealloc, "interior free")
                    .is_some()
            }
            BadFree::WrongSize => {
                let Some(block) = self.pick_live(pick) else {
                    return;
                };
                let (ptr, layout) = (block.ptr, block.layout);
                let size = layout.size();
                let sizes = [
                    size * 2 + 4096,
                    size / 2,
                    size + 1,
                    size * 2 + 1,
                    size + PAGE,
                ];
                let wrong = sizes[pick / 64 % sizes.len()];
                if wrong == 0 {
                    return;
                }
                let wrong = Layout::from_size_align(wrong, layout.align()).unwrap();
                self.refused(ptr, wrong, Misuse::Dealloc, "wrong-size free")
                    .is_some()
            }
            BadFree::WrongAlign => {
                let Some(block) = self.pick_live(pick) else {
                    return;
                };
                let (ptr, layout) = (block.ptr, block.layout);
                let align = 2usize << ptr.addr().trailing_zeros().min(30);
                let wrong = Layout::from_size_align(layout.size(), align).unwrap();
                self.refused(ptr, wrong, Misuse::Dealloc, "misaligned free")
                    .is_some()
            }
            BadFree::OtherAlign => {
                let Some(block) = self.pick_live(pick) else {
                    return;
                };
                let (ptr, layout) = (block.ptr, block.layout);
                let has = 1usize << ptr.addr().trailing_zeros().min(12);
                let aligns = [1, layout.align() / 2, (layout.align() * 2).min(has), has];
                let align = aligns[pick / 64 % aligns.len()].max(1);
                if align == layout.align() {
                    return;
                }
                let other = Layout::from_size_align(layout.size(), align).unwrap();
                self.refused(ptr, other, Misuse::Dealloc, "other-alignment free")
                    .is_some()
            }
            BadFree::Outside => {
                let ptr = NonNull::from(&mut self.outside[0]).cast();
                self.refused(ptr, Layout::new::<u64>(), Misuse::Dealloc, "outside free")
                    .is_some()
            }
            BadFree::Unhanded => {
                let (lo, hi) = self.setup.ranges[pick % self.setup.ranges.len()];
                let spread = (pick as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
                let mut addr = lo + (spread as usize) % (hi - lo);
                addr &= [!0, !7, !15, !(PAGE - 1)][pick / 64 % 4];
                if addr < lo {
                    addr = lo;
                }
                let layouts = [(16, 8), (64, 8), (2048, 8), (4096, 8), (8192, 4096)];
                let (size, align) = layouts[pick / 256 % layouts.len()];
                let layout = Layout::from_size_align(size, align).unwrap();
                let ptr = self.setup.pointer_to(addr);
                self.refused(ptr, layout, Misuse::Dealloc, "free of an unhanded address")
                    .is_some()
            }
            BadFree::Reused | BadFree::ReusedBySource => {
                let (big, small) = REUSE_PAIRS[pick % REUSE_PAIRS.len()];
                let misuse = if (pick / 64).is_multiple_of(4) {
                    Misuse::Realloc(big)
                } else {
                    Misuse::Dealloc
                };
                self.reuse_and_free_again(big, small, kind == BadFree::ReusedBySource, misuse)
            }
        };
        if issued {
            self.issued[kind.index()] += 1;
        }
    }

    fn pick_live(&self, pick: usize) -> Option<&Live> {
        (!self.live.is_empty()).then(|| &self.live[pick % self.live.len()])
    }

    /// Allocates `big` bytes, frees them, lets the memory be taken again
    /// (by a `small` allocation, or by a second user of the page source),
    /// then frees or reallocs the `big` block once more.
    fn reuse_and_free_again(
        &mut self,
        big: usize,
        small: usize,
        by_source: bool,
        misuse: Misuse,
    ) -> bool {
        let Some(ptr) = self.take(big, 8) else {
            return false;
        };
        let layout = self.live.last().unwrap().layout;
        self.release(self.live.len() - 1);
        let taken = by_source
            && self
                .take_source_pages(ptr, big.div_ceil(PAGE))
                .is_some_and(|got| got);
        if !taken {
            self.take(small, 8);
        }
        self.refused(ptr, layout, misuse, "free after reuse")
            .is_some()
    }

    /// Cross-checks every live block against the others and the pools.
    fn check(&self) {
        let alloc = &self.setup.alloc;
        let charged: usize = self.live.iter().map(|b| b.charged).sum();
        assert_eq!(
            alloc.used_bytes(),
            charged,
            "{}: used_bytes differs from the blocks' charges",
            A::NAME
        );
        assert!(alloc.used_bytes() + alloc.available_bytes() <= alloc.total_bytes() + charged);
        let blocks = self
            .live
            .iter()
            .map(|b| (b.ptr, b.layout.size(), b.layout.align()));
        let runs = self.foreign.iter().map(|r| (r.ptr, r.pages * PAGE, PAGE));
        let mut spans: Vec<(usize, usize)> = blocks
            .chain(runs)
            .map(|(ptr, size, align)| {
                let start = ptr.addr().get();
                assert_eq!(
                    start % align,
                    0,
                    "{}: {start:#x} misaligned for {align}",
                    A::NAME,
                );
                let end = start + size;
                assert!(
                    self.setup
                        .ranges
                        .iter()
                        .any(|&(lo, hi)| lo <= start && end <= hi),
                    "{}: block {start:#x}..{end:#x} outside every pool",
                    A::NAME
                );
                (start, end)
            })
            .collect();
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{}: blocks {:x?} and {:x?} overlap",
                A::NAME,
                pair[0],
                pair[1]
            );
        }
        for block in &self.live {
            check_fill(block.ptr, block.layout.size(), block.tag, "live block");
        }
        for run in &self.foreign {
            check_fill(run.ptr, run.pages * PAGE, run.tag, "pages of a second user");
        }
    }

    /// Frees everything (in the order given by `order`) and checks full
    /// coalescing: counters back to zero, fingerprint as after setup.
    pub fn finish(mut self, order: &[usize]) {
        let mut pick = order.iter().copied().cycle();
        while !self.live.is_empty() {
            let index = pick.next().unwrap_or(0) % self.live.len();
            self.release(index);
        }
        while !self.foreign.is_empty() {
            self.give_back_foreign();
        }
        let alloc = &mut self.setup.alloc;
        assert_eq!(
            alloc.used_bytes(),
            0,
            "{}: used_bytes after freeing everything",
            A::NAME
        );
        let fingerprint = alloc.settle();
        assert_eq!(
            fingerprint,
            self.fingerprint,
            "{}: not fully coalesced after freeing everything",
            A::NAME
        );
        if A::SETTLES_WHOLE {
            assert_eq!(
                alloc.available_bytes(),
                alloc.total_bytes(),
                "{}: available != total when empty",
                A::NAME
            );
        }
    }
}

/// A large block and a `kmalloc` class whose fresh slab is as large:
/// 1-page slabs of 64 B, 2-page slabs of 1 KiB, 4-page slabs of 2 KiB.
pub const SLAB_PAIRS: [(usize, usize); 3] = [(4096, 64), (8192, 1024), (16384, 2048)];

/// Enough small allocations to fill a slab or two and start the next.
pub const TRIES: usize = 160;

/// alloc(big), dealloc(big), small allocations until one lands in big's
/// pages (a new slab), then dealloc(big) and realloc(big) again.
pub fn large_block_pages_become_a_slab<A: Subject>(pool: &[usize]) {
    for (big, small) in SLAB_PAIRS {
        let mut model = Model::<A>::new(pool);
        let ptr = model.alloc(big, 8).unwrap();
        model.free_reuse_free(ptr, small, TRIES);
        model.finish(&[0]);
    }
}
