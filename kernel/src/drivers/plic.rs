//! The RISC-V Platform-Level Interrupt Controller (`riscv,plic0`,
//! `sifive,plic-1.0.0`): routes device interrupts (the UART's receive
//! interrupt) to the supervisor-mode context of a chosen hart.
//!
//! Everything comes from the device tree: the register block, the number
//! of sources (`riscv,ndev`) and, from `interrupts-extended`, which context
//! is the S-mode (`irq 9`) context of which hart. Register map (one
//! 32-bit word each):
//!
//! ```text
//!   base + 4*src                          priority of source src (0 = never)
//!   base + 0x2000   + 0x80*ctx + 4*(src/32) enable bits of context ctx
//!   base + 0x20_0000 + 0x1000*ctx          threshold of context ctx
//!   base + 0x20_0000 + 0x1000*ctx + 4      claim (read) / complete (write)
//! ```
//!
//! Invariants: every S-mode context has threshold 0 and only the sources
//! [`route`] enabled; a source is enabled on exactly one hart, so one
//! claim per interrupt; a handler runs with the source claimed and is
//! completed after it returns, so a level-triggered source that is still
//! asserted interrupts again instead of being lost.

use crate::platform::{self, MAX_HARTS, PlatformError};
use crate::sync::BootCell;
use core::fmt;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use fdt::Fdt;

const ENABLE_BASE: usize = 0x2000;
const ENABLE_STRIDE: usize = 0x80;
const CONTEXT_BASE: usize = 0x20_0000;
const CONTEXT_STRIDE: usize = 0x1000;
/// Sources this driver can dispatch (QEMU `virt` has 96 at most).
pub const MAX_SOURCES: usize = 128;
/// The cause number of the supervisor external interrupt in
/// `interrupts-extended` (and scause).
const S_EXTERNAL: u32 = 9;

/// A PLIC as the device tree describes it.
#[derive(Clone, Copy, Debug)]
pub struct Plic {
    /// Virtual address of the register block (linear map).
    base: usize,
    /// Highest source number (`riscv,ndev`); sources are `1..=sources`.
    sources: usize,
    /// `(hart id, S-mode context)` of every hart with one.
    contexts: [(usize, usize); MAX_HARTS],
    context_count: usize,
}

/// Why the PLIC cannot be used.
#[derive(Clone, Copy, Debug)]
pub enum PlicError {
    NotFound,
    Platform(PlatformError),
    /// `interrupts-extended` is missing or not a list of (phandle, cause).
    BadContexts,
    /// The source number is 0 or beyond `riscv,ndev` (or this driver).
    BadSource(usize),
    /// The hart has no S-mode context.
    NoContext {
        hart_id: usize,
    },
}

impl fmt::Display for PlicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("the device tree has no riscv,plic0 node"),
            Self::Platform(error) => write!(f, "{error}"),
            Self::BadContexts => f.write_str("PLIC interrupts-extended is malformed"),
            Self::BadSource(source) => write!(f, "interrupt source {source} does not exist"),
            Self::NoContext { hart_id } => {
                write!(f, "hart {hart_id} has no supervisor context on the PLIC")
            }
        }
    }
}

impl From<PlatformError> for PlicError {
    fn from(error: PlatformError) -> Self {
        Self::Platform(error)
    }
}

fn be_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// The hart id owning the interrupt-controller node with `phandle`.
fn hart_of_intc(fdt: &Fdt<'static>, phandle: u32) -> Option<usize> {
    let cpus = fdt.find_node("/cpus")?;
    cpus.children().find_map(|cpu| {
        let owns = cpu.children().any(|intc| {
            ["phandle", "linux,phandle"]
                .iter()
                .filter_map(|name| intc.property(name))
                .any(|p| be_u32(p.value) == Some(phandle))
        });
        owns.then(|| cpu.property("reg").and_then(|p| p.as_usize()))
            .flatten()
    })
}

impl Plic {
    /// Finds the PLIC in the device tree and checks it lies in the kernel's
    /// device mappings.
    pub fn discover(fdt: &Fdt<'static>) -> Result<Self, PlicError> {
        let node = fdt
            .find_compatible(&["riscv,plic0", "sifive,plic-1.0.0"])
            .ok_or(PlicError::NotFound)?;
        let reg = node
            .reg()
            .and_then(|mut r| r.next())
            .ok_or(PlicError::NotFound)?;
        let phys = reg.starting_address as usize;
        let size = reg.size.unwrap_or(0);
        platform::check_mapped("PLIC registers", platform::region("PLIC", phys, size)?)?;
        let sources = node
            .property("riscv,ndev")
            .and_then(|p| p.as_usize())
            .unwrap_or(0)
            .min(MAX_SOURCES - 1);
        let cells = node
            .property("interrupts-extended")
            .ok_or(PlicError::BadContexts)?
            .value;
        if cells.is_empty() || !cells.len().is_multiple_of(8) {
            return Err(PlicError::BadContexts);
        }
        let mut plic = Plic {
            base: crate::arch::phys_to_virt(phys),
            sources,
            contexts: [(0, 0); MAX_HARTS],
            context_count: 0,
        };
        for (context, pair) in cells.chunks_exact(8).enumerate() {
            let (phandle, cause) = (be_u32(pair), be_u32(&pair[4..]));
            if cause != Some(S_EXTERNAL) || plic.context_count == MAX_HARTS {
                continue;
            }
            let hart_id = phandle
                .and_then(|p| hart_of_intc(fdt, p))
                .ok_or(PlicError::BadContexts)?;
            plic.contexts[plic.context_count] = (hart_id, context);
            plic.context_count += 1;
        }
        Ok(plic)
    }

