//! Bringing up the other harts and running work on all of them.
//!
//! The boot hart gives each hart the device tree lists a stack (with an
//! unmapped guard page below it, see `memory::stacks`) and starts it with
//! SBI HSM `hart_start` at the physical address of `rvos_secondary_start`
//! (in `entry`), passing the stack top as the opaque argument. The hart
//! enables the boot table, installs its `HartLocal`, its trap vector, the
//! kernel page table and its timer, enables interrupts, and waits in
//! [`idle`] for jobs from [`run_on_all_harts`], woken by an IPI.

use super::hart;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use riscv::register::{sip, sstatus};

unsafe extern "C" {
    /// The secondary harts' entry code (`entry.rs`), started with paging off.
    fn rvos_secondary_start();
}

/// The job every hart runs: a `fn(slot)` as usize, or 0.
static JOB: AtomicUsize = AtomicUsize::new(0);
/// Bumped once per job.
static JOB_GENERATION: AtomicUsize = AtomicUsize::new(0);
/// Secondary harts that finished the current job.
static JOB_DONE: AtomicUsize = AtomicUsize::new(0);
static JOB_RUNNING: AtomicBool = AtomicBool::new(false);

/// Why a hart did not start.
#[derive(Clone, Copy, Debug)]
pub struct StartError {
    pub hart_id: usize,
    pub reason: StartFailure,
}

#[derive(Clone, Copy, Debug)]
pub enum StartFailure {
    /// SBI `hart_start` returned this error code.
    Sbi(isize),
    /// The hart was started but did not reach `secondary_main` in time.
    NeverOnline,
}

impl core::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Sbi(code) => write!(f, "SBI hart_start failed with error {code}"),
            Self::NeverOnline => write!(f, "started, but not online after {START_TIMEOUT_MS} ms"),
        }
    }
}

/// How long a started hart may take to come online.
const START_TIMEOUT_MS: u64 = 2000;

/// SBI HSM hart state "stopped" (SBI specification, HSM chapter, hart
/// states table).
const HSM_STOPPED: usize = 1;

/// Starts the hart in `slot` (described with `hart::describe`) and waits
/// until it is online. A hart that the firmware let into `_start` behind
/// our back stops itself there (the boot lottery in `entry`); if it did so
/// after taking our start request, it is stopped again by the deadline, so
/// it gets one more start.
pub fn start(slot: usize) -> Result<(), StartError> {
    let block = &hart::HARTS[slot];
    let hart_id = block.hart_id();
    let entry = super::virt_to_phys(rvos_secondary_start as *const () as usize);
    let stack_top_phys = super::virt_to_phys(block.stack().end);
    let timeout = crate::platform::get().timebase_hz * START_TIMEOUT_MS / 1000;
    for attempt in 0..2 {
        log::debug!(
            "hart {hart_id} (slot {slot}): SBI hart_start at {entry:#x}, stack {:#x}..{:#x}",
            block.stack().start,
            block.stack().end
        );
        let started = super::cpu::ticks();
        let ret = sbi_rt::hart_start(hart_id, entry, stack_top_phys);
        if ret.error != 0 {
            return Err(StartError {
                hart_id,
                reason: StartFailure::Sbi(ret.error as isize),
            });
        }
        if super::cpu::spin_until(timeout, || block.is_online()) {
            let hz = crate::platform::get().timebase_hz.max(1);
            log::debug!(
                "hart {hart_id} online after {} us: own stack, trap stack, kernel page table, \
                 timer and interrupts on",
                (super::cpu::ticks() - started) * 1_000_000 / hz
            );
            return Ok(());
        }
        let status = sbi_rt::hart_get_status(hart_id);
        if attempt > 0 || status.error != 0 || status.value != HSM_STOPPED {
            break;
        }
        log::warn!("hart {hart_id} stopped instead of coming online; starting it again");
    }
    Err(StartError {
        hart_id,
        reason: StartFailure::NeverOnline,
    })
}

/// First Rust code of a secondary hart (high half, its own stack).
pub fn secondary_main(hart_id: usize) -> ! {
    let slot = hart::HARTS
        .iter()
        .position(|h| h.hart_id() == hart_id)
        .expect("the boot hart described every hart it starts");
    hart::install(slot);
    super::trap::install();
    super::trap::use_trap_stack();
    crate::memory::paging::switch_this_hart();
    enable_interrupts_on_this_hart();
    hart::current().set_online();
    idle(slot)
}

