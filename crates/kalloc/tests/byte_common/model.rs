//! The model-based checker shared by the property tests and the fuzz
//! targets: decodes bytes into alloc/dealloc/realloc/bad-free operations,
//! applies them, and checks after every step that live blocks are aligned,
//! in bounds, disjoint and intact, that bad frees fail and change nothing,
//! and that the counters match what each block was charged.

use std::alloc::Layout;
use std::ptr::NonNull;

use kalloc::AllocError;

use super::subjects::{Setup, Subject};

/// How many bytes at each end of a block carry its fill pattern (fewer
/// under Miri, where every byte checked costs).
const FILL_EDGE: usize = if cfg!(miri) { 4 } else { 64 };

#[derive(Clone, Copy, Debug)]
pub enum BadFree {
    /// Free a live block twice.
    Double,
    /// Free an address inside a live block.
    Interior,
    /// Free a live block with a much larger layout.
    WrongSize,
    /// Free an address outside every pool.
    Outside,
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
                _ => {
                    let kind = match c[3] % 4 {
                        0 => BadFree::Double,
                        1 => BadFree::Interior,
                        2 => BadFree::WrongSize,
                        _ => BadFree::Outside,
                    };
                    Op::Bad { pick, kind }
                }
            }
        })
        .collect()
}

struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u8,
    /// What `used_bytes` grew by when the block was handed out.
    charged: usize,
}

pub struct Model<A: Subject> {
    setup: Setup<A>,
    live: Vec<Live>,
    next_tag: u8,
    fingerprint: usize,
    outside: Box<[u64; 8]>,
}

fn fill(ptr: NonNull<u8>, size: usize, tag: u8) {
    for offset in edge_offsets(size) {
        // SAFETY: `offset < size`, inside a live block we own.
        unsafe { ptr.add(offset).write(tag ^ offset as u8) };
    }
}

fn edge_offsets(size: usize) -> impl Iterator<Item = usize> {
    let head = 0..size.min(FILL_EDGE);
    let tail = size.saturating_sub(FILL_EDGE).max(size.min(FILL_EDGE))..size;
    head.chain(tail)
}

fn check_fill(ptr: NonNull<u8>, size: usize, tag: u8, what: &str) {
    for offset in edge_offsets(size) {
        // SAFETY: `offset < size`, inside a live block we own.
        let byte = unsafe { ptr.add(offset).read() };
        assert_eq!(
            byte,
            tag ^ offset as u8,
            "{what}: byte {offset} of a {size}-byte block changed"
        );
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
            next_tag: 1,
            fingerprint,
            outside: Box::new([0; 8]),
        }
    }

    pub fn alloc_mut(&mut self) -> &mut A {
        &mut self.setup.alloc
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    pub fn apply(&mut self, op: Op) {
        match op {
            Op::Alloc { size, align } => self.alloc(size, align),
            Op::Dealloc { pick } if !self.live.is_empty() => {
                let block = self.live.swap_remove(pick % self.live.len());
                self.dealloc(block);
            }
            Op::Realloc { pick, new_size } if !self.live.is_empty() => {
                self.realloc(pick % self.live.len(), new_size)
            }
            Op::Bad { pick, kind } if !self.live.is_empty() => {
                self.bad_free(pick % self.live.len(), kind)
            }
            _ => {}
        }
        self.check();
    }

    fn used(&self) -> usize {
        self.setup.alloc.used_bytes()
    }

    fn alloc(&mut self, size: usize, align: usize) {
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
                let tag = self.next_tag;
                self.next_tag = self.next_tag.wrapping_add(1);
                fill(ptr, size, tag);
                self.live.push(Live {
                    ptr,
                    layout,
                    tag,
                    charged,
                });
            }
            Err(AllocError::NoMemory) => assert_eq!(self.used(), before),
            Err(e) => panic!("{}: alloc({layout:?}) failed with {e:?}", A::NAME),
        }
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
                fill(ptr, new_size, tag);
                self.live[index] = Live {
                    ptr,
                    layout,
                    tag,
                    charged,
                };
            }
            Err(AllocError::NoMemory) => assert_eq!(self.used(), before),
            Err(e) => panic!("{}: realloc to {new_size} failed with {e:?}", A::NAME),
        }
    }

    fn bad_free(&mut self, index: usize, kind: BadFree) {
        let (used, available) = (self.used(), self.setup.alloc.available_bytes());
        let block = &self.live[index];
        let (ptr, layout, expected): (NonNull<u8>, Layout, &[AllocError]) = match kind {
            BadFree::Double => {
                let block = self.live.swap_remove(index);
                let (ptr, layout) = (block.ptr, block.layout);
                self.dealloc(block);
                let (used, available) = (self.used(), self.setup.alloc.available_bytes());
                // SAFETY: a double free, which the contract allows (reported).
                let result = unsafe { self.setup.alloc.dealloc(ptr, layout) };
                let ok = [AllocError::DoubleFree, AllocError::NotAllocated];
                assert!(
                    matches!(result, Err(e) if ok.contains(&e)),
                    "{}: double free gave {result:?}",
                    A::NAME
                );
                assert_eq!(
                    (used, available),
                    (self.used(), self.setup.alloc.available_bytes())
                );
                return;
            }
            BadFree::Interior if block.layout.size() >= 32 => {
                // SAFETY: 16 bytes into a block of at least 32.
                (
                    unsafe { block.ptr.add(16) },
                    block.layout,
                    &[AllocError::NotAllocated, AllocError::DoubleFree],
                )
            }
            BadFree::WrongSize => {
                let wrong =
                    Layout::from_size_align(block.layout.size() * 2 + 4096, block.layout.align())
                        .unwrap();
                (
                    block.ptr,
                    wrong,
                    &[AllocError::NotAllocated, AllocError::DoubleFree],
                )
            }
            BadFree::Outside => {
                let ptr = NonNull::from(&mut self.outside[0]).cast();
                (ptr, Layout::new::<u64>(), &[AllocError::OutOfRange])
            }
            BadFree::Interior => return,
        };
        // SAFETY: deliberately bad frees that the contract requires to be reported.
        let result = unsafe { self.setup.alloc.dealloc(ptr, layout) };
        assert!(
            matches!(result, Err(e) if expected.contains(&e)),
            "{}: {kind:?} free gave {result:?}, expected one of {expected:?}",
            A::NAME
        );
        assert_eq!(
            (used, available),
            (self.used(), self.setup.alloc.available_bytes()),
            "{kind:?} changed the counters"
        );
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
        let mut spans: Vec<(usize, usize)> = self
            .live
            .iter()
            .map(|b| {
                let start = b.ptr.addr().get();
                assert_eq!(
                    start % b.layout.align(),
                    0,
                    "{}: misaligned {:?}",
                    A::NAME,
                    b.layout
                );
                let end = start + b.layout.size();
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
    }

    /// Frees everything (in the order given by `order`) and checks full
    /// coalescing: counters back to zero, fingerprint as after setup.
    pub fn finish(mut self, order: &[usize]) {
        let mut pick = order.iter().copied().cycle();
        while !self.live.is_empty() {
            let index = pick.next().unwrap_or(0) % self.live.len();
            let block = self.live.swap_remove(index);
            self.dealloc(block);
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
        assert_eq!(
            alloc.available_bytes(),
            alloc.total_bytes(),
            "{}: available != total when empty",
            A::NAME
        );
    }
}
