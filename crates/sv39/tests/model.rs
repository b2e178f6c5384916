//! Property test: random map/unmap/protect sequences against a model (a
//! map from page start to `(pa, size, flags)`). After every step every
//! probe address translates as the model says, the leaf iterator lists
//! exactly the model, and the number of live table frames is exactly what
//! the model's mappings need (so emptied tables were freed); when
//! everything is unmapped only the root remains.

mod common;

use std::collections::BTreeMap;

use common::{HostFrames, pa, va};
use proptest::prelude::*;
use sv39::{PageSize, PageTable, PagingError, PteFlags};

/// The four 1 GiB regions the test plays in (the last one in the upper,
/// sign-extended half).
const GIB_SLOTS: [usize; 4] = [0, 1, 2, 511];

fn region_va(gib_slot: usize, mib: usize, page: usize) -> usize {
    let low39 = (GIB_SLOTS[gib_slot] << 30) | (mib << 21) | (page << 12);
    (((low39 << 25) as isize) >> 25) as usize
}

#[derive(Clone, Debug)]
enum Op {
    Map {
        va: usize,
        size: PageSize,
        frame: usize,
        flags: PteFlags,
    },
    Unmap {
        va: usize,
    },
    Protect {
        va: usize,
        flags: PteFlags,
    },
}

fn size_strategy() -> impl Strategy<Value = PageSize> {
    prop_oneof![6 => Just(PageSize::Size4K), 3 => Just(PageSize::Size2M), 1 => Just(PageSize::Size1G)]
}

fn flags_strategy() -> impl Strategy<Value = PteFlags> {
    use PteFlags as F;
    prop::sample::select(vec![
        F::R,
        F::R | F::W,
        F::R | F::X,
        F::R | F::W | F::X,
        F::X,
        F::R | F::U,
        F::R | F::W | F::G,
        F::W,
    ])
}

/// Any page start in the play area (3 pages per 2M, 3 megapages per 1G).
fn addr_strategy() -> impl Strategy<Value = usize> {
    (0..4usize, 0..3usize, 0..3usize).prop_map(|(g, m, p)| region_va(g, m, p))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..4usize, 0..3usize, 0..3usize, size_strategy(), 0..8usize, flags_strategy()).prop_map(|(g, m, p, size, frame, flags)| {
            let va = match size {
                PageSize::Size4K => region_va(g, m, p),
                PageSize::Size2M => region_va(g, m, 0),
                PageSize::Size1G => region_va(g, 0, 0),
            };
            Op::Map { va, size, frame, flags }
        }),
        3 => addr_strategy().prop_map(|va| Op::Unmap { va }),
        2 => (addr_strategy(), flags_strategy()).prop_map(|(va, flags)| Op::Protect { va, flags }),
    ]
}

type Model = BTreeMap<usize, (usize, PageSize, PteFlags)>;

fn covering(model: &Model, addr: usize) -> Option<(usize, (usize, PageSize, PteFlags))> {
    model
        .range(..=addr)
        .next_back()
        .map(|(&start, &m)| (start, m))
        .filter(|&(start, (_, size, _))| addr - start < size.bytes())
}

fn overlaps(model: &Model, start: usize, size: PageSize) -> bool {
    // Inclusive ends: the last GiB of the address space ends at usize::MAX.
    let last = start + (size.bytes() - 1);
    model.iter().any(|(&other, &(_, other_size, _))| {
        other <= last && start <= other + (other_size.bytes() - 1)
    })
}

fn stored(flags: PteFlags) -> PteFlags {
    flags | PteFlags::V | PteFlags::A | PteFlags::D
}

/// Root + one level-1 table per GiB holding small pages + one level-0
/// table per 2 MiB holding 4K pages.
fn expected_tables(model: &Model) -> usize {
    let mut level1 = std::collections::BTreeSet::new();
    let mut level0 = std::collections::BTreeSet::new();
    for (&start, &(_, size, _)) in model {
        if size != PageSize::Size1G {
            level1.insert(start >> 30);
        }
        if size == PageSize::Size4K {
            level0.insert(start >> 21);
        }
    }
    1 + level1.len() + level0.len()
}

