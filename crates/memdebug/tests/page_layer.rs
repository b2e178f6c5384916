//! The page debug layer: per-block state, refused bad frees, page poison.

mod support;

use kalloc::{AllocError, BaseAllocator, PageAllocator};
use memdebug::{
    Action, DebugConfig, DebugFlags, DebugPageAllocator, PAGE_FREE_POISON, ReportKind, SiteSummary,
    Unit,
};
use support::{Collect, FirstFit, arena, tables, tick};

const PAGE: usize = 4096;
type Layer = DebugPageAllocator<'static, FirstFit, Collect>;

fn layer(flags: &str) -> (Layer, usize) {
    let (start, size) = arena(64 * PAGE);
    let (table, history) = tables(256, 16);
    let config = DebugConfig::pages(DebugFlags::parse(flags).unwrap());
    let mut pages = DebugPageAllocator::new(
        "pages",
        FirstFit::new(),
        config,
        Collect::default(),
        table,
        history,
        tick,
    );
    // SAFETY: the arena is a leaked host buffer owned by this layer.
    unsafe { pages.init(start, size).unwrap() };
    (pages, start)
}

#[test]
fn bad_page_frees_are_refused_and_change_nothing() {
    let (mut pages, start) = layer("poison,track");
    let block = pages.alloc_pages(4, PAGE).unwrap();
    let used = pages.used_pages();
    let cases = [
        (block, 3, AllocError::NotAllocated),
        (block + PAGE, 1, AllocError::NotAllocated),
        (start + 60 * PAGE, 1, AllocError::NotAllocated),
        (start + 64 * PAGE, 1, AllocError::OutOfRange),
        (start - PAGE, 1, AllocError::OutOfRange),
    ];
    for (addr, count, expected) in cases {
        assert_eq!(
            pages.dealloc_pages(addr, count),
            Err(expected),
            "free of {addr:#x} x{count}"
        );
        assert_eq!(pages.used_pages(), used);
    }
    let kinds: Vec<_> = pages.sink().reports.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds[0],
        ReportKind::WrongLayout {
            size: 3,
            align: PAGE
        }
    );
    assert_eq!(kinds[1], ReportKind::InteriorFree { offset: PAGE });
    assert_eq!(kinds[2], ReportKind::UnknownFree);
    assert_eq!(kinds[3], ReportKind::OutOfRange);
    assert!(
        pages
            .sink()
            .reports
            .iter()
            .all(|r| r.action == Action::Refused)
    );
    assert_eq!(
        pages.block_containing(block + 3 * PAGE).map(|b| b.size),
        Some(4)
    );
    pages.dealloc_pages(block, 4).unwrap();
    assert_eq!(pages.block_containing(block), None);
    assert_eq!(pages.dealloc_pages(block, 4), Err(AllocError::DoubleFree));
    let text = pages.sink().texts.last().unwrap().clone();
    assert!(
        text.contains("double free") && text.contains("page_layer.rs"),
        "{text}"
    );
    assert!(text.contains(", size 4 pages, align 4096,"), "{text}");
    let wrong = &pages.sink().texts[0];
    assert!(wrong.contains("freed as 3 pages (align 4096)"), "{wrong}");
}

#[test]
fn write_to_a_freed_page_is_reported() {
    let (mut pages, _) = layer("poison");
    let block = pages.alloc_pages(2, PAGE).unwrap();
    pages.dealloc_pages(block, 2).unwrap();
    // SAFETY: the quarantined pages are still host memory; deliberately scribbling on them.
    unsafe { std::ptr::with_exposed_provenance_mut::<u8>(block + PAGE + 5).write(1) };
    assert_eq!(pages.validate(), 1);
    // The report restored the poison: leaving quarantine finds nothing new.
    pages.flush_quarantine();
    assert_eq!(pages.sink().reports.len(), 1);
    let report = pages.sink().reports[0];
    match report.kind {
        ReportKind::WriteAfterFree {
            offset,
            expected,
            found,
        } => {
            assert_eq!((offset, expected), (PAGE + 5, PAGE_FREE_POISON));
            assert_eq!(found.as_slice()[0], 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(pages.used_pages(), 0);
    assert_eq!(pages.inner().used_pages(), 0);
}

#[test]
fn quarantine_is_invisible_in_the_counts_and_flushed_on_exhaustion() {
    let (mut pages, _) = layer("poison");
    let all = pages.alloc_pages(64, PAGE).unwrap();
    pages.dealloc_pages(all, 64).unwrap();
    assert_eq!(pages.used_pages(), 0);
    assert_eq!(pages.available_pages(), 64);
    // 64 pages are held (at the limit), yet the next request succeeds.
    assert_eq!(pages.alloc_pages(64, PAGE), Ok(all));
}

#[test]
fn out_of_memory_is_reported_in_pages() {
    let (mut pages, _) = layer("poison");
    let held = pages.alloc_pages(60, PAGE).unwrap();
    assert_eq!(pages.alloc_pages(8, PAGE), Err(AllocError::NoMemory));
    let report = pages.sink().reports[0];
    assert_eq!(
        report.kind,
        ReportKind::OutOfMemory {
            size: 8,
            align: PAGE,
            used: 60,
            available: 4,
        }
    );
    assert_eq!((report.unit, report.action), (Unit::Pages, Action::Failed));
    let text = format!("{report}");
    assert!(
        text.contains("request of 8 pages (align 4096) failed; 60 pages in use, 4 available"),
        "{text}"
    );
    pages.dealloc_pages(held, 60).unwrap();
}

#[test]
fn leak_summary_counts_pages_by_site() {
    let (mut pages, _) = layer("track");
    let checkpoint = pages.checkpoint();
    let a = pages.alloc_pages(3, PAGE).unwrap();
    let _b = pages.alloc_pages_at(a + 8 * PAGE, 2, PAGE).unwrap();
    pages.dealloc_pages(a, 3).unwrap();
    let mut out = [SiteSummary::default(); 2];
    assert_eq!(pages.outstanding_since(checkpoint, &mut out), (1, 0));
    assert_eq!((out[0].count, out[0].size), (1, 2));
}

#[test]
fn off_forwards_the_inner_errors() {
    let (mut pages, _) = layer("off");
    let block = pages.alloc_pages(1, PAGE).unwrap();
    pages.dealloc_pages(block, 1).unwrap();
    assert_eq!(pages.dealloc_pages(block, 1), Err(AllocError::NotAllocated));
    assert_eq!(pages.counters().refused_frees, 1);
    assert!(pages.sink().reports.is_empty());
}
