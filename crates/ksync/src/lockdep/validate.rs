//! The validator behind [`LockClass`]: the process-wide class table, the
//! order graph and interrupt-usage marks, and each hart's held stack.
//!
//! Everything process-wide is a fixed array of atomics indexed by class
//! slot, so the kernel needs no allocator to validate its allocator's
//! locks, and the common path (an edge seen before, a usage already
//! marked) is a plain load per check.

use core::fmt;
use core::hint::spin_loop;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize};

use super::LockClass;
use crate::{Arch, Once};

/// Classes the table holds: a graph row is one `u64`, a bit per class.
const MAX_CLASSES: usize = 64;
/// Locks one hart may hold at once and still be validated.
const MAX_HELD: usize = 32;
/// Held-stack entry flag: the lock was taken by a successful try.
const TRY: u8 = 0x80;
/// `LockClass::slot` for a class that found the table full.
const UNTRACKED: u8 = u8::MAX;

/// A set of classes, one bit per slot.
type ClassSet = u64;

const fn bit(class: u8) -> ClassSet {
    1 << class
}

fn members(mut set: ClassSet) -> impl Iterator<Item = u8> {
    core::iter::from_fn(move || {
        if set == 0 {
            return None;
        }
        let class = set.trailing_zeros() as u8;
        set &= set - 1;
        Some(class)
    })
}