/// Waits for jobs forever.
fn idle(slot: usize) -> ! {
    let mut seen = JOB_GENERATION.load(Ordering::Acquire);
    loop {
        // With SIE off, `wfi` still wakes on a pending interrupt, and the
        // check below cannot miss an IPI that arrives before the `wfi`.
        // SAFETY: masks interrupts on this hart only.
        unsafe { sstatus::clear_sie() };
        let generation = JOB_GENERATION.load(Ordering::Acquire);
        if generation == seen {
            riscv::asm::wfi();
        }
        // SAFETY: the trap vector is installed.
        unsafe { sstatus::set_sie() };
        if generation != seen {
            seen = generation;
            let job = JOB.load(Ordering::Acquire);
            // SAFETY: `JOB` holds a `fn(usize)` stored by `run_on_all_harts`
            // before it bumped the generation.
            let job: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(job) };
            job(slot);
            JOB_DONE.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// The kernel service an IPI runs (the global allocator answering a
/// request to drain this hart's caches); set once at boot.
static IPI_SERVICE: AtomicUsize = AtomicUsize::new(0);

/// Installs the IPI service (see [`IPI_SERVICE`]).
pub fn set_ipi_service(service: fn()) {
    IPI_SERVICE.store(service as usize, Ordering::Release);
}

/// The supervisor software interrupt: a wake-up (for [`idle`]) and a
/// request for the IPI service.
pub fn on_software_interrupt() {
    // SAFETY: clearing our own pending bit, before the service runs, so a
    // request sent while it runs raises the interrupt again.
    unsafe { sip::clear_ssoft() };
    let service = IPI_SERVICE.load(Ordering::Acquire);
    if service != 0 {
        // SAFETY: `IPI_SERVICE` holds a `fn()` stored by `set_ipi_service`.
        let service: fn() = unsafe { core::mem::transmute::<usize, fn()>(service) };
        service();
    }
}

/// Interrupts the online hart in `slot` (an IPI), if it is not the caller.
pub fn kick(slot: usize) {
    let target = &hart::HARTS[slot];
    if target.is_online() && Some(slot) != hart::try_current().map(hart::HartLocal::slot) {
        let _ = sbi_rt::send_ipi(sbi_rt::HartMask::from_mask_base(1, target.hart_id()));
    }
}

/// Runs `job(slot)` on every online hart, the caller included, and
/// returns when all have finished. One job at a time (panics otherwise).
pub fn run_on_all_harts(job: fn(usize)) {
    assert!(
        !JOB_RUNNING.swap(true, Ordering::AcqRel),
        "run_on_all_harts does not nest"
    );
    let me = hart::current();
    let others: usize = hart::online().filter(|h| h.slot() != me.slot()).count();
    JOB_DONE.store(0, Ordering::Release);
    JOB.store(job as usize, Ordering::Release);
    JOB_GENERATION.fetch_add(1, Ordering::AcqRel);
    wake_others();
    job(me.slot());
    while JOB_DONE.load(Ordering::Acquire) < others {
        core::hint::spin_loop();
    }
    JOB_RUNNING.store(false, Ordering::Release);
}

/// Sends an IPI to every online hart but the caller.
fn wake_others() {
    let me = hart::current().hart_id();
    for other in hart::online().filter(|h| h.hart_id() != me) {
        let _ = sbi_rt::send_ipi(sbi_rt::HartMask::from_mask_base(1, other.hart_id()));
    }
}

/// Number of harts running kernel code.
pub fn online_count() -> usize {
    hart::online().count()
}

/// Unmasks the timer and software interrupts, arms this hart's timer and
/// enables interrupts (sstatus.SIE): normal kernel execution from now on.
pub fn enable_interrupts_on_this_hart() {
    // SAFETY: unmasking the cross-hart wake-up source; the vector is set.
    unsafe { riscv::register::sie::set_ssoft() };
    super::timer::start_on_this_hart();
    // SAFETY: the trap vector handles every unmasked source.
    unsafe { riscv::register::sstatus::set_sie() };
}

#[cfg(feature = "ktest")]
mod tests;
