//! Guard-page sampling in the spirit of Linux's KFENCE
//! (`memdebug.kfence=N`): every N-th allocation through the byte layer that
//! fits in a page gets a page of its own in a window of the kernel's
//! address space, placed so that it ends where an unmapped guard page
//! begins. An overflow faults at its first bad byte; a freed block's page is
//! unmapped, so a use after free faults too; the page-fault diagnosis
//! (`memory::fault`) names the block.
//!
//! ```text
//!   WINDOW + slot * 2 pages:
//!   [ guard (never mapped) | data page: canary 0xaa ... | object ][ next slot's guard ]
//!                                                       ^ ends at the page end
//! ```
//!
//! The bytes between the page start and the object are filled with a canary
//! and checked on free (an underflow that stays inside the page). Slots
//! are few ([`SLOTS`]); when all are busy an allocation is not sampled.

use crate::arch::{self, PAGE_SIZE};
use crate::memory::kernel_map::Perms;
use crate::memory::{pages, paging};
use crate::sync::IrqTicketLock;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use kalloc::{AllocError, AllocResult};
use memdebug::{Action, BlockInfo, CallSite, FoundBytes, Report, ReportKind, Side, Unit};

/// Sampled blocks live at once.
pub const SLOTS: usize = 64;
/// The window: the top of the Sv39 address space, far above the linear
/// map and the devices.
pub const WINDOW: usize = 0xffff_fff0_0000_0000;
/// The window ends with the guard page after the last slot.
const WINDOW_END: usize = WINDOW + (SLOTS * 2 + 1) * PAGE_SIZE;
/// Fills the page in front of a sampled object.
pub const CANARY: u8 = 0xaa;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    Live,
    Freed,
}

#[derive(Clone, Copy)]
struct Slot {
    state: State,
    info: BlockInfo,
    /// The physical page's linear-map address while live.
    page: usize,
}

struct Pool {
    slots: [Slot; SLOTS],
    /// The slot to try next (round robin, so a freed slot stays unmapped
    /// as long as possible).
    next: usize,
    seq: u64,
}

static POOL: IrqTicketLock<Pool> = IrqTicketLock::new(
    "kfence",
    Pool {
        slots: [Slot {
            state: State::Empty,
            info: BlockInfo {
                start: 0,
                size: 0,
                align: 0,
                seq: 0,
                alloc_site: CallSite::Unknown,
                alloc_time: 0,
                free_site: CallSite::Unknown,
                free_time: 0,
            },
            page: 0,
        }; SLOTS],
        next: 0,
        seq: 0,
    },
);

static INTERVAL: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Samples every `interval`-th allocation (0: none).
pub(super) fn configure(interval: usize) {
    INTERVAL.store(interval, Ordering::Relaxed);
}

fn data_page(slot: usize) -> usize {
    WINDOW + (2 * slot + 1) * PAGE_SIZE
}

/// Whether `addr` lies in the window (a sampled block or a guard).
pub fn owns(addr: usize) -> bool {
    (WINDOW..WINDOW_END).contains(&addr)
}

/// Whether this allocation should be sampled.
pub(super) fn take_sample(layout: Layout) -> bool {
    let interval = INTERVAL.load(Ordering::Relaxed);
    interval != 0
        && layout.size() <= PAGE_SIZE
        && layout.align() <= PAGE_SIZE
        && COUNT.fetch_add(1, Ordering::Relaxed) % interval == interval - 1
}

/// Places `layout` against a guard page; `None` when no slot is free or
/// the page cannot be had (the caller then allocates normally).
pub fn alloc(layout: Layout, site: CallSite) -> Option<NonNull<u8>> {
    if layout.size() == 0 || layout.size() > PAGE_SIZE || layout.align() > PAGE_SIZE {
        return None;
    }
    let mut pool = POOL.lock();
    let slot = (0..SLOTS)
        .map(|i| (pool.next + i) % SLOTS)
        .find(|&i| pool.slots[i].state != State::Live)?;
    let page = pages::alloc_untraced("pages", 1, PAGE_SIZE).ok()?;
    let va = data_page(slot);
    let mapped = match paging::map_page(va, arch::virt_to_phys(page), Perms::Rw) {
        Ok(change) => change,
        Err(error) => {
            let freed = pages::free_untraced(page, 1);
            drop(pool);
            log::error!(
                "kfence: mapping slot {slot} failed ({error:?}); its page {page:#x} went back: {freed:?}"
            );
            return None;
        }
    };
    let start = (va + PAGE_SIZE - layout.size()) & !(layout.align() - 1);
    // SAFETY: `va` was just mapped read-write to a page nobody else uses;
    // the canary covers the page up to the object.
    unsafe { core::ptr::write_bytes(va as *mut u8, CANARY, start - va) };
    pool.seq += 1;
    pool.slots[slot] = Slot {
        state: State::Live,
        info: BlockInfo {
            start,
            size: layout.size(),
            align: layout.align(),
            seq: pool.seq,
            alloc_site: site,
            alloc_time: super::config::clock(),
            ..BlockInfo::default()
        },
        page,
    };
    pool.next = (slot + 1) % SLOTS;
    drop(pool);
    mapped.log();
    NonNull::new(start as *mut u8)
}

fn report(kind: ReportKind, addr: usize, site: CallSite, block: Option<BlockInfo>, action: Action) {
    let report = Report {
        layer: "kfence",
        unit: Unit::Bytes,
        kind,
        addr,
        site,
        block,
        action,
    };
    super::report::publish(&report);
}

