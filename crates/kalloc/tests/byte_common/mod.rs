//! Shared by the byte-allocator tests and fuzz targets: host memory, the
//! allocators under test, and the model-based checker (with the TLSF
//! cross-checked against its exhaustive verdicts).

#![allow(dead_code)]

pub mod host;
pub mod model;
pub mod subjects;
pub mod verified;
