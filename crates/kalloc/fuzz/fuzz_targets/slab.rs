//! Fuzzes the slab allocator: the input bytes decode into a sequence of allocs,
//! frees, reallocs and bad frees, checked by the same model as the property
//! tests (disjoint, aligned, in-bounds, intact blocks; exact counters; bad
//! frees rejected without effect; full coalescing at the end).

#![no_main]

#[path = "../../tests/byte_common/mod.rs"]
mod byte_common;

use byte_common::model::{Model, ops_from_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut model = Model::<kalloc::byte::SlabAllocator<byte_common::host::HostPages>>::new(&[
        1 << 20,
        192 << 10,
    ]);
    for op in ops_from_bytes(data, 18) {
        model.apply(op);
    }
    let free_order: Vec<usize> = data.iter().rev().take(4).map(|&b| usize::from(b)).collect();
    model.finish(&free_order);
});
