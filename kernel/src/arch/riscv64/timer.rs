//! The periodic tick: each hart programs its next timer interrupt through
//! SBI `set_timer`, `interval` timebase ticks ahead (`timer_hz=` boot
//! argument). A test may install a hook the handler calls on every tick
//! (interrupt context, on whatever hart ticked).

use super::cpu;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use riscv::register::sie;

/// Timebase ticks between two interrupts; 0 = timer off.
static INTERVAL: AtomicU64 = AtomicU64::new(0);
/// A `fn()` called on every tick, or 0.
static HOOK: AtomicUsize = AtomicUsize::new(0);
/// Hook calls running right now (on any hart).
static HOOK_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Sets the rate for every hart (before any hart starts its timer).
pub fn configure(timebase_hz: u64, rate_hz: u32) {
    let interval = if rate_hz == 0 {
        0
    } else {
        (timebase_hz / u64::from(rate_hz)).max(1)
    };
    INTERVAL.store(interval, Ordering::Relaxed);
}

/// Sets the timebase ticks between two interrupts directly (to restore an
/// earlier [`interval`]); each hart picks it up at its next tick.
pub fn set_interval(interval: u64) {
    INTERVAL.store(interval, Ordering::Relaxed);
}

/// Timebase ticks between two interrupts (0 = off).
pub fn interval() -> u64 {
    INTERVAL.load(Ordering::Relaxed)
}

/// Arms the first tick on the calling hart and unmasks the timer interrupt
/// (interrupts themselves are enabled by the caller through sstatus.SIE).
pub fn start_on_this_hart() {
    let interval = interval();
    if interval == 0 {
        return;
    }
    let _ = sbi_rt::set_timer(cpu::ticks() + interval);
    // SAFETY: unmasking the timer source; the trap vector is installed.
    unsafe { sie::set_stimer() };
}

/// A kernel service run on every tick of every hart, after the hook (the
/// memory diagnostics' leak watch); set once at boot.
static SERVICE: AtomicUsize = AtomicUsize::new(0);

/// Installs the per-tick kernel service (see [`SERVICE`]).
pub fn set_service(service: fn()) {
    SERVICE.store(service as usize, Ordering::Release);
}

/// Installs (or with `None` removes) the per-tick hook. Returns once no
/// hart runs the previous hook any more, so its effects are complete (call
/// it from thread context, never from the hook).
pub fn set_hook(hook: Option<fn()>) {
    HOOK.store(hook.map_or(0, |f| f as usize), Ordering::SeqCst);
    while HOOK_RUNNING.load(Ordering::SeqCst) != 0 {
        core::hint::spin_loop();
    }
}

/// The supervisor timer interrupt: count, run the hook, re-arm. The next
/// tick is one interval after the handler ends (not after it began), so a
/// slow handler can never leave the interrupted code no time at all.
pub fn on_interrupt() {
    let hart = super::hart::current();
    hart.timer_ticks.fetch_add(1, Ordering::Relaxed);
    // Counted before the hook is read, so `set_hook` sees every call
    // that may have read the old hook.
    HOOK_RUNNING.fetch_add(1, Ordering::SeqCst);
    let hook = HOOK.load(Ordering::SeqCst);
    if hook != 0 {
        // SAFETY: `HOOK` only ever holds 0 or a `fn()` stored by `set_hook`.
        let hook: fn() = unsafe { core::mem::transmute::<usize, fn()>(hook) };
        hook();
    }
    HOOK_RUNNING.fetch_sub(1, Ordering::SeqCst);
    let service = SERVICE.load(Ordering::Acquire);
    if service != 0 {
        // SAFETY: `SERVICE` only ever holds 0 or a `fn()` stored by
        // `set_service`.
        let service: fn() = unsafe { core::mem::transmute::<usize, fn()>(service) };
        service();
    }
    let now = cpu::ticks();
    hart.last_tick_at.store(now, Ordering::Relaxed);
    let _ = sbi_rt::set_timer(now + interval().max(1));
}