/// Serialises registering classes and adding edges, both rare: two harts
/// adding opposite edges at once must not both miss the cycle.
static TABLE_LOCK: AtomicBool = AtomicBool::new(false);
/// Slots in use; written only under `TABLE_LOCK`.
static CLASS_COUNT: AtomicUsize = AtomicUsize::new(0);
static NAMES: [Once<&'static str>; MAX_CLASSES] = [const { Once::new() }; MAX_CLASSES];
/// `EDGES[a]` bit `b`: some hart took `b` while holding `a`. Set under
/// `TABLE_LOCK`, never cleared, so a set bit read without the lock is
/// still true.
static EDGES: [AtomicU64; MAX_CLASSES] = [const { AtomicU64::new(0) }; MAX_CLASSES];
/// Classes some hart took (waiting) in an interrupt handler.
static IN_IRQ: AtomicU64 = AtomicU64::new(0);
/// Classes some hart held with interrupts enabled.
static IRQS_ON: AtomicU64 = AtomicU64::new(0);
static IN_IRQ_WITNESS: [Witness; MAX_CLASSES] = [const { Witness::new() }; MAX_CLASSES];
static IRQS_ON_WITNESS: [Witness; MAX_CLASSES] = [const { Witness::new() }; MAX_CLASSES];
static TABLE_FULL_WARNED: AtomicBool = AtomicBool::new(false);

/// A hart's held stack and whether it still validates.
pub(super) struct HartState {
    /// Set by a report or an overflow; from then on this hart validates
    /// nothing, so the panic path cannot report again.
    off: AtomicBool,
    depth: AtomicUsize,
    /// Class slots, oldest first, `TRY`-flagged for try acquisitions.
    held: [AtomicU8; MAX_HELD],
}

impl HartState {
    pub(super) const fn new() -> Self {
        Self {
            off: AtomicBool::new(false),
            depth: AtomicUsize::new(0),
            held: [const { AtomicU8::new(0) }; MAX_HELD],
        }
    }

    pub(super) fn depth(&self) -> usize {
        self.depth.load(Relaxed)
    }

    fn acquire<A: Arch>(&self, class: &LockClass, taking: &Taking) -> Verdict {
        let new = match slot::<A>(class) {
            Ok(new) => new,
            Err(verdict) => return verdict,
        };
        let depth = self.depth.load(Relaxed);
        let held = &self.held[..depth];
        let held_set = held
            .iter()
            .fold(0, |set, entry| set | bit(entry.load(Relaxed) & !TRY));
        if let Some(report) = check_irqs::<A>(new, held_set, taking) {
            return self.stop(report);
        }
        if !taking.is_try {
            if held_set & bit(new) != 0 {
                return self.stop(Report::Recursion {
                    taking: new,
                    held: self.snapshot(),
                });
            }
            // Edges from the newest held lock down to the newest one taken
            // by waiting: that one got edges from everything below it when
            // it was taken, so the graph already implies the rest. A try
            // added no edges, so the walk goes past it.
            for entry in held.iter().rev() {
                let entry = entry.load(Relaxed);
                let holding = entry & !TRY;
                if let Err(path) = add_edge::<A>(holding, new) {
                    return self.stop(Report::Inversion {
                        taking: new,
                        holding,
                        path,
                        held: self.snapshot(),
                    });
                }
                if entry & TRY == 0 {
                    break;
                }
            }
        }
        if depth == MAX_HELD {
            self.off.store(true, Relaxed);
            return Verdict::TooDeep;
        }
        let flag = if taking.is_try { TRY } else { 0 };
        self.held[depth].store(new | flag, Relaxed);
        self.depth.store(depth + 1, Relaxed);
        Verdict::Fine
    }

    fn remove(&self, class: u8) {
        if self.off.load(Relaxed) {
            return;
        }
        let depth = self.depth.load(Relaxed);
        // Not found: taken while this hart had no validation state (early
        // boot), which is not an error.
        let Some(at) = (0..depth)
            .rev()
            .find(|&i| self.held[i].load(Relaxed) & !TRY == class)
        else {
            return;
        };
        for i in at..depth - 1 {
            self.held[i].store(self.held[i + 1].load(Relaxed), Relaxed);
        }
        self.depth.store(depth - 1, Relaxed);
    }

    fn stop(&self, report: Report) -> Verdict {
        self.off.store(true, Relaxed);
        Verdict::Report(report)
    }

    fn snapshot(&self) -> Held {
        let mut held = Held {
            entries: [0; MAX_HELD],
            len: self.depth.load(Relaxed),
        };
        for (copy, entry) in held.entries.iter_mut().zip(&self.held[..held.len]) {
            *copy = entry.load(Relaxed);
        }
        held
    }
}

/// What the acquiring hart is doing, sampled before the bookkeeping masks
/// interrupts.
struct Taking {
    is_try: bool,
    /// Interrupts are enabled on this hart right now.
    irqs_on: bool,
    /// The new lock is held with interrupts masked, whatever `irqs_on`.
    masks_irqs: bool,
    in_irq: bool,
}

pub(super) fn acquire<A: Arch>(class: &LockClass, is_try: bool, masks_irqs: bool) {
    let Some(hart) = A::lockdep() else { return };
    if hart.state.off.load(Relaxed) {
        return;
    }
    let taking = Taking {
        is_try,
        irqs_on: A::irqs_enabled(),
        masks_irqs,
        in_irq: A::in_interrupt(),
    };
    // An interrupt handler on this hart takes locks too; it must not find
    // the held stack half-updated.
    let saved = A::irq_save_disable();
    let verdict = hart.state.acquire::<A>(class, &taking);
    A::irq_restore(saved);
    // Logging and panicking take other locks (the console): only now that
    // the bookkeeping is finished and `TABLE_LOCK` is free.
    verdict.deliver::<A>(class.name);
}

pub(super) fn release<A: Arch>(class: &LockClass) {
    let Some(hart) = A::lockdep() else { return };
    // A class never looked up was never pushed on any hart.
    let slot = class.slot.load(Relaxed);
    if slot == 0 || slot == UNTRACKED {
        return;
    }
    let saved = A::irq_save_disable();
    hart.state.remove(slot - 1);
    A::irq_restore(saved);
}

/// The class's slot, registering its name on first use.
#[inline]
fn slot<A: Arch>(class: &LockClass) -> Result<u8, Verdict> {
    // Acquire: the name in `NAMES` was published before the slot.
    match class.slot.load(Acquire) {
        0 => register::<A>(class),
        UNTRACKED => Err(Verdict::Fine),
        cached => Ok(cached - 1),
    }
}

#[cold]
fn register<A: Arch>(class: &LockClass) -> Result<u8, Verdict> {
    let _table = TableLock::take::<A>();
    let count = CLASS_COUNT.load(Relaxed);
    // By name, not address: equal literals need not share an address.
    let found = (0..count).find(|&i| NAMES[i].get() == Some(&class.name));
    let (cached, result) = match found {
        Some(i) => (i as u8 + 1, Ok(i as u8)),
        None if count == MAX_CLASSES => (UNTRACKED, Err(Verdict::TableFull)),
        None => {
            NAMES[count].call_once(|| class.name);
            CLASS_COUNT.store(count + 1, Relaxed);
            (count as u8 + 1, Ok(count as u8))
        }
    };
    class.slot.store(cached, Release);
    result
}

/// Holds `TABLE_LOCK`. Taken only with interrupts masked, so no handler on
/// this hart can spin on it, and never held across a panic or a log call.
struct TableLock;

impl TableLock {
    fn take<A: Arch>() -> Self {
        while TABLE_LOCK
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            while TABLE_LOCK.load(Relaxed) {
                spin_loop();
                A::relax();
            }
        }
        Self
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        TABLE_LOCK.store(false, Release);
    }
}

