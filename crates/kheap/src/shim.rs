//! The atomics of the cross-CPU protocols (`magazine.rs`, `drain.rs`):
//! `core`'s normally, `loom`'s under `cfg(loom)`, where only those two
//! modules are built, for the model checker (`tests/loom.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicUsize};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicPtr, AtomicUsize};

/// Declares a function `const` except under `cfg(loom)`, whose atomics
/// have no `const` constructor.
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use const_unless_loom;
