//! The architecture hooks the locks need, injected by the kernel, and the
//! per-hart interrupt-masking depth that makes nested masking correct.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::lockdep::LockdepHart;

/// What the locks need from the machine. The kernel implements it with
/// `tp` (hart id) and `sstatus.SIE` (interrupt masking); host tests with
/// thread-local state.
pub trait Arch {
    /// The current hart's id. Must be unique among running harts and
    /// stable while the caller holds a lock (the kernel does not migrate a
    /// context between harts while it holds a spinlock).
    fn hart_id() -> usize;

    /// Masks interrupts on the current hart and returns an opaque word
    /// describing the previous state, to be passed to
    /// [`irq_restore`](Self::irq_restore).
    fn irq_save_disable() -> usize;

    /// Restores the interrupt state `saved` returned by
    /// [`irq_save_disable`](Self::irq_save_disable).
    fn irq_restore(saved: usize);

    /// The current hart's masking depth record. Each hart must get its own
    /// (the kernel keeps one in its per-hart data).
    fn irq_nesting() -> &'static IrqNesting;

    /// Called on every failed look at a busy lock, after the CPU's spin
    /// hint. The kernel can leave the default (nothing more); a host whose
    /// "harts" are threads on fewer cores yields here, or a ticket lock's
    /// next-in-line waiter may sit descheduled while the others burn the
    /// holder's time slice.
    fn relax() {}

    /// With `debug_assertions`, a waiter logs a warning each time it has
    /// spun this many times without getting the lock.
    const SPIN_REPORT_INTERVAL: u64 = 1 << 26;

    /// The current hart's lock-validation state (see
    /// [`lockdep`](crate::lockdep)). Each hart must get its own (the kernel
    /// keeps one in its per-hart data, like the [`IrqNesting`]). `None`, the
    /// default, validates nothing on this hart; locks it takes then are
    /// simply not recorded. Only called when validation is compiled in.
    fn lockdep() -> Option<&'static LockdepHart> {
        None
    }

    /// Whether the current hart is running an interrupt handler (not just
    /// any trap: an exception handler runs on behalf of the interrupted
    /// code). The default, `false`, never marks a class as taken in a
    /// handler, which leaves the interrupt rule of
    /// [`lockdep`](crate::lockdep) inert.
    fn in_interrupt() -> bool {
        false
    }

    /// Whether interrupts are enabled on the current hart right now. The
    /// default, `false`, never marks a class as held with interrupts
    /// enabled, which leaves the interrupt rule inert. Locks that mask
    /// interrupts ([`IrqSave`](crate::IrqSave)) count as held with them
    /// masked whatever this returns.
    fn irqs_enabled() -> bool {
        false
    }
}

/// How many interrupt-masking sections the current hart is inside, and the
/// interrupt state the outermost one saved.
///
/// Only its own hart touches it, with interrupts masked, so relaxed atomics
/// suffice; they are atomics only so the record can live in a `static`.
#[derive(Debug)]
pub struct IrqNesting {
    depth: AtomicUsize,
    outermost_saved: AtomicUsize,
}

impl IrqNesting {
    /// A record for a hart that is inside no masking section.
    pub const fn new() -> Self {
        Self {
            depth: AtomicUsize::new(0),
            outermost_saved: AtomicUsize::new(0),
        }
    }

    /// The number of masking sections the hart is currently inside.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }
}

impl Default for IrqNesting {
    fn default() -> Self {
        Self::new()
    }
}

/// Masks interrupts on the current hart until the returned guard drops.
///
/// Sections nest in any drop order: the first one entered saves the
/// previous interrupt state and the last one left restores it, so
/// interrupts stay masked until every section on this hart has ended.
///
/// ```
/// use core::sync::atomic::{AtomicBool, Ordering};
/// use ksync::{Arch, IrqNesting, irq_save};
///
/// // One hart whose interrupt-enable bit is a flag.
/// static IRQS_ON: AtomicBool = AtomicBool::new(true);
/// static NESTING: IrqNesting = IrqNesting::new();
/// struct OneHart;
/// impl Arch for OneHart {
///     fn hart_id() -> usize { 0 }
///     fn irq_save_disable() -> usize { IRQS_ON.swap(false, Ordering::Relaxed) as usize }
///     fn irq_restore(saved: usize) { IRQS_ON.store(saved != 0, Ordering::Relaxed) }
///     fn irq_nesting() -> &'static IrqNesting { &NESTING }
/// }
///
/// let outer = irq_save::<OneHart>();
/// let inner = irq_save::<OneHart>();
/// drop(outer); // not the last section: interrupts stay masked
/// assert!(!IRQS_ON.load(Ordering::Relaxed));
/// assert_eq!(NESTING.depth(), 1);
/// drop(inner);
/// assert!(IRQS_ON.load(Ordering::Relaxed));
/// ```
pub fn irq_save<A: Arch>() -> IrqGuard<A> {
    enter_masked::<A>();
    IrqGuard { _arch: PhantomData }
}

/// Opens a masking section on the current hart: masks interrupts and, if
/// it is the hart's outermost section, remembers the state to restore.
/// Every call must be paired with one [`exit_masked`] on the same hart.
pub(crate) fn enter_masked<A: Arch>() {
    let saved = A::irq_save_disable();
    let nesting = A::irq_nesting();
    let depth = nesting.depth.load(Ordering::Relaxed);
    if depth == 0 {
        nesting.outermost_saved.store(saved, Ordering::Relaxed);
    }
    nesting.depth.store(depth + 1, Ordering::Relaxed);
}

/// Closes a masking section opened by [`enter_masked`] on the current
/// hart, restoring the outermost saved state if it was the last one.
pub(crate) fn exit_masked<A: Arch>() {
    let nesting = A::irq_nesting();
    let depth = nesting.depth.load(Ordering::Relaxed);
    // A section is open, so this hart's depth is at least one unless the
    // Arch hands out the wrong hart's record.
    assert!(
        depth > 0,
        "masking section closed on hart {} whose masking depth is 0",
        A::hart_id()
    );
    nesting.depth.store(depth - 1, Ordering::Relaxed);
    if depth == 1 {
        A::irq_restore(nesting.outermost_saved.load(Ordering::Relaxed));
    }
}

/// Keeps interrupts masked on the hart that created it; see [`irq_save`].
/// Not `Send`: it must be dropped on the hart that created it.
#[must_use = "interrupts are restored as soon as the guard is dropped"]
pub struct IrqGuard<A: Arch> {
    _arch: PhantomData<(A, *const ())>,
}

impl<A: Arch> Drop for IrqGuard<A> {
    fn drop(&mut self) {
        exit_masked::<A>();
    }
}