    /// `(hart id, S-mode context)` pairs.
    pub fn contexts(&self) -> &[(usize, usize)] {
        &self.contexts[..self.context_count]
    }

    /// Number of interrupt sources.
    pub fn sources(&self) -> usize {
        self.sources
    }

    fn context_of(&self, hart_id: usize) -> Result<usize, PlicError> {
        self.contexts()
            .iter()
            .find(|(hart, _)| *hart == hart_id)
            .map(|(_, context)| *context)
            .ok_or(PlicError::NoContext { hart_id })
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `discover` checked the register block lies in the
        // kernel's device mappings; offsets stay inside the documented map.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Threshold 0 and every source disabled on every S-mode context.
    fn reset(&self) {
        for &(_, context) in self.contexts() {
            for word in 0..=self.sources / 32 {
                self.write(ENABLE_BASE + ENABLE_STRIDE * context + 4 * word, 0);
            }
            self.write(CONTEXT_BASE + CONTEXT_STRIDE * context, 0);
        }
    }
}

static PLIC: BootCell<Plic> = BootCell::new();
/// `fn()` handler per source, as usize (0 = none).
static HANDLERS: [AtomicUsize; MAX_SOURCES] = [const { AtomicUsize::new(0) }; MAX_SOURCES];
/// Interrupts handled per source.
static COUNTS: [AtomicU64; MAX_SOURCES] = [const { AtomicU64::new(0) }; MAX_SOURCES];
/// Claims that returned a source without a handler.
static SPURIOUS: AtomicU64 = AtomicU64::new(0);

/// Installs the PLIC with every source disabled.
pub fn init(plic: Plic) -> &'static Plic {
    plic.reset();
    log::debug!(
        "PLIC at {:#x}: {} sources; S-contexts (hart, context) {:?}; all disabled, threshold 0",
        crate::arch::virt_to_phys(plic.base),
        plic.sources,
        plic.contexts()
    );
    PLIC.set(plic)
}

/// The installed PLIC, if any.
pub fn get() -> Option<&'static Plic> {
    PLIC.get()
}

/// Sends `source` to `hart_id` (priority 1) and runs `handler` for it in
/// interrupt context on that hart. The hart must unmask external
/// interrupts (`sie.SEIE`) itself.
pub fn route(source: usize, hart_id: usize, handler: fn()) -> Result<(), PlicError> {
    let plic = get().ok_or(PlicError::NotFound)?;
    if source == 0 || source > plic.sources {
        return Err(PlicError::BadSource(source));
    }
    let context = plic.context_of(hart_id)?;
    HANDLERS[source].store(handler as usize, Ordering::Release);
    plic.write(4 * source, 1);
    let enable = ENABLE_BASE + ENABLE_STRIDE * context + 4 * (source / 32);
    plic.write(enable, plic.read(enable) | 1 << (source % 32));
    log::debug!(
        "irq {source} -> hart {hart_id} (S-context {context}): priority 1, enabled on that \
         context only, threshold 0"
    );
    Ok(())
}

/// Interrupts handled for `source` so far.
pub fn count(source: usize) -> u64 {
    COUNTS.get(source).map_or(0, |c| c.load(Ordering::Relaxed))
}

/// Claims that named no handled source.
pub fn spurious() -> u64 {
    SPURIOUS.load(Ordering::Relaxed)
}

/// The supervisor external interrupt: claim, run the handler, complete,
/// until this hart's context has nothing pending.
pub fn on_external_interrupt() {
    let Some(plic) = get() else {
        SPURIOUS.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Some(hart_id) = crate::arch::hart::current_id() else {
        return;
    };
    let Ok(context) = plic.context_of(hart_id) else {
        return;
    };
    let claim = CONTEXT_BASE + CONTEXT_STRIDE * context + 4;
    loop {
        let source = plic.read(claim) as usize;
        if source == 0 {
            break;
        }
        match HANDLERS.get(source).map(|h| h.load(Ordering::Acquire)) {
            Some(handler) if handler != 0 => {
                // SAFETY: `HANDLERS` only holds 0 or a `fn()` stored by
                // `route`.
                let handler: fn() = unsafe { core::mem::transmute::<usize, fn()>(handler) };
                handler();
                COUNTS[source].fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                SPURIOUS.fetch_add(1, Ordering::Relaxed);
            }
        }
        plic.write(claim, source as u32);
    }
}

#[cfg(feature = "ktest")]
mod tests {
    use super::*;
    use crate::ktest::prelude::*;

    ktest! {
        fn every_hart_has_a_supervisor_context() {
            let platform = crate::platform::get();
            let plic = Plic::discover(&platform.fdt).map_err(|e| {
                crate::ktest::Failure::new(format_args!("PLIC discover: {e}"))
            })?;
            kassert!(plic.sources() > 0, "riscv,ndev is 0");
            for &hart in platform.hart_ids() {
                kassert!(plic.context_of(hart).is_ok(), "hart {hart} has no S context");
            }
            let mut contexts = [0usize; MAX_HARTS];
            for (slot, &(_, context)) in plic.contexts().iter().enumerate() {
                kassert!(!contexts[..slot].contains(&context), "context {context} given twice");
                contexts[slot] = context;
            }
            Ok(())
        }
    }
}