#[inline]
fn add_edge<A: Arch>(from: u8, to: u8) -> Result<(), Path> {
    if EDGES[usize::from(from)].load(Relaxed) & bit(to) != 0 {
        return Ok(());
    }
    add_new_edge::<A>(from, to)
}

#[cold]
fn add_new_edge<A: Arch>(from: u8, to: u8) -> Result<(), Path> {
    let _table = TableLock::take::<A>();
    let row = &EDGES[usize::from(from)];
    if row.load(Relaxed) & bit(to) != 0 {
        return Ok(());
    }
    if let Some(path) = Path::find(to, from) {
        return Err(path);
    }
    row.fetch_or(bit(to), Relaxed);
    Ok(())
}

/// Applies the interrupt rule to the new lock and to the held ones.
#[inline]
fn check_irqs<A: Arch>(new: u8, held_set: ClassSet, taking: &Taking) -> Option<Report> {
    // A try in a handler cannot spin, so it does not make the class
    // interrupt-used.
    if taking.in_irq
        && !taking.is_try
        && IN_IRQ.load(Relaxed) & bit(new) == 0
        && let Some(report) = mark_in_irq::<A>(new)
    {
        return Some(report);
    }
    if !taking.irqs_on {
        return None;
    }
    // Everything held is held with interrupts on right now, not only the
    // new lock.
    let mut on = held_set;
    if !taking.masks_irqs {
        on |= bit(new);
    }
    let fresh = on & !IRQS_ON.load(Relaxed);
    if fresh == 0 {
        return None;
    }
    mark_irqs_on::<A>(fresh, new)
}

// Each side sets its own mark, then reads the other's, both SeqCst: of two
// harts marking a class the two ways at once, at least one sees the other.

#[cold]
fn mark_in_irq<A: Arch>(class: u8) -> Option<Report> {
    IN_IRQ_WITNESS[usize::from(class)].record(A::hart_id(), class);
    IN_IRQ.fetch_or(bit(class), SeqCst);
    if IRQS_ON.load(SeqCst) & bit(class) == 0 {
        return None;
    }
    Some(Report::TakenInHandler {
        class,
        earlier: IRQS_ON_WITNESS[usize::from(class)].read(),
    })
}

#[cold]
fn mark_irqs_on<A: Arch>(fresh: ClassSet, taking: u8) -> Option<Report> {
    let hart = A::hart_id();
    for class in members(fresh) {
        IRQS_ON_WITNESS[usize::from(class)].record(hart, taking);
    }
    IRQS_ON.fetch_or(fresh, SeqCst);
    let class = members(fresh & IN_IRQ.load(SeqCst)).next()?;
    Some(Report::HeldWithIrqsOn {
        class,
        taking,
        earlier: IN_IRQ_WITNESS[usize::from(class)].read(),
    })
}

/// The first hart seen using a class one way, and the class it was taking
/// then, packed in one word so one exchange publishes both.
struct Witness(AtomicUsize);

/// Hart ids from here up are printed as unknown (the packing's limit; the
/// kernel reports `usize::MAX` before a hart knows its id).
const UNKNOWN_HART: usize = usize::MAX >> 9;

impl Witness {
    const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    fn record(&self, hart: usize, taking: u8) {
        let packed = (hart.min(UNKNOWN_HART) << 8 | usize::from(taking)) + 1;
        // The first record stays. AcqRel/Acquire: a hart that loses the
        // race synchronises with the winner, so the winner's record is
        // published by whichever of them then sets the usage mark.
        let _ = self.0.compare_exchange(0, packed, AcqRel, Acquire);
    }

    fn read(&self) -> Option<WitnessRecord> {
        let packed = self.0.load(Acquire).checked_sub(1)?;
        let hart = packed >> 8;
        Some(WitnessRecord {
            hart: (hart != UNKNOWN_HART).then_some(hart),
            taking: packed as u8,
        })
    }
}

#[derive(Clone, Copy)]
struct WitnessRecord {
    hart: Option<usize>,
    taking: u8,
}

/// What happens after the bookkeeping, outside it.
enum Verdict {
    Fine,
    TableFull,
    TooDeep,
    Report(Report),
}

impl Verdict {
    #[inline]
    fn deliver<A: Arch>(self, name: &str) {
        match self {
            Verdict::Fine => {}
            Verdict::TableFull => {
                if !TABLE_FULL_WARNED.swap(true, Relaxed) {
                    log::warn!(
                        "lockdep: class table full ({MAX_CLASSES} classes): `{name}` and every later new class go unvalidated"
                    );
                }
            }
            Verdict::TooDeep => log::warn!(
                "lockdep: hart {} holds more than {MAX_HELD} locks (taking `{name}`); validation is off on this hart from now on",
                A::hart_id()
            ),
            Verdict::Report(report) => report.panic(A::hart_id()),
        }
    }
}

