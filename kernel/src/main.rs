//! RVOS: a RISC-V 64 kernel for QEMU `virt` whose memory subsystem is meant
//! to be read. This file is the boot sequence after the architecture entry
//! code (`arch::riscv64::entry`) has switched to the high half: discover the
//! platform, start the console and logging, compute and print the memory
//! layout, start the other harts and the serial input, then run the
//! in-kernel tests (`ktest` build) or the interactive monitor (`shell`).

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod args;
mod console;
mod drivers;
mod input;
mod ktest;
mod memdiag;
mod memory;
mod panic;
mod platform;
mod power;
#[cfg(not(feature = "ktest"))]
mod shell;
mod sync;

use drivers::{ns16550a::Ns16550a, sifive_test::SifiveTest};
use log::{debug, error, info, warn};
use power::FailureCode;

/// Boot hart, high half, boot stack, `.bss` cleared, traps vectored.
pub fn kernel_main(hart_id: usize, dtb_phys: usize) -> ! {
    memory::stacks::paint_boot_stack();
    let platform = match platform::discover(dtb_phys) {
        Ok(platform) => platform,
        Err(error) => {
            // No UART yet: this goes out through the SBI console.
            println!("FATAL: device tree at {dtb_phys:#x}: {error}");
            if let Some(finisher) = platform::emergency_finisher(dtb_phys) {
                // SAFETY: a `sifive,test` node of the device tree, inside the
                // linear map (checked by `emergency_finisher`).
                power::init(unsafe { SifiveTest::new(arch::phys_to_virt(finisher.base)) });
            }
            power::fail(FailureCode::Platform)
        }
    };
    let uart = platform.uart;
    // SAFETY: the device tree names this NS16550A; its registers lie in the
    // boot table's linear map (checked by `discover`), and only the console
    // drives it.
    console::init(
        unsafe { Ns16550a::new(arch::phys_to_virt(uart.base), uart.reg_shift, uart.io_width) },
        uart.clock_hz,
    );
    if let Some(finisher) = platform.finisher {
        // SAFETY: the device tree names this `sifive,test` device and
        // `discover` checked it lies in the linear map.
        power::init(unsafe { SifiveTest::new(arch::phys_to_virt(finisher.base)) });
    }
    let args = match args::parse(platform.bootargs) {
        Ok(args) => args,
        Err(error) => {
            println!("FATAL: {error} (in {:?})", platform.bootargs);
            power::fail(FailureCode::BootArgs)
        }
    };
    console::init_logging(&args.log, platform.timebase_hz);
    memdiag::ratelimit::configure(args.ratelimit_seconds, args.ratelimit_burst);

    info!(
        "RVOS {} on {}; boot hart {hart_id} of {} {:?}; timebase {} Hz",
        env!("CARGO_PKG_VERSION"),
        platform.model,
        platform.hart_ids().len(),
        platform.hart_ids(),
        platform.timebase_hz
    );
    info!("boot args {:?}", platform.bootargs);
    debug!("console {} at {:#x}", uart.path_name, uart.base);
    args::log_parsed(platform.bootargs, &args);
    if platform.ram_unreachable > 0 {
        warn!(
            "{} of RAM lies beyond the boot map's first {} GiB and stays unused",
            memory::Size(platform.ram_unreachable),
            arch::boot_page_table::LINEAR_MAP_BYTES >> 30
        );
    }
    if platform.finisher.is_none() {
        warn!("no sifive,test device: exit status will be lost");
    }
    for key in args::unknown_keys(platform.bootargs) {
        warn!("unknown boot argument `{key}` ignored");
    }
    let layout = match memory::layout::compute(platform) {
        Ok(layout) => layout,
        Err(error) => {
            println!("FATAL: memory layout: {error}");
            power::fail(FailureCode::Platform)
        }
    };
    memory::layout::print(platform, layout);

    memdiag::install();
    memory::pages::init(args.page_allocator);
    memdiag::badmem::init(&args.badmem);
    memdiag::debug::init(args.memdebug, platform.timebase_hz);
    memory::global::init(args.heap);
    arch::smp::set_ipi_service(memory::serve_drain_requests);
    arch::timer::configure(platform.timebase_hz, args.timer_hz);
    start_harts(platform);
    if let Err(error) = input::start() {
        warn!(
            "no interrupt-driven serial input ({error}): the monitor polls the UART on each timer tick"
        );
    }
    // Injected faults start once the boot allocations are done.
    memdiag::inject::init(args.fail_page_alloc, args.failslab);
    memory::stacks::record_boot_depth();
    let stats = memdiag::stats::get_memory_stats();
    info!(
        "memory: {} of {} pages free, largest free run {} pages; `meminfo` at the prompt, \
         log=debug for the snapshot",
        stats.free_pages() + stats.listed_pages,
        stats.total_pages(),
        stats.pages.largest_free_run
    );
    debug!("memory:\n{stats}");

    #[cfg(feature = "ktest")]
    if let Some(seconds) = args.stress_seconds {
        memdiag::stress::run_and_power_off(seconds, args.stress_seed, args.stress_free_pages)
    }
    #[cfg(feature = "ktest")]
    ktest::run(args.test);

    #[cfg(not(feature = "ktest"))]
    shell::run(args.cmds)
}

/// Gives every other hart a stack and starts it; then starts this hart's
/// timer and enables interrupts here too.
fn start_harts(platform: &platform::Platform) {
    let boot_id = arch::hart::current().hart_id();
    let others = || {
        platform
            .hart_ids()
            .iter()
            .copied()
            .filter(move |&id| id != boot_id)
            .enumerate()
            .map(|(index, id)| (index + 1, id))
    };
    if let Err(error) = memory::stacks::allocate(others()) {
        println!("FATAL: no memory for the hart stacks: {error}");
        power::fail(FailureCode::Platform)
    }
    arch::trap::use_trap_stack();
    match memory::kernel_map::plan() {
        Ok(plan) => {
            if let Err(error) = memory::paging::install_kernel_table(&plan) {
                println!("FATAL: kernel page table: {error}");
                power::fail(FailureCode::Platform)
            }
        }
        Err(error) => {
            println!("FATAL: kernel address space: {error}");
            power::fail(FailureCode::Platform)
        }
    }
    arch::smp::enable_interrupts_on_this_hart();
    arch::hart::current().set_online();
    for (slot, _) in others() {
        if let Err(failure) = arch::smp::start(slot) {
            error!(
                "hart {} (slot {slot}) did not start: {}",
                failure.hart_id, failure.reason
            );
        }
    }
    let entrants = arch::entry::BOOT_LOTTERY.load(core::sync::atomic::Ordering::Relaxed);
    if entrants > 1 {
        warn!(
            "{entrants} harts entered the kernel at _start; all but the boot hart stopped themselves there"
        );
    }
    info!(
        "{} harts online; timer {} Hz ({} timebase ticks)",
        arch::smp::online_count(),
        args_timer_hz(platform),
        arch::timer::interval()
    );
}

fn args_timer_hz(platform: &platform::Platform) -> u64 {
    platform
        .timebase_hz
        .checked_div(arch::timer::interval())
        .unwrap_or(0)
}
