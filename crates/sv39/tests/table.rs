//! Page-table operations on host-backed frames: mapping at every size,
//! every error case leaving the tree unchanged, table freeing, walks,
//! iteration, `map_range` size choice and rollback.

mod common;

use common::{HostFrames, pa, va};
use sv39::{PageSize, PageTable, PagingError, PteFlags, VirtAddr, WalkEnd};

const RW: PteFlags = PteFlags::R.union(PteFlags::W);
const RX: PteFlags = PteFlags::R.union(PteFlags::X);
const GIB: usize = 1 << 30;
const MIB2: usize = 1 << 21;

fn table() -> PageTable<HostFrames> {
    PageTable::new(HostFrames::new()).unwrap()
}

#[test]
fn canonical_addresses_are_sign_extended_bit_38() {
    assert!(VirtAddr::new(0x3f_ffff_ffff).is_ok());
    assert!(VirtAddr::new(0xffff_ffc0_0000_0000).is_ok());
    assert_eq!(
        VirtAddr::new(0x40_0000_0000),
        Err(PagingError::NonCanonical { va: 0x40_0000_0000 })
    );
    assert!(VirtAddr::new(0x8000_0000_0000_0000).is_err());
    assert!(sv39::PhysAddr::new(1 << 56).is_err());
}

#[test]
fn maps_and_translates_all_three_sizes_with_a_and_d_set() {
    let mut pt = table();
    pt.map(va(0x1000), pa(0x8020_0000), PageSize::Size4K, RW)
        .unwrap();
    pt.map(
        va(0x4000_0000 + MIB2),
        pa(0x8040_0000),
        PageSize::Size2M,
        RX | PteFlags::G,
    )
    .unwrap();
    pt.map(
        va(0xffff_ffc0_0000_0000),
        pa(0x8000_0000),
        PageSize::Size1G,
        RW,
    )
    .unwrap();

    let t = pt.translate(va(0x1abc)).unwrap();
    assert_eq!((t.pa, t.size), (pa(0x8020_0abc), PageSize::Size4K));
    assert_eq!(t.flags, RW | PteFlags::V | PteFlags::A | PteFlags::D);
    let t = pt.translate(va(0x4000_0000 + MIB2 + 0x12345)).unwrap();
    assert_eq!((t.pa, t.size), (pa(0x8041_2345), PageSize::Size2M));
    assert!(t.flags.contains(PteFlags::G));
    let t = pt.translate(va(0xffff_ffc0_1234_5678)).unwrap();
    assert_eq!((t.pa, t.size), (pa(0x9234_5678), PageSize::Size1G));
    assert_eq!(
        pt.translate(va(0x2000)),
        Err(PagingError::NotMapped { va: 0x2000 })
    );
    // Root, plus a level-1 and a level-0 table for the 4K page, plus a
    // level-1 table for the 2M page (the 1G leaf lives in the root).
    assert_eq!(pt.frames().live(), 4);
}

#[test]
fn rejects_bad_input_without_changing_anything() {
    let mut pt = table();
    assert_eq!(
        pt.map(va(0x1000), pa(0x8000_0000), PageSize::Size2M, RW),
        Err(PagingError::Unaligned {
            addr: 0x1000,
            required: PageSize::Size2M
        })
    );
    assert_eq!(
        pt.map(va(0x20_0000), pa(0x8000_1000), PageSize::Size2M, RW),
        Err(PagingError::Unaligned {
            addr: 0x8000_1000,
            required: PageSize::Size2M
        })
    );
    let write_only = PteFlags::W;
    assert_eq!(
        pt.map(va(0x1000), pa(0x8000_0000), PageSize::Size4K, write_only),
        Err(PagingError::InvalidFlags {
            flags: write_only.bits()
        })
    );
    assert_eq!(
        pt.map(va(0x1000), pa(0x8000_0000), PageSize::Size4K, PteFlags::U),
        Err(PagingError::InvalidFlags {
            flags: PteFlags::U.bits()
        })
    );
    assert_eq!(pt.frames().live(), 1);
    assert_eq!(pt.mappings().count(), 0);
}

#[test]
fn refuses_to_map_over_existing_mappings_at_any_level() {
    let mut pt = table();
    pt.map(va(GIB), pa(0x8000_0000), PageSize::Size1G, RW)
        .unwrap();
    pt.map(va(0x1000), pa(0x8000_0000), PageSize::Size4K, RW)
        .unwrap();
    let before = pt.frames().live();
    // Small page under a huge page.
    assert_eq!(
        pt.map(va(GIB + 0x5000), pa(0x9000_0000), PageSize::Size4K, RW),
        Err(PagingError::AlreadyMapped {
            va: GIB + 0x5000,
            existing: PageSize::Size1G
        })
    );
    // Same slot twice.
    assert_eq!(
        pt.map(va(0x1000), pa(0x9000_0000), PageSize::Size4K, RW),
        Err(PagingError::AlreadyMapped {
            va: 0x1000,
            existing: PageSize::Size4K
        })
    );
    // Huge pages over tables holding smaller mappings.
    assert_eq!(
        pt.map(va(0), pa(0x8000_0000), PageSize::Size2M, RW),
        Err(PagingError::TableInTheWay { va: 0, level: 1 })
    );
    assert_eq!(
        pt.map(va(0), pa(0x8000_0000), PageSize::Size1G, RW),
        Err(PagingError::TableInTheWay { va: 0, level: 2 })
    );
    assert_eq!(pt.frames().live(), before);
    assert_eq!(pt.translate(va(0x1000)).unwrap().pa, pa(0x8000_0000));
}

