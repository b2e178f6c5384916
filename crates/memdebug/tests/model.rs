//! Model-based property test: random allocations, frees and bad frees
//! through the byte layer with every check on, compared after each step
//! with a shadow model.

mod support;

use std::alloc::Layout;
use std::collections::BTreeMap;
use std::ptr::NonNull;

use kalloc::{AllocError, BaseAllocator, ByteAllocator};
use memdebug::{DebugByteAllocator, DebugConfig, DebugFlags, LeakWatch, ReportKind, SiteSummary};
use proptest::prelude::*;
use support::{Collect, FirstFit, arena, tables, tick};

#[derive(Debug, Clone)]
enum Op {
    Alloc { size: usize, align_log: u32 },
    Free { pick: usize },
    DoubleFree { pick: usize },
    WrongSize { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..600, 0u32..7).prop_map(|(size, align_log)| Op::Alloc { size, align_log }),
        3 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => any::<usize>().prop_map(|pick| Op::DoubleFree { pick }),
        1 => any::<usize>().prop_map(|pick| Op::WrongSize { pick }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 3 } else { 128 }))]
    #[test]
    fn layer_matches_model(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 200 })) {
        let (start, size) = arena(256 * 1024);
        let (table, history) = tables(1024, 32);
        let config = DebugConfig { quarantine_limit: 4096, ..DebugConfig::bytes(DebugFlags::all()) };
        let mut heap = DebugByteAllocator::new("model", FirstFit::new(), config, Collect::default(), table, history, tick);
        // SAFETY: leaked host buffer.
        unsafe { heap.init(start, size).unwrap() };
        let mut live: BTreeMap<usize, (NonNull<u8>, Layout, u8)> = BTreeMap::new();
        let mut freed: Vec<(NonNull<u8>, Layout)> = Vec::new();
        for (step, op) in ops.into_iter().enumerate() {
            let reports_before = heap.sink().reports.len();
            match op {
                Op::Alloc { size, align_log } => {
                    let layout = Layout::from_size_align(size, 1 << align_log).unwrap();
                    if let Ok(ptr) = heap.alloc(layout) {
                        prop_assert_eq!(ptr.addr().get() % layout.align(), 0);
                        for (&other, &(_, other_layout, _)) in &live {
                            let disjoint = ptr.addr().get() + size <= other || other + other_layout.size() <= ptr.addr().get();
                            prop_assert!(disjoint, "overlap");
                        }
                        let fill = step as u8;
                        // SAFETY: fresh block of `size` bytes.
                        unsafe { ptr.as_ptr().write_bytes(fill, size) };
                        live.insert(ptr.addr().get(), (ptr, layout, fill));
                        freed.retain(|(p, _)| *p != ptr);
                    }
                }
                Op::Free { pick } if !live.is_empty() => {
                    let key = *live.keys().nth(pick % live.len()).unwrap();
                    let (ptr, layout, fill) = live.remove(&key).unwrap();
                    // SAFETY: live block.
                    let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), layout.size()) };
                    prop_assert!(bytes.iter().all(|&b| b == fill), "contents changed");
                    // SAFETY: live block of this layer.
                    prop_assert_eq!(unsafe { heap.dealloc(ptr, layout) }, Ok(()));
                    freed.push((ptr, layout));
                }
                Op::DoubleFree { pick } if !freed.is_empty() => {
                    let (ptr, layout) = freed[pick % freed.len()];
                    let used = heap.used_bytes();
                    // SAFETY: any pointer is accepted with debugging on.
                    let result = unsafe { heap.dealloc(ptr, layout) };
                    // Within the history window it is a double free; after
                    // it, an unknown address or one inside a newer block. Never accepted.
                    prop_assert!(matches!(result, Err(AllocError::DoubleFree) | Err(AllocError::NotAllocated)), "{:?}", result);
                    prop_assert_eq!(heap.used_bytes(), used);
                }
                Op::WrongSize { pick } if !live.is_empty() => {
                    let (ptr, layout, _) = *live.values().nth(pick % live.len()).unwrap();
                    let wrong = Layout::from_size_align(layout.size() + 1, layout.align()).unwrap();
                    let used = heap.used_bytes();
                    // SAFETY: any pointer is accepted with debugging on.
                    prop_assert_eq!(unsafe { heap.dealloc(ptr, wrong) }, Err(AllocError::NotAllocated));
                    prop_assert_eq!(heap.used_bytes(), used);
                }
                _ => {}
            }
            // Only bad frees and OOM produce reports; nothing is ever corrupted.
            for report in &heap.sink().reports[reports_before..] {
                let expected = matches!(report.kind, ReportKind::DoubleFree | ReportKind::UnknownFree | ReportKind::InteriorFree { .. }
                    | ReportKind::WrongLayout { .. } | ReportKind::OutOfMemory { .. });
                prop_assert!(expected, "unexpected report {}", report);
            }
            let counters = heap.counters();
            prop_assert_eq!(counters.live_blocks, live.len());
            prop_assert_eq!(counters.live_size, live.values().map(|(_, l, _)| l.size()).sum::<usize>());
        }
        prop_assert_eq!(heap.validate(), 0);
        for (_, (ptr, layout, _)) in std::mem::take(&mut live) {
            // SAFETY: live block of this layer.
            unsafe { heap.dealloc(ptr, layout).unwrap() };
        }
        heap.flush_quarantine();
        prop_assert_eq!(heap.inner().live_blocks(), 0);
        prop_assert_eq!(heap.used_bytes(), 0);
    }
}

#[test]
fn leak_watch_flags_sites_growing_across_checks() {
    let (start, size) = arena(256 * 1024);
    let (table, history) = tables(256, 8);
    let mut heap = DebugByteAllocator::new(
        "watch",
        FirstFit::new(),
        DebugConfig::bytes(DebugFlags::parse("leakcheck").unwrap()),
        Collect::default(),
        table,
        history,
        tick,
    );
    // SAFETY: leaked host buffer.
    unsafe { heap.init(start, size).unwrap() };
    let mut watch = LeakWatch::<8>::new();
    let mut flagged = Vec::new();
    let mut steady = None;
    for check in 0..5 {
        // One site leaks a block per period; another allocates and frees.
        heap.alloc(Layout::from_size_align(64, 8).unwrap()).unwrap();
        if let Some(ptr) = steady.take() {
            // SAFETY: live block of this layer.
            unsafe {
                heap.dealloc(ptr, Layout::from_size_align(32, 8).unwrap())
                    .unwrap()
            };
        }
        steady = Some(heap.alloc(Layout::from_size_align(32, 8).unwrap()).unwrap());
        let mut out = [SiteSummary::default(); 8];
        let (filled, _) = heap.outstanding_since(memdebug::Checkpoint::default(), &mut out);
        watch.observe(&out[..filled], 3, |summary, streak| {
            flagged.push((check, summary.size, streak))
        });
    }
    assert_eq!(flagged, vec![(3, 256, 3), (4, 320, 4)]);
}
