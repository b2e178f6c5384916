//! Shared by the byte-allocator tests and fuzz targets: host memory, the
//! allocators under test, and the model-based checker.

#![allow(dead_code)]

pub mod host;
pub mod model;
pub mod subjects;
