//! Host tests: hand-written layouts for the edge cases the boot path meets
//! (overlaps, adjacency, unaligned edges, nothing left), and a property test
//! against a byte-map model.

use super::*;
use proptest::prelude::*;
use std::vec::Vec;

const PAGE: u64 = 4096;

fn r(start: u64, end: u64) -> PhysRange {
    PhysRange::new(start, end).unwrap()
}

fn free<const N: usize>(ram: &[PhysRange], reserved: &[PhysRange]) -> Vec<PhysRange> {
    let set: RangeSet<N> = free_ranges(ram, reserved, PAGE).unwrap();
    set.assert_invariant();
    set.as_slice().to_vec()
}

#[test]
fn qemu_like_layout_leaves_the_gaps() {
    let ram = [r(0x8000_0000, 0x8800_0000)];
    let reserved = [
        r(0x8000_0000, 0x8004_0000), // firmware
        r(0x8020_0000, 0x8024_3000), // kernel image
        r(0x87e0_0000, 0x87e0_1a2b), // device tree, unaligned end
    ];
    assert_eq!(
        free::<8>(&ram, &reserved),
        [
            r(0x8004_0000, 0x8020_0000),
            r(0x8024_3000, 0x87e0_0000),
            r(0x87e0_2000, 0x8800_0000)
        ]
    );
}

#[test]
fn overlapping_reservations_are_removed_once() {
    let ram = [r(0, 0x10_0000)];
    let reserved = [r(0x1000, 0x5000), r(0x3000, 0x8000), r(0x2000, 0x4000)];
    assert_eq!(
        free::<4>(&ram, &reserved),
        [r(0, 0x1000), r(0x8000, 0x10_0000)]
    );
}

#[test]
fn reservation_spanning_two_ram_regions_cuts_both() {
    let ram = [r(0, 0x4000), r(0x8000, 0xc000)];
    let reserved = [r(0x3000, 0x9000)];
    assert_eq!(
        free::<4>(&ram, &reserved),
        [r(0, 0x3000), r(0x9000, 0xc000)]
    );
}

#[test]
fn adjacent_and_overlapping_ram_regions_merge() {
    let ram = [r(0x4000, 0x8000), r(0, 0x4000), r(0x6000, 0x9000)];
    assert_eq!(free::<4>(&ram, &[]), [r(0, 0x9000)]);
}

#[test]
fn adjacent_reservations_leave_no_sliver() {
    let ram = [r(0, 0x10000)];
    let reserved = [r(0x2000, 0x3000), r(0x3000, 0x4000)];
    assert_eq!(
        free::<4>(&ram, &reserved),
        [r(0, 0x2000), r(0x4000, 0x10000)]
    );
}

#[test]
fn unaligned_edges_shrink_inward_and_slivers_vanish() {
    let ram = [r(0x0123, 0x5432)];
    let reserved = [r(0x2100, 0x2200)];
    // 0x123..0x2100 -> 0x1000..0x2000; 0x2200..0x5432 -> 0x3000..0x5000.
    assert_eq!(
        free::<4>(&ram, &reserved),
        [r(0x1000, 0x2000), r(0x3000, 0x5000)]
    );
    // A free piece smaller than a page disappears entirely.
    assert_eq!(free::<4>(&[r(0x1800, 0x2800)], &[]), []);
}

#[test]
fn everything_reserved_gives_an_empty_result() {
    let ram = [r(0x1000, 0x9000)];
    assert_eq!(free::<4>(&ram, &[r(0, 0x10000)]), []);
    assert_eq!(free::<4>(&ram, &[r(0x1000, 0x5000), r(0x5000, 0x9000)]), []);
    assert_eq!(free::<4>(&[], &[r(0, 0x1000)]), []);
}

#[test]
fn reservations_outside_ram_change_nothing() {
    let ram = [r(0x8000_0000, 0x8010_0000)];
    let reserved = [
        r(0, 0x1000),
        r(0x9000_0000, 0x9000_1000),
        r(0x7fff_f000, 0x8000_0000),
    ];
    assert_eq!(free::<4>(&ram, &reserved), ram);
}

#[test]
fn empty_ranges_are_ignored() {
    let ram = [r(0, 0x4000), r(0x9000, 0x9000)];
    assert_eq!(free::<4>(&ram, &[r(0x2000, 0x2000)]), [r(0, 0x4000)]);
}

