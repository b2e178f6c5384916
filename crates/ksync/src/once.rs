//! One-time initialisation for statics: [`Once`] runs an initialiser
//! exactly once even when several harts race to it; [`Lazy`] wraps a value
//! computed on first access.

use core::cell::UnsafeCell;
use core::fmt;
use core::mem::MaybeUninit;
use core::ops::Deref;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::shim::{AtomicU8, const_unless_loom, spin_loop};

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;
const POISONED: u8 = 3;

/// A value written once, by the first caller of [`call_once`](Self::call_once).
///
/// The states go INCOMPLETE -> RUNNING -> COMPLETE; the value is
/// initialised exactly when the state is COMPLETE. If the initialiser
/// panics (host tests; the kernel halts on panic) the state becomes
/// POISONED and every later caller panics instead of waiting forever.
/// An initialiser that calls `call_once` on its own `Once` spins forever:
/// the cell has no hart id to detect it.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use ksync::Once;
///
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
/// static TABLE: Once<[u8; 4]> = Once::new();
///
/// assert!(TABLE.get().is_none());
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             let table = TABLE.call_once(|| {
///                 RUNS.fetch_add(1, Ordering::Relaxed);
///                 [1, 2, 3, 4]
///             });
///             assert_eq!(table[3], 4);
///         });
///     }
/// });
/// assert_eq!(RUNS.load(Ordering::Relaxed), 1);
/// assert!(TABLE.is_completed());
/// ```
pub struct Once<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, before the Release store of COMPLETE,
// and only read after an Acquire load of COMPLETE; after that only `&T` is
// handed out, so sharing needs `T: Sync`, and whichever hart initialises
// moves a `T` in, so also `T: Send`.
unsafe impl<T: Send + Sync> Sync for Once<T> {}
// SAFETY: owning the cell owns the `T`.
unsafe impl<T: Send> Send for Once<T> {}

impl<T> Once<T> {
    const_unless_loom! {
        /// An empty cell.
        pub fn new() -> Self {
            Self { state: AtomicU8::new(INCOMPLETE), value: UnsafeCell::new(MaybeUninit::uninit()) }
        }
    }

    /// Returns the value, running `init` first if no one has. Callers that
    /// arrive while another hart runs `init` wait for it.
    ///
    /// # Panics
    /// If the initialiser panicked earlier (here or on another hart).
    pub fn call_once(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        match self
            .state
            .compare_exchange(INCOMPLETE, RUNNING, Acquire, Acquire)
        {
            Ok(_) => {
                let poison_on_unwind = PoisonOnDrop(&self.state);
                let value = init();
                // SAFETY: winning the exchange to RUNNING makes this the only
                // context that touches `value` until COMPLETE is published.
                unsafe { (*self.value.get()).write(value) };
                core::mem::forget(poison_on_unwind);
                self.state.store(COMPLETE, Release);
            }
            Err(_) => loop {
                match self.state.load(Acquire) {
                    RUNNING => spin_loop(),
                    COMPLETE => break,
                    _ => panic!("Once: the initialiser panicked"),
                }
            },
        }
        // SAFETY: the state is COMPLETE (we stored it, or loaded it with
        // Acquire), so the value is initialised and never written again.
        unsafe { (*self.value.get()).assume_init_ref() }
    }

    /// The value, if initialisation has completed.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Acquire) == COMPLETE {
            // SAFETY: COMPLETE was published with Release after the write.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// The value, without the Acquire load of [`get`](Self::get): for a
    /// hot path that already synchronised with the initialisation once
    /// (an Acquire load costs a fence on every call on weakly ordered
    /// machines).
    ///
    /// # Safety
    /// Initialisation has completed, and the caller's context observed it
    /// earlier ([`get`](Self::get) returned `Some`, or
    /// [`call_once`](Self::call_once) returned) in a way that happens
    /// before this call: earlier on the same thread, or on another thread
    /// that synchronised with this one since.
    pub unsafe fn get_unchecked(&self) -> &T {
        debug_assert!(
            self.state.load(Relaxed) == COMPLETE,
            "Once: not initialised"
        );
        // SAFETY: the caller's context observed COMPLETE with Acquire (or
        // stored it) before this call, so the write of the value happens
        // before this read, and the value is never written again.
        unsafe { (*self.value.get()).assume_init_ref() }
    }

    /// Whether initialisation has completed.
    pub fn is_completed(&self) -> bool {
        self.state.load(Acquire) == COMPLETE
    }
}

impl<T> Default for Once<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for Once<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Once").field(&self.get()).finish()
    }
}

impl<T> Drop for Once<T> {
    fn drop(&mut self) {
        if self.state.load(Relaxed) == COMPLETE {
            // SAFETY: COMPLETE means initialised; `&mut self` means no
            // reference to the value is live.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

/// Marks the cell poisoned if the initialiser unwinds.
struct PoisonOnDrop<'a>(&'a AtomicU8);

impl Drop for PoisonOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(POISONED, Release);
    }
}

/// A value computed by `F` on first dereference.
///
/// ```
/// use ksync::Lazy;
///
/// static PRIMES: Lazy<Vec<u32>> = Lazy::new(|| {
///     (2..30).filter(|n| (2..*n).all(|d| n % d != 0)).collect()
/// });
///
/// assert_eq!(PRIMES.len(), 10);
/// assert_eq!(*Lazy::force(&PRIMES).last().unwrap(), 29);
/// ```
pub struct Lazy<T, F = fn() -> T> {
    cell: Once<T>,
    init: UnsafeCell<Option<F>>,
}

// SAFETY: `init` is taken only inside `call_once`'s initialiser, which runs
// on one context exactly once; the value is shared as with `Once`.
unsafe impl<T: Send + Sync, F: Send> Sync for Lazy<T, F> {}

impl<T, F: FnOnce() -> T> Lazy<T, F> {
    const_unless_loom! {
        /// A value that `init` computes on first access.
        pub fn new(init: F) -> Self {
            Self { cell: Once::new(), init: UnsafeCell::new(Some(init)) }
        }
    }

    /// Forces initialisation and returns the value.
    pub fn force(this: &Self) -> &T {
        this.cell.call_once(|| {
            // SAFETY: only the single winning initialiser gets here, so
            // nothing else accesses `init` concurrently.
            let init = unsafe { (*this.init.get()).take() };
            match init {
                Some(init) => init(),
                None => unreachable!("Lazy initialiser taken twice"),
            }
        })
    }
}

impl<T, F: FnOnce() -> T> Deref for Lazy<T, F> {
    type Target = T;
    fn deref(&self) -> &T {
        Lazy::force(self)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for Lazy<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Lazy").field(&self.cell.get()).finish()
    }
}
