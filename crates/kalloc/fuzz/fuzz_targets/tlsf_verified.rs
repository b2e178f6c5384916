//! Fuzzes the TLSF with every operation cross-checked: the same model as
//! the `tlsf` target, over a subject whose every free and realloc must get
//! the verdict of the exhaustive walk (`Tlsf::verify_dealloc`) and after
//! whose every operation the whole heap must pass `check_consistency`.

#![no_main]

#[path = "../../tests/byte_common/mod.rs"]
mod byte_common;

use byte_common::model::{Model, ops_from_bytes};
use byte_common::verified::Verified;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut model = Model::<Verified>::new(&[256 << 10, 96 << 10]);
    for op in ops_from_bytes(data, 16) {
        model.apply(op);
    }
    let free_order: Vec<usize> = data.iter().rev().take(4).map(|&b| usize::from(b)).collect();
    model.finish(&free_order);
});
