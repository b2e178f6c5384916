//! Fault injection in the kernel, in the manner of Linux's
//! `fail_page_alloc` and `failslab`: two [`FaultPolicy`]s (from the
//! `faultinject` crate), one consulted by every page allocation
//! (`memory::pages::alloc_for`), one by every small allocation through
//! the global allocator ([`slab_alloc_fails`], asked first,
//! before any memdebug layer). Each is set at boot
//! (`fail_page_alloc=`, `failslab=`, `*.filter=`, see `args.rs`) or at run
//! time ([`configure`], [`set_fail_nth`]).
//!
//! ```text
//!   pages::alloc_for(name, n) ──► should_fail(Site::Pages, name, n pages) ──► Err(NoMemory)
//!   GlobalAlloc::alloc(small) ──► should_fail(Site::Slab, cache name, size) ─► null
//! ```
//!
//! An unarmed site costs one relaxed atomic load; an armed one takes its
//! policy's `IrqSpinLock` (interrupts masked, so the timer handler may
//! allocate). Request names: page allocations say who asks (`heap`,
//! `pagetable`, `pages` for everyone else); heap requests name their
//! `kmalloc-N` class under `alloc=slab`, else the allocator (`tlsf`,
//! `buddy`).

use crate::memory::heap::HeapKind;
use crate::memory::hooks;
use crate::sync::IrqSpinLock;
use core::alloc::Layout;
use core::sync::atomic::{AtomicBool, Ordering};
use faultinject::{FaultConfig, FaultPolicy, Request};

/// Which allocation path a policy governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The page allocator (`fail_page_alloc`).
    Pages,
    /// The kernel heap's small blocks (`failslab`).
    Slab,
}

impl Site {
    pub const ALL: [Site; 2] = [Site::Pages, Site::Slab];

    pub fn name(self) -> &'static str {
        match self {
            Site::Pages => "fail_page_alloc",
            Site::Slab => "failslab",
        }
    }
}

/// The seed of the policies' coins (fixed: a run replays exactly).
const SEED: u64 = 0xfa11_5eed;

struct SitePolicy {
    policy: IrqSpinLock<FaultPolicy>,
    /// Whether the policy could fail anything (probability > 0 or a
    /// pending fail-nth): the allocation paths' only check, kept in the
    /// memory core's hooks so they test it before calling in here.
    armed: &'static AtomicBool,
}

static SITES: [SitePolicy; 2] = [
    SitePolicy {
        policy: IrqSpinLock::new("fail_page_alloc", FaultPolicy::new(FaultConfig::OFF, SEED)),
        armed: &hooks::FAIL_PAGE_ALLOC_ARMED,
    },
    SitePolicy {
        policy: IrqSpinLock::new("failslab", FaultPolicy::new(FaultConfig::OFF, SEED ^ 1)),
        armed: &hooks::FAIL_HEAP_ALLOC_ARMED,
    },
];

fn site(which: Site) -> &'static SitePolicy {
    &SITES[which as usize]
}

fn rearm(site: &SitePolicy, policy: &FaultPolicy) {
    let config = policy.config();
    let armed = policy.fail_nth_pending() || (config.probability > 0 && config.times != 0);
    site.armed.store(armed, Ordering::Release);
}

/// Replaces a site's configuration (its counters are kept).
pub fn configure(which: Site, config: FaultConfig) {
    let site = site(which);
    let mut policy = site.policy.lock();
    policy.configure(config);
    rearm(site, &policy);
}

/// The site's configuration.
pub fn config(which: Site) -> FaultConfig {
    site(which).policy.lock().config()
}

/// Fails exactly the `n`-th eligible allocation at the site from now
/// (1 = the next one); 0 disarms. Overrides the probability until it fired.
pub fn set_fail_nth(which: Site, n: u64) {
    let site = site(which);
    let mut policy = site.policy.lock();
    policy.set_fail_nth(n);
    rearm(site, &policy);
}

/// Whether a `fail_nth` set at the site has not fired yet.
pub fn fail_nth_pending(which: Site) -> bool {
    site(which).policy.lock().fail_nth_pending()
}

/// Failures injected at the site since boot.
pub fn injected(which: Site) -> u64 {
    site(which).policy.lock().injected()
}

/// Turns both sites off (configuration and pending fail-nth).
pub fn disarm_all() {
    for which in Site::ALL {
        configure(which, FaultConfig::OFF);
        set_fail_nth(which, 0);
    }
}

/// Whether the site fails this request. `request` is only built when the
/// site is armed: an unarmed site costs the allocation paths one load.
#[inline(always)]
fn should_fail<'a>(which: Site, request: impl FnOnce() -> Request<'a>) -> bool {
    let site = site(which);
    if !site.armed.load(Ordering::Acquire) {
        return false;
    }
    fail_armed(site, request())
}

#[cold]
fn fail_armed(site: &SitePolicy, request: Request<'_>) -> bool {
    let mut policy = site.policy.lock();
    let fail = policy.should_fail(request);
    rearm(site, &policy);
    fail
}

/// `fail_page_alloc`: whether a request of `count` pages by `name` fails.
pub fn page_alloc_fails(name: &str, count: usize, page_size: usize) -> bool {
    should_fail(Site::Pages, || Request {
        name,
        bytes: count.saturating_mul(page_size),
        order: count.max(1).next_power_of_two().ilog2(),
    })
}

/// `failslab`: whether a small request through the global allocator fails.
/// The global allocator asks before anything else (as Linux's
/// `should_failslab` comes first), so no layer in between, e.g. memdebug
/// retrying after emptying its quarantine, can absorb the failure.
pub fn slab_alloc_fails(layout: Layout) -> bool {
    should_fail(Site::Slab, || Request {
        name: crate::memory::heap::kind().map_or("heap", |kind| cache_name(kind, layout)),
        bytes: layout.size(),
        order: 0,
    })
}

/// The cache a small request goes to: the `kmalloc` class (as kalloc's
/// slab picks it: big enough, aligned enough) or the byte allocator.
pub fn cache_name(kind: HeapKind, layout: Layout) -> &'static str {
    match kind {
        HeapKind::Slab => kalloc::byte::kmalloc_cache_name(layout).unwrap_or("tlsf"),
        HeapKind::Tlsf => "tlsf",
        HeapKind::Buddy => "buddy",
    }
}

/// Whether the boot arguments configured each site (stress mode keeps
/// such settings, even "off", instead of its default).
static SET_AT_BOOT: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Whether a boot argument configured the site.
pub fn set_at_boot(which: Site) -> bool {
    SET_AT_BOOT[which as usize].load(Ordering::Relaxed)
}

/// Applies the boot arguments' settings (`fail_page_alloc=`, `failslab=`).
pub fn init(pages: Option<FaultConfig>, slab: Option<FaultConfig>) {
    for (which, config) in [(Site::Pages, pages), (Site::Slab, slab)] {
        if let Some(config) = config {
            configure(which, config);
            SET_AT_BOOT[which as usize].store(true, Ordering::Relaxed);
            log::warn!(
                "fault injection: {} on (interval {}, probability {}%, space {}, times {}, min_order {}, filter {:?})",
                which.name(),
                config.interval,
                config.probability,
                config.space,
                config.times,
                config.min_order,
                config.filter
            );
        }
    }
}

#[cfg(feature = "ktest")]
#[allow(
    unsafe_code,
    reason = "the tests allocate raw blocks to see injected failures"
)]
mod tests;