#[test]
fn out_of_frames_leaves_nothing_half_built() {
    // Root plus one table: a 4K map needs two more tables.
    let mut pt = PageTable::new(HostFrames::with_capacity(2)).unwrap();
    assert_eq!(
        pt.map(va(0x1000), pa(0x8000_0000), PageSize::Size4K, RW),
        Err(PagingError::OutOfFrames)
    );
    assert_eq!(pt.frames().live(), 1);
    assert_eq!(pt.mappings().count(), 0);
    assert!(matches!(
        pt.walk(va(0x1000)).end,
        WalkEnd::Invalid { level: 2 }
    ));
    // A 2M map needs only one table and fits.
    pt.map(va(0x20_0000), pa(0x8000_0000), PageSize::Size2M, RW)
        .unwrap();
    let mut empty = PageTable::new(HostFrames::with_capacity(0));
    assert!(matches!(empty, Err(PagingError::OutOfFrames)));
    empty = PageTable::new(HostFrames::with_capacity(1));
    assert!(empty.is_ok());
}

#[test]
fn unmap_returns_the_page_and_frees_emptied_tables() {
    let mut pt = table();
    pt.map(va(0x1000), pa(0x8000_1000), PageSize::Size4K, RW)
        .unwrap();
    pt.map(va(0x2000), pa(0x8000_2000), PageSize::Size4K, RW)
        .unwrap();
    assert_eq!(pt.frames().live(), 3);
    let first = pt.unmap(va(0x1000)).unwrap();
    assert_eq!(
        (first.pa, first.size, first.tables_freed),
        (pa(0x8000_1000), PageSize::Size4K, 0)
    );
    let second = pt.unmap(va(0x2000)).unwrap();
    assert_eq!(second.tables_freed, 2);
    assert_eq!(pt.frames().live(), 1);
    assert_eq!(
        pt.unmap(va(0x2000)),
        Err(PagingError::NotMapped { va: 0x2000 })
    );
}

#[test]
fn unmap_and_protect_act_on_whole_leaves_only() {
    let mut pt = table();
    pt.map(va(0x20_0000), pa(0x8020_0000), PageSize::Size2M, RW)
        .unwrap();
    let inside = PagingError::InsideHugePage {
        va: 0x20_1000,
        size: PageSize::Size2M,
    };
    assert_eq!(pt.unmap(va(0x20_1000)), Err(inside));
    assert_eq!(pt.protect(va(0x20_1000), PteFlags::R), Err(inside));
    let previous = pt.protect(va(0x20_0000), PteFlags::R).unwrap();
    assert!(previous.flags.contains(PteFlags::W));
    let now = pt.translate(va(0x20_0042)).unwrap();
    assert!(!now.flags.contains(PteFlags::W));
    assert_eq!(now.pa, pa(0x8020_0042));
    assert_eq!(
        pt.protect(va(0x20_0000), PteFlags::W | PteFlags::X),
        Err(PagingError::InvalidFlags {
            flags: (PteFlags::W | PteFlags::X).bits()
        })
    );
}

#[test]
fn walk_shows_every_level() {
    let mut pt = table();
    let addr = 0xffff_ffff_c020_3456;
    pt.map(va(addr & !0xfff), pa(0x8765_4000), PageSize::Size4K, RX)
        .unwrap();
    let walk = pt.walk(va(addr));
    let steps: Vec<_> = walk
        .steps()
        .map(|s| (s.level, s.index, s.entry.is_table()))
        .collect();
    assert_eq!(steps, [(2, 511, true), (1, 1, true), (0, 3, false)]);
    match walk.end {
        WalkEnd::Leaf(t) => assert_eq!(t.pa, pa(0x8765_4456)),
        other => panic!("{other:?}"),
    }
    let miss = pt.walk(va(0x1234));
    assert_eq!(miss.steps().count(), 1);
    assert_eq!(miss.end, WalkEnd::Invalid { level: 2 });
}