fn check_agrees(pt: &PageTable<HostFrames>, model: &Model) -> Result<(), TestCaseError> {
    for g in 0..4 {
        for m in 0..4 {
            for p in 0..4 {
                let probe = region_va(g, m, p) + 0x123;
                let got = pt.translate(va(probe));
                match covering(model, probe) {
                    Some((start, (base, size, flags))) => {
                        let t = got.map_err(|e| TestCaseError::fail(format!("{probe:#x}: {e}")))?;
                        prop_assert_eq!(t.pa.as_usize(), base + (probe - start));
                        prop_assert_eq!(t.size, size);
                        prop_assert_eq!(t.flags, stored(flags));
                    }
                    None => prop_assert_eq!(got, Err(PagingError::NotMapped { va: probe })),
                }
            }
        }
    }
    let listed: Vec<_> = pt
        .mappings()
        .map(|m| (m.va.as_usize(), (m.pa.as_usize(), m.size, m.flags)))
        .collect();
    let modelled: Vec<_> = model
        .iter()
        .map(|(&v, &(p, s, f))| (v, (p, s, stored(f))))
        .collect();
    prop_assert_eq!(listed, modelled);
    prop_assert_eq!(pt.frames().live(), expected_tables(model));
    Ok(())
}

fn apply(pt: &mut PageTable<HostFrames>, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::Map {
            va: addr,
            size,
            frame,
            flags,
        } => {
            let phys = 0x8000_0000 + frame * size.bytes();
            let result = pt.map(va(addr), pa(phys), size, flags);
            if !flags.is_valid_leaf() {
                prop_assert_eq!(
                    result,
                    Err(PagingError::InvalidFlags {
                        flags: flags.bits()
                    })
                );
            } else if overlaps(model, addr, size) {
                prop_assert!(
                    matches!(
                        result,
                        Err(PagingError::AlreadyMapped { .. } | PagingError::TableInTheWay { .. })
                    ),
                    "{result:?}"
                );
            } else {
                prop_assert_eq!(result, Ok(()));
                model.insert(addr, (phys, size, flags));
            }
        }
        Op::Unmap { va: addr } => {
            let result = pt.unmap(va(addr));
            match (model.get(&addr).copied(), covering(model, addr)) {
                (Some((phys, size, flags)), _) => {
                    let unmapped = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(
                        (unmapped.pa.as_usize(), unmapped.size, unmapped.flags),
                        (phys, size, stored(flags))
                    );
                    model.remove(&addr);
                }
                (None, Some((_, (_, size, _)))) => {
                    prop_assert_eq!(result, Err(PagingError::InsideHugePage { va: addr, size }))
                }
                (None, None) => prop_assert_eq!(result, Err(PagingError::NotMapped { va: addr })),
            }
        }
        Op::Protect { va: addr, flags } => {
            let result = pt.protect(va(addr), flags);
            match (model.get(&addr).copied(), covering(model, addr)) {
                (Some((phys, size, old)), _) if flags.is_valid_leaf() => {
                    let previous = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(
                        (previous.pa.as_usize(), previous.size, previous.flags),
                        (phys, size, stored(old))
                    );
                    model.insert(addr, (phys, size, flags));
                }
                (Some(_), _) => prop_assert_eq!(
                    result,
                    Err(PagingError::InvalidFlags {
                        flags: flags.bits()
                    })
                ),
                (None, Some((_, (_, size, _)))) => {
                    prop_assert_eq!(result, Err(PagingError::InsideHugePage { va: addr, size }))
                }
                (None, None) => prop_assert_eq!(result, Err(PagingError::NotMapped { va: addr })),
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 128 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn page_table_agrees_with_model(ops in prop::collection::vec(op_strategy(), 1..if cfg!(miri) { 12 } else { 60 })) {
        let mut pt = PageTable::new(HostFrames::new()).unwrap();
        let mut model = Model::new();
        // The whole-table comparison walks every entry; under Miri it runs
        // after every third operation (and at the end below), which still
        // walks every table shape the run builds.
        let check_every = if cfg!(miri) { 3 } else { 1 };
        for (step, op) in ops.iter().enumerate() {
            apply(&mut pt, &mut model, op)?;
            if step % check_every == 0 {
                check_agrees(&pt, &model)?;
            }
        }
        check_agrees(&pt, &model)?;
        let starts: Vec<usize> = model.keys().copied().collect();
        for start in starts {
            pt.unmap(va(start)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            model.remove(&start);
        }
        check_agrees(&pt, &model)?;
        prop_assert_eq!(pt.frames().live(), 1, "table frames leaked");
        let live = pt.frames().live_counter();
        drop(pt);
        prop_assert_eq!(live.get(), 0);
    }
}