enum Report {
    Recursion {
        taking: u8,
        held: Held,
    },
    Inversion {
        taking: u8,
        holding: u8,
        path: Path,
        held: Held,
    },
    /// This hart takes `class` in an interrupt handler; `earlier` held it
    /// with interrupts enabled.
    TakenInHandler {
        class: u8,
        earlier: Option<WitnessRecord>,
    },
    /// This hart holds `class` with interrupts enabled (while taking
    /// `taking`); `earlier` took it in an interrupt handler.
    HeldWithIrqsOn {
        class: u8,
        taking: u8,
        earlier: Option<WitnessRecord>,
    },
}

impl Report {
    #[cold]
    #[inline(never)]
    fn panic(self, hart: usize) -> ! {
        panic!(
            "{}",
            Message {
                report: &self,
                hart
            }
        )
    }
}

struct Message<'a> {
    report: &'a Report,
    hart: usize,
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hart = self.hart;
        match self.report {
            Report::Recursion { taking, held } => write!(
                f,
                "lockdep: recursive locking: hart {hart} takes `{}` while it already holds a lock of that class \
                 (a class is held at most once per hart); hart {hart} holds, oldest first: {held}",
                name(*taking),
            ),
            Report::Inversion {
                taking,
                holding,
                path,
                held,
            } => write!(
                f,
                "lockdep: lock order inversion: hart {hart} takes `{}` while holding `{}`; \
                 the opposite order {path} was recorded before; hart {hart} holds, oldest first: {held}",
                name(*taking),
                name(*holding),
            ),
            Report::TakenInHandler { class, earlier } => {
                write!(
                    f,
                    "lockdep: interrupt-unsafe lock `{}`: hart {hart} takes it in an interrupt handler, \
                     but {} held it with interrupts enabled",
                    name(*class),
                    EarlierHart(*earlier),
                )?;
                if let Some(earlier) = earlier {
                    write!(f, " (while taking `{}`)", name(earlier.taking))?;
                }
                f.write_str(
                    "; an interrupt arriving there would spin forever on a lock its own hart holds",
                )
            }
            Report::HeldWithIrqsOn {
                class,
                taking,
                earlier,
            } => write!(
                f,
                "lockdep: interrupt-unsafe lock `{}`: hart {hart} holds it with interrupts enabled \
                 (while taking `{}`), but {} took it in an interrupt handler; \
                 an interrupt arriving now would spin forever on a lock its own hart holds",
                name(*class),
                name(*taking),
                EarlierHart(*earlier),
            ),
        }
    }
}

fn name(class: u8) -> &'static str {
    NAMES[usize::from(class)].get().copied().unwrap_or("?")
}

struct EarlierHart(Option<WitnessRecord>);

impl fmt::Display for EarlierHart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.and_then(|record| record.hart) {
            Some(hart) => write!(f, "hart {hart}"),
            None => f.write_str("an earlier context"),
        }
    }
}

/// A copy of a hart's held stack for a report.
struct Held {
    entries: [u8; MAX_HELD],
    len: usize,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries[..self.len].iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{}`", name(entry & !TRY))?;
            if entry & TRY != 0 {
                f.write_str(" (try)")?;
            }
        }
        Ok(())
    }
}

/// A recorded chain of edges, first class to last.
struct Path {
    classes: [u8; MAX_CLASSES],
    len: usize,
}

impl Path {
    /// The shortest recorded path `from -> ... -> to` (breadth-first over
    /// the bit rows), if any. Called under `TABLE_LOCK`, so the graph
    /// holds still.
    fn find(from: u8, to: u8) -> Option<Path> {
        let mut parent = [0u8; MAX_CLASSES];
        let mut seen = bit(from);
        let mut frontier = seen;
        while frontier != 0 && seen & bit(to) == 0 {
            let mut next = 0;
            for node in members(frontier) {
                let fresh = EDGES[usize::from(node)].load(Relaxed) & !seen & !next;
                for successor in members(fresh) {
                    parent[usize::from(successor)] = node;
                }
                next |= fresh;
            }
            seen |= next;
            frontier = next;
        }
        if seen & bit(to) == 0 {
            return None;
        }
        let mut path = Path {
            classes: [0; MAX_CLASSES],
            len: 0,
        };
        let mut node = to;
        loop {
            path.classes[path.len] = node;
            path.len += 1;
            if node == from {
                break;
            }
            node = parent[usize::from(node)];
        }
        path.classes[..path.len].reverse();
        Some(path)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, class) in self.classes[..self.len].iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "`{}`", name(*class))?;
        }
        Ok(())
    }
}