#[test]
fn full_set_reports_capacity_and_stays_unchanged() {
    let mut set = RangeSet::<2>::new();
    set.insert(r(0, 0x1000)).unwrap();
    set.insert(r(0x4000, 0x5000)).unwrap();
    let before = set;
    assert_eq!(
        set.insert(r(0x8000, 0x9000)),
        Err(LayoutError::CapacityExceeded { capacity: 2 })
    );
    assert_eq!(set, before);
    // Splitting a range needs a slot too.
    assert_eq!(
        set.remove(r(0x4400, 0x4800)),
        Err(LayoutError::CapacityExceeded { capacity: 2 })
    );
    assert_eq!(set, before);
    // Merging into an existing range needs none.
    set.insert(r(0x1000, 0x4000)).unwrap();
    assert_eq!(set.as_slice(), [r(0, 0x5000)]);
}

#[test]
fn constructors_reject_bad_ranges() {
    assert_eq!(
        PhysRange::new(5, 4),
        Err(LayoutError::Inverted { start: 5, end: 4 })
    );
    assert_eq!(
        PhysRange::from_base_size(u64::MAX - 1, 2),
        Err(LayoutError::Overflow {
            base: u64::MAX - 1,
            size: 2
        })
    );
    assert_eq!(
        PhysRange::from_base_size(u64::MAX - 1, 1),
        Ok(r(u64::MAX - 1, u64::MAX))
    );
    assert_eq!(
        free_ranges::<4>(&[], &[], 3),
        Err(LayoutError::BadAlignment { align: 3 })
    );
    assert_eq!(
        free_ranges::<4>(&[], &[], 0),
        Err(LayoutError::BadAlignment { align: 0 })
    );
}

#[test]
fn alignment_near_the_top_of_the_address_space_does_not_overflow() {
    let top = r(u64::MAX - 0x1800, u64::MAX);
    assert_eq!(free::<2>(&[top], &[]), []);
}

#[test]
fn queries_answer_by_address() {
    let set: RangeSet<4> = free_ranges(&[r(0, 0x2000), r(0x4000, 0x6000)], &[], PAGE).unwrap();
    assert!(set.contains(0) && set.contains(0x1fff) && set.contains(0x4000));
    assert!(!set.contains(0x2000) && !set.contains(0x6000));
    assert!(set.overlaps(r(0x1fff, 0x2001)));
    assert!(!set.overlaps(r(0x2000, 0x4000)));
    assert_eq!(set.total_size(), 0x4000);
}

/// Model: the same computation on a map of `SPACE` addresses.
fn model(ram: &[PhysRange], reserved: &[PhysRange], align: u64) -> Vec<PhysRange> {
    const SPACE: usize = 512;
    let mut map = [false; SPACE];
    for range in ram {
        map[range.start() as usize..range.end() as usize].fill(true);
    }
    for range in reserved {
        map[range.start() as usize..range.end() as usize].fill(false);
    }
    let mut out = Vec::new();
    let mut addr = 0;
    while addr < SPACE {
        if !map[addr] {
            addr += 1;
            continue;
        }
        let start = addr;
        while addr < SPACE && map[addr] {
            addr += 1;
        }
        let aligned_start = (start as u64).div_ceil(align) * align;
        let aligned_end = addr as u64 / align * align;
        if aligned_start < aligned_end {
            out.push(r(aligned_start, aligned_end));
        }
    }
    out
}

fn small_range() -> impl Strategy<Value = PhysRange> {
    (0u64..512, 0u64..128).prop_map(|(start, len)| r(start, (start + len).min(512)))
}

fn cases() -> u32 {
    if cfg!(miri) { 8 } else { 512 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_byte_map_model(
        ram in proptest::collection::vec(small_range(), 0..6),
        reserved in proptest::collection::vec(small_range(), 0..8),
        align_log in 0u32..5,
    ) {
        let align = 1u64 << align_log;
        let set: RangeSet<32> = free_ranges(&ram, &reserved, align).unwrap();
        set.assert_invariant();
        prop_assert_eq!(set.as_slice().to_vec(), model(&ram, &reserved, align));
    }
}
