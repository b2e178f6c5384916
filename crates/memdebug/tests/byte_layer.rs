//! The byte debug layer provokes each error and checks the report's content
//! and that the refused operation changed nothing.

mod support;

use std::alloc::Layout;
use std::ptr::NonNull;

use kalloc::{AllocError, BaseAllocator, ByteAllocator};
use memdebug::{
    Action, CallSite, DebugByteAllocator, DebugConfig, DebugFlags, FREE_POISON, ReportKind, Side,
    SiteSummary, Unit,
};
use support::{Collect, FirstFit, arena, tables, tick};

type Layer = DebugByteAllocator<'static, FirstFit, Collect>;

fn layer(flags: &str) -> (Layer, usize) {
    let (start, size) = arena(1 << 20);
    let (table, history) = tables(1024, 64);
    let config = DebugConfig::bytes(DebugFlags::parse(flags).unwrap());
    let mut layer = DebugByteAllocator::new(
        "test",
        FirstFit::new(),
        config,
        Collect::default(),
        table,
        history,
        tick,
    );
    // SAFETY: the arena is a leaked host buffer owned by this layer.
    unsafe { layer.init(start, size).unwrap() };
    (layer, start)
}

fn lay(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// The state a refused operation must leave unchanged.
fn snapshot(layer: &Layer) -> (memdebug::Counters, usize, usize, usize) {
    let mut c = layer.counters();
    c.refused_frees = 0;
    (
        c,
        layer.used_bytes(),
        layer.available_bytes(),
        layer.inner().live_blocks(),
    )
}

#[test]
fn double_free_is_refused_with_both_call_sites() {
    let (mut heap, _) = layer("poison,redzone,track");
    let ptr = heap.alloc(lay(48, 8)).unwrap();
    let alloc_line = line!() - 1;
    // SAFETY: `ptr` is a live block of this layer.
    unsafe { heap.dealloc(ptr, lay(48, 8)).unwrap() };
    let free_line = line!() - 1;
    let before = snapshot(&heap);
    // SAFETY: the layer accepts any pointer with debugging on.
    let err = unsafe { heap.dealloc(ptr, lay(48, 8)) };
    let second_line = line!() - 1;
    assert_eq!(err, Err(AllocError::DoubleFree));
    assert_eq!(snapshot(&heap), before);
    let report = heap.sink().reports.last().copied().unwrap();
    assert_eq!(report.kind, ReportKind::DoubleFree);
    assert_eq!(report.addr, ptr.addr().get());
    assert_eq!(report.action, Action::Refused);
    let block = report.block.unwrap();
    assert_eq!((block.size, block.align), (48, 8));
    let line = |site: CallSite| match site {
        CallSite::Source(loc) => loc.line(),
        other => panic!("expected a source location, got {other}"),
    };
    assert_eq!(line(block.alloc_site), alloc_line);
    assert_eq!(line(block.free_site), free_line);
    assert_eq!(line(report.site), second_line);
    let text = heap.sink().texts.last().unwrap().clone();
    assert!(text.contains("double free of"), "{text}");
    assert!(text.contains(", size 48 bytes, align 8,"), "{text}");
    assert!(
        text.contains(&format!("byte_layer.rs:{alloc_line}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("byte_layer.rs:{free_line}:")),
        "{text}"
    );
    assert!(text.contains("refused, allocator unchanged"), "{text}");
}

#[test]
fn double_free_is_caught_without_poisoning_too() {
    let (mut heap, _) = layer("track");
    let ptr = heap.alloc(lay(32, 8)).unwrap();
    // SAFETY: live block of this layer, then a deliberate double free.
    unsafe {
        heap.dealloc(ptr, lay(32, 8)).unwrap();
        assert_eq!(heap.dealloc(ptr, lay(32, 8)), Err(AllocError::DoubleFree));
    }
}

#[test]
fn foreign_interior_unknown_and_wrong_layout_frees_are_refused() {
    let (mut heap, start) = layer("redzone,track");
    let ptr = heap.alloc(lay(100, 16)).unwrap();
    let before = snapshot(&heap);
    let mut outside = 0u64;
    let cases: [(NonNull<u8>, Layout, AllocError); 5] = [
        (
            NonNull::from(&mut outside).cast(),
            lay(8, 8),
            AllocError::OutOfRange,
        ),
        (
            ptr.map_addr(|a| a.saturating_add(10)),
            lay(90, 1),
            AllocError::NotAllocated,
        ),
        (
            NonNull::new(std::ptr::with_exposed_provenance_mut(start + 900_000)).unwrap(),
            lay(8, 8),
            AllocError::NotAllocated,
        ),
        (ptr, lay(101, 16), AllocError::NotAllocated),
        (ptr, lay(100, 8), AllocError::NotAllocated),
    ];
    for (bad, layout, expected) in cases {
        // SAFETY: the layer accepts any pointer with debugging on.
        assert_eq!(unsafe { heap.dealloc(bad, layout) }, Err(expected));
        assert_eq!(
            snapshot(&heap),
            before,
            "refused free of {bad:p} changed state"
        );
    }
    let kinds: Vec<_> = heap.sink().reports.iter().map(|r| r.kind).collect();
    assert_eq!(kinds[0], ReportKind::OutOfRange);
    assert_eq!(kinds[1], ReportKind::InteriorFree { offset: 10 });
    assert_eq!(kinds[2], ReportKind::UnknownFree);
    assert_eq!(
        kinds[3],
        ReportKind::WrongLayout {
            size: 101,
            align: 16
        }
    );
    assert_eq!(
        kinds[4],
        ReportKind::WrongLayout {
            size: 100,
            align: 8
        }
    );
    assert!(heap.sink().texts[1].contains("offset +0xa inside a live block"));
    // The real free still works afterwards.
    // SAFETY: live block of this layer.
    unsafe { heap.dealloc(ptr, lay(100, 16)).unwrap() };
    assert_eq!(heap.counters().live_blocks, 0);
}

#[test]
fn write_after_free_is_reported_with_offset_and_bytes() {
    for offset in [0usize, 7, 8, 63] {
        let (mut heap, _) = layer("poison,track");
        let ptr = heap.alloc(lay(64, 8)).unwrap();
        // SAFETY: live block of this layer.
        unsafe { heap.dealloc(ptr, lay(64, 8)).unwrap() };
        // SAFETY: deliberately writing into the quarantined (still mapped) block.
        unsafe { ptr.as_ptr().add(offset).write(0x42) };
        assert_eq!(heap.validate(), 1);
        let report = heap.sink().reports.last().copied().unwrap();
        let ReportKind::WriteAfterFree {
            offset: found_at,
            expected,
            found,
        } = report.kind
        else {
            panic!("unexpected report {report:?}");
        };
        assert_eq!((found_at, expected), (offset, FREE_POISON));
        assert_eq!(found.as_slice()[0], 0x42);
        assert!(
            heap.sink()
                .texts
                .last()
                .unwrap()
                .contains(&format!("offset +{offset:#x}"))
        );
        // The report restored the poison: the same write is not reported
        // again, not by a second walk, nor when the block leaves quarantine.
        assert_eq!(heap.validate(), 0);
        let reports = heap.sink().reports.len();
        heap.flush_quarantine();
        assert_eq!(heap.sink().reports.len(), reports);
        assert_eq!(heap.inner().live_blocks(), 0);
    }
}

#[test]
fn overflow_and_underflow_by_one_byte() {
    let (mut heap, _) = layer("redzone,track");
    let ptr = heap.alloc(lay(24, 8)).unwrap();
    // SAFETY: deliberately writing one byte past each end, into the red zones.
    unsafe {
        ptr.as_ptr().add(24).write(0);
        ptr.as_ptr().sub(1).write(0);
    }
    assert_eq!(heap.validate(), 1);
    let reports = &heap.sink().reports;
    assert_eq!(reports.len(), 2);
    match (reports[0].kind, reports[1].kind) {
        (
            ReportKind::RedZone {
                side: Side::Front,
                offset: -1,
                ..
            },
            ReportKind::RedZone {
                side: Side::Rear,
                offset: 24,
                ..
            },
        ) => {}
        other => panic!("unexpected reports {other:?}"),
    }
    assert!(heap.sink().texts[0].contains("buffer underflow"));
    assert!(
        heap.sink().texts[1].contains("buffer overflow")
            && heap.sink().texts[1].contains("offset +24")
    );
    // Repaired: the free finds clean zones.
    // SAFETY: live block of this layer.
    unsafe { heap.dealloc(ptr, lay(24, 8)).unwrap() };
    assert_eq!(heap.sink().reports.len(), 2);
}

#[test]
fn overflow_is_caught_on_free() {
    let (mut heap, _) = layer("redzone");
    let ptr = heap.alloc(lay(10, 1)).unwrap();
    // SAFETY: deliberately one byte past the end, inside the red zone.
    unsafe { ptr.as_ptr().add(10).write(7) };
    // SAFETY: live block of this layer.
    unsafe { heap.dealloc(ptr, lay(10, 1)).unwrap() };
    let report = heap.sink().reports[0];
    assert_eq!(report.action, Action::Repaired);
    assert!(matches!(
        report.kind,
        ReportKind::RedZone {
            side: Side::Rear,
            offset: 10,
            ..
        }
    ));
}

#[test]
fn leak_checkpoint_names_the_leaking_site() {
    let (mut heap, _) = layer("track");
    let early = heap.alloc(lay(16, 8)).unwrap();
    let checkpoint = heap.checkpoint();
    let mut leaked = Vec::new();
    for _ in 0..3 {
        leaked.push(heap.alloc(lay(200, 8)).unwrap());
    }
    let leak_line = line!() - 2;
    let freed = heap.alloc(lay(50, 8)).unwrap();
    // SAFETY: live block of this layer.
    unsafe { heap.dealloc(freed, lay(50, 8)).unwrap() };
    let mut out = [SiteSummary::default(); 4];
    let (filled, dropped) = heap.outstanding_since(checkpoint, &mut out);
    assert_eq!((filled, dropped), (1, 0));
    assert_eq!((out[0].count, out[0].size), (3, 600));
    assert!(matches!(out[0].site, CallSite::Source(loc) if loc.line() == leak_line));
    let _ = early;
}

#[test]
fn out_of_memory_is_reported_and_recoverable() {
    let (mut heap, _) = layer("poison,track");
    assert_eq!(heap.alloc(lay(2 << 20, 8)), Err(AllocError::NoMemory));
    let report = heap.sink().reports[0];
    assert!(matches!(
        report.kind,
        ReportKind::OutOfMemory {
            size: 2097152,
            align: 8,
            ..
        }
    ));
    assert_eq!(report.unit, Unit::Bytes);
    assert_eq!(report.action, Action::Failed);
    let text = format!("{report}");
    assert!(
        text.contains("request of 2097152 bytes (align 8) failed"),
        "{text}"
    );
    assert_eq!(heap.counters().failures, 1);
    assert!(heap.alloc(lay(64, 8)).is_ok());
}

#[test]
fn quarantined_memory_is_reclaimed_when_the_heap_runs_dry() {
    let (mut heap, _) = layer("poison");
    let big = heap.alloc(lay(200_000, 8)).unwrap();
    // SAFETY: live block of this layer.
    unsafe { heap.dealloc(big, lay(200_000, 8)).unwrap() };
    // Held in quarantine (under the 256 KiB limit)...
    assert!(heap.inner().live_blocks() == 1);
    // ...but a request that needs it flushes the quarantine first.
    assert!(heap.alloc(lay(900_000, 8)).is_ok());
}

#[test]
fn off_only_forwards_and_counts() {
    let (mut heap, _) = layer("off");
    let ptr = heap.alloc(lay(40, 8)).unwrap();
    assert_eq!(heap.used_bytes(), 40);
    assert_eq!(heap.counters().live_size, 40);
    // SAFETY: live block of this layer.
    unsafe { heap.dealloc(ptr, lay(40, 8)).unwrap() };
    assert_eq!(heap.counters().frees, 1);
    assert!(heap.sink().reports.is_empty());
}

#[test]
fn realloc_moves_and_keeps_contents() {
    let (mut heap, _) = layer("poison,redzone,track");
    let ptr = heap.alloc(lay(16, 8)).unwrap();
    // SAFETY: live 16-byte block.
    unsafe { ptr.as_ptr().copy_from(b"0123456789abcdef".as_ptr(), 16) };
    // SAFETY: live block of this layer.
    let grown = unsafe { heap.realloc(ptr, lay(16, 8), 64).unwrap() };
    assert_ne!(grown, ptr);
    // SAFETY: the new block holds at least 16 bytes.
    let moved = unsafe { std::slice::from_raw_parts(grown.as_ptr(), 16) };
    assert_eq!(moved, b"0123456789abcdef");
    // The old block is freed: realloc of it again is a double free.
    // SAFETY: the layer accepts any pointer with debugging on.
    let again = unsafe { heap.realloc(ptr, lay(16, 8), 8) };
    assert_eq!(again, Err(AllocError::DoubleFree));
    assert!(
        heap.sink()
            .reports
            .iter()
            .all(|r| r.kind == ReportKind::DoubleFree)
    );
}

#[test]
fn table_full_refuses_instead_of_losing_track() {
    let (start, size) = arena(1 << 20);
    let (table, history) = tables(16, 4);
    let config = DebugConfig::bytes(DebugFlags::TRACK);
    let mut heap = DebugByteAllocator::new(
        "small",
        FirstFit::new(),
        config,
        Collect::default(),
        table,
        history,
        tick,
    );
    // SAFETY: leaked host buffer.
    unsafe { heap.init(start, size).unwrap() };
    let capacity = heap.capacity();
    for _ in 0..capacity {
        heap.alloc(lay(8, 8)).unwrap();
    }
    assert_eq!(heap.alloc(lay(8, 8)), Err(AllocError::NoMemory));
    assert_eq!(
        heap.sink().reports[0].kind,
        ReportKind::TableFull { capacity }
    );
}

#[test]
fn realloc_with_checks_off_keeps_the_counters_of_the_new_size() {
    let (mut heap, _) = layer("off");
    let ptr = heap.alloc(lay(16, 8)).unwrap();
    // SAFETY: a live block of this layer.
    let moved = unsafe { heap.realloc(ptr, lay(16, 8), 4000) }.unwrap();
    let counters = heap.counters();
    assert_eq!((counters.live_blocks, counters.live_size), (1, 4000));
    // SAFETY: the live block, with the layout realloc gave it.
    unsafe { heap.dealloc(moved, lay(4000, 8)) }.unwrap();
    let counters = heap.counters();
    assert_eq!((counters.live_blocks, counters.live_size), (0, 0));
}