#[test]
fn mappings_lists_every_leaf_with_its_virtual_address() {
    let mut pt = table();
    pt.map(
        va(0xffff_ffc0_0000_0000),
        pa(0x8000_0000),
        PageSize::Size1G,
        RW,
    )
    .unwrap();
    pt.map(va(0x4000_0000), pa(0x8000_0000), PageSize::Size2M, RX)
        .unwrap();
    pt.map(va(0x3000), pa(0x8000_3000), PageSize::Size4K, RW)
        .unwrap();
    let found: Vec<_> = pt
        .mappings()
        .map(|m| (m.va.as_usize(), m.pa.as_usize(), m.size))
        .collect();
    assert_eq!(
        found,
        [
            (0x3000, 0x8000_3000, PageSize::Size4K),
            (0x4000_0000, 0x8000_0000, PageSize::Size2M),
            (0xffff_ffc0_0000_0000, 0x8000_0000, PageSize::Size1G),
        ]
    );
}

#[test]
fn map_range_uses_the_largest_aligned_pages() {
    let mut pt = table();
    // 4K head, 2M pages up to the 1G boundary, one 1G page, 2M + 4K tail.
    let start = GIB - 2 * MIB2 - 0x1000;
    let len = 0x1000 + 2 * MIB2 + GIB + MIB2 + 0x1000;
    let stats = pt
        .map_range(va(start), pa(0x8000_0000 + start), len, RW)
        .unwrap();
    assert_eq!((stats.pages_4k, stats.pages_2m, stats.pages_1g), (2, 3, 1));
    assert_eq!(pt.mappings().count(), 6);
    assert_eq!(pt.translate(va(GIB + 5)).unwrap().size, PageSize::Size1G);
    // Misaligned physical side: only 4K pages fit.
    let mut small = table();
    // (2 MiB on the host; 32 KiB under Miri, where each page costs a lot.
    // Either way `va` alone would allow a 2M page.)
    let len = if cfg!(miri) { 0x8000 } else { MIB2 };
    let stats = small.map_range(va(0), pa(0x8000_1000), len, RW).unwrap();
    assert_eq!((stats.pages_4k, stats.pages_2m), (len / 0x1000, 0));
    assert_eq!(small.unmap_range(va(0), len), Ok(len / 0x1000));
    assert_eq!(small.frames().live(), 1);
}

#[test]
fn map_range_rolls_back_completely() {
    let mut pt = table();
    pt.map(va(0x5000), pa(0x9000_0000), PageSize::Size4K, RW)
        .unwrap();
    let live = pt.frames().live();
    // Collides at its sixth page.
    assert_eq!(
        pt.map_range(va(0), pa(0x8000_0000), 0x10000, RW),
        Err(PagingError::AlreadyMapped {
            va: 0x5000,
            existing: PageSize::Size4K
        })
    );
    assert_eq!(pt.mappings().count(), 1);
    assert_eq!(pt.frames().live(), live);
    // Running dry half-way: 4K pages only (pa misaligned), and the range
    // crosses into a second level-0 table after four pages.
    let mut dry = PageTable::new(HostFrames::with_capacity(3)).unwrap();
    assert_eq!(
        dry.map_range(va(MIB2 - 0x4000), pa(0x8000_1000), 0x8000, RW),
        Err(PagingError::OutOfFrames)
    );
    assert_eq!(dry.mappings().count(), 0);
    assert_eq!(dry.frames().live(), 1);
    assert!(matches!(
        pt.map_range(va(0), pa(0), 0, RW),
        Err(PagingError::BadRange { .. })
    ));
    assert!(matches!(
        pt.map_range(va(0x3f_ffff_f000), pa(0), 0x2000, RW),
        Err(PagingError::BadRange { .. })
    ));
}

#[test]
fn unmap_range_refuses_to_split_a_huge_page() {
    let mut pt = table();
    pt.map(va(0x20_0000), pa(0x8020_0000), PageSize::Size2M, RW)
        .unwrap();
    assert_eq!(
        pt.unmap_range(va(0x20_1000), 0x1000),
        Err(PagingError::InsideHugePage {
            va: 0x20_1000,
            size: PageSize::Size2M
        })
    );
    assert_eq!(pt.unmap_range(va(0), 4 * MIB2), Ok(1));
}

#[test]
fn dropping_the_table_frees_every_table_frame() {
    let mut pt = table();
    pt.map_range(va(0x7000), pa(0x8000_7000), 3 * MIB2, RW)
        .unwrap();
    pt.map(
        va(0xffff_ffff_fff0_0000),
        pa(0x8000_0000),
        PageSize::Size4K,
        RW,
    )
    .unwrap();
    let (root, frames) = pt.into_parts();
    assert!(frames.live() > 1);
    // SAFETY: the parts come straight from `into_parts`.
    let pt = unsafe { PageTable::from_root(root, frames) };
    assert_eq!(pt.satp(3) >> 60, 8);
    assert_eq!(pt.satp(3) & ((1 << 44) - 1), root.ppn());
    let live = pt.frames().live_counter();
    drop(pt); // HostFrames panics on a double free.
    assert_eq!(live.get(), 0);
}