/// Why a free of a sampled block is refused.
#[derive(Clone, Copy)]
enum Refusal {
    /// No sampled block starts there.
    Unknown,
    /// The block in this slot was freed already.
    Freed(usize),
    /// The block in this slot has another layout.
    WrongLayout(usize),
}

/// The slot of the live sampled block at `addr` with `layout`.
fn live_slot(pool: &Pool, addr: usize, layout: Layout) -> Result<usize, Refusal> {
    let index = (0..SLOTS)
        .find(|&i| pool.slots[i].state != State::Empty && pool.slots[i].info.start == addr)
        .ok_or(Refusal::Unknown)?;
    let info = &pool.slots[index].info;
    if pool.slots[index].state == State::Freed {
        Err(Refusal::Freed(index))
    } else if info.size != layout.size() || info.align != layout.align() {
        Err(Refusal::WrongLayout(index))
    } else {
        Ok(index)
    }
}

/// What a refused free reports (built under the pool's lock, published
/// after it), and the error the caller gets.
fn refusal_report(
    pool: &Pool,
    refusal: Refusal,
    layout: Layout,
) -> (ReportKind, Option<BlockInfo>, AllocError) {
    match refusal {
        Refusal::Unknown => (ReportKind::UnknownFree, None, AllocError::NotAllocated),
        Refusal::Freed(index) => (
            ReportKind::DoubleFree,
            Some(pool.slots[index].info),
            AllocError::DoubleFree,
        ),
        Refusal::WrongLayout(index) => (
            ReportKind::WrongLayout {
                size: layout.size(),
                align: layout.align(),
            },
            Some(pool.slots[index].info),
            AllocError::NotAllocated,
        ),
    }
}

/// The verdict [`free`] would give (`owns(ptr)`), without freeing: `Ok`
/// for a live sampled block of this layout, else the refusal, reported as
/// `free` reports it.
pub fn check_free(ptr: NonNull<u8>, layout: Layout, site: CallSite) -> AllocResult {
    let addr = ptr.addr().get();
    let pool = POOL.lock();
    let refusal = match live_slot(&pool, addr, layout) {
        Ok(_) => return Ok(()),
        Err(refusal) => refusal_report(&pool, refusal, layout),
    };
    drop(pool);
    let (kind, block, error) = refusal;
    report(kind, addr, site, block, Action::Refused);
    Err(error)
}

/// Frees a sampled block (`owns(ptr)`): checks the canary, unmaps the page
/// (a later access faults) and gives it back. A bad free is reported and
/// refused with its error.
pub fn free(ptr: NonNull<u8>, layout: Layout, site: CallSite) -> AllocResult {
    let addr = ptr.addr().get();
    let mut pool = POOL.lock();
    let index = match live_slot(&pool, addr, layout) {
        Ok(index) => index,
        Err(refusal) => {
            let (kind, block, error) = refusal_report(&pool, refusal, layout);
            drop(pool);
            report(kind, addr, site, block, Action::Refused);
            return Err(error);
        }
    };
    let slot = pool.slots[index];
    let va = data_page(index);
    let front = slot.info.start - va;
    // SAFETY: the page is mapped while the slot is live.
    let canary = unsafe { core::slice::from_raw_parts(va as *const u8, front) };
    // Read before the page is unmapped below.
    let damaged = canary
        .iter()
        .rposition(|&b| b != CANARY)
        .map(|at| (at, FoundBytes::new(&canary[at..at + 1])));
    pool.slots[index].state = State::Freed;
    pool.slots[index].info.free_site = site;
    pool.slots[index].info.free_time = super::config::clock();
    let info = pool.slots[index].info;
    let unmapped = paging::unmap_page(va);
    // A page that stays mapped must not be reused: it is kept then.
    let freed = unmapped.is_ok().then(|| pages::free_untraced(slot.page, 1));
    drop(pool);
    if let Ok(change) = unmapped {
        change.log();
    }
    if unmapped.is_err() || freed.is_some_and(|f| f.is_err()) {
        log::error!(
            "kfence: retiring slot {index}: unmap {unmapped:?}, page {:#x} given back {freed:?}",
            slot.page
        );
    }
    if let Some((at, found)) = damaged {
        let kind = ReportKind::RedZone {
            side: Side::Front,
            offset: at as isize - front as isize,
            expected: CANARY,
            found,
        };
        report(kind, addr, site, Some(info), Action::Repaired);
    }
    Ok(())
}

/// What a fault in the window hit, for the page-fault diagnosis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardHit {
    /// The block next to the fault (live or freed), if any.
    pub block: Option<BlockInfo>,
    /// Whether that block was already freed (a use after free).
    pub freed: bool,
    /// The fault's offset from the block start.
    pub offset: isize,
}

/// The sampled block a fault at `addr` concerns (`owns(addr)`): the one
/// whose page or guard it hit. Never waits for the pool lock.
pub fn hit(addr: usize) -> GuardHit {
    let slot = ((addr - WINDOW) / PAGE_SIZE).saturating_sub(1) / 2;
    let info = POOL
        .try_lock()
        .map(|pool| pool.slots[slot.min(SLOTS - 1)])
        .filter(|slot| slot.state != State::Empty);
    match info {
        Some(slot) => GuardHit {
            block: Some(slot.info),
            freed: slot.state == State::Freed,
            offset: addr as isize - slot.info.start as isize,
        },
        None => GuardHit {
            block: None,
            freed: false,
            offset: 0,
        },
    }
}

#[cfg(feature = "ktest")]
mod tests;
