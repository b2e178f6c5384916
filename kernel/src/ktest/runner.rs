//! Runs the registered tests (the `ktest` build's boot path) and the
//! deliberate crashes `cargo xtask test` uses to check that panics and fatal
//! traps reach the host as failures.

use super::TestResult;
use crate::power::{self, FailureCode};
use crate::println;
use crate::sync::BootCell;
use core::fmt;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// One registered test.
#[repr(C)]
pub struct KernelTest {
    /// `module::path::name`, without the crate name.
    pub name: &'static str,
    pub run: fn() -> TestResult,
}

unsafe extern "C" {
    static __ktest_start: u8;
    static __ktest_end: u8;
}

/// Every registered test, in link order.
fn registry() -> &'static [KernelTest] {
    let start = (&raw const __ktest_start).cast::<KernelTest>();
    let end = (&raw const __ktest_end).cast::<KernelTest>();
    let len = (end as usize - start as usize) / core::mem::size_of::<KernelTest>();
    // SAFETY: the linker script places only `KernelTest` statics (emitted by
    // `ktest!`) between the two symbols, contiguously and 8-aligned, and
    // the section is never written.
    unsafe { core::slice::from_raw_parts(start, len) }
}

/// Deliberate failures for checking the exit path end to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// A test that panics: exit status `FailureCode::Panic`.
    Panic,
    /// A test that executes an illegal instruction: `FailureCode::FatalTrap`.
    Trap,
    /// A test whose allocation fails with nobody handling it: the alloc
    /// error diagnosis, then `FailureCode::Panic`.
    Oom,
    /// A test that writes to `.rodata` with no fault expected: the
    /// page-fault diagnosis, then `FailureCode::FatalTrap`.
    Rodata,
    /// A test that takes two locks in both orders: ksync's lock-order
    /// validation names the inversion, then `FailureCode::Panic`.
    LockOrder,
}

/// Boot arguments of the test build.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestArgs {
    /// `ktest.filter=TEXT`: run only tests whose name contains TEXT.
    pub filter: Option<&'static str>,
    /// `ktest.crash=...`: run one deliberately crashing test instead.
    pub crash: Option<Crash>,
    /// `ktest.harts=N`: the hart count QEMU was started with.
    pub expect_harts: Option<usize>,
    /// `ktest.mem=BYTES`: the RAM size QEMU was started with.
    pub expect_mem: Option<u64>,
}

static ARGS: BootCell<TestArgs> = BootCell::new();

/// The test build's boot arguments (for tests that compare against them).
pub fn args() -> TestArgs {
    ARGS.get().copied().unwrap_or_default()
}

#[allow(clippy::result_large_err, reason = "signature of every test")]
fn deliberate_panic() -> TestResult {
    panic!("deliberate panic (ktest.crash=panic)");
}

#[allow(clippy::result_large_err, reason = "signature of every test")]
fn deliberate_illegal_instruction() -> TestResult {
    // SAFETY: the trap handler turns the exception into a reported failure;
    // control never returns.
    unsafe { crate::arch::cpu::raise_illegal_instruction() };
    Ok(())
}

#[allow(clippy::result_large_err, reason = "signature of every test")]
fn deliberate_unhandled_allocation_failure() -> TestResult {
    // More than any machine this runs on has: the page allocator refuses,
    // and `Vec` hands the failure to Rust's alloc error path.
    let hoard: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(1 << 40);
    core::hint::black_box(&hoard);
    Ok(())
}

#[allow(clippy::result_large_err, reason = "signature of every test")]
fn deliberate_write_to_rodata() -> TestResult {
    static READ_ONLY: u64 = 0x5a5a;
    let addr = core::hint::black_box(&raw const READ_ONLY).cast_mut();
    // SAFETY: none: the store faults (the page is mapped read-only) and
    // the trap handler stops the kernel with its diagnosis.
    unsafe { addr.write_volatile(0) };
    Ok(())
}

#[allow(clippy::result_large_err, reason = "signature of every test")]
fn deliberate_lock_order_inversion() -> TestResult {
    use crate::sync::IrqSpinLock;
    static FIRST: IrqSpinLock<()> = IrqSpinLock::new("deliberate first", ());
    static SECOND: IrqSpinLock<()> = IrqSpinLock::new("deliberate second", ());
    {
        let _first = FIRST.lock();
        let _second = SECOND.lock();
    }
    // The opposite order cannot deadlock here (one hart), but on two harts
    // it could: the validation stops the kernel before the second lock.
    let _second = SECOND.lock();
    let _first = FIRST.lock();
    Ok(())
}

static LOCK_ORDER_TEST: [KernelTest; 1] = [KernelTest {
    name: "ktest::deliberate_lock_order_inversion",
    run: deliberate_lock_order_inversion,
}];

static RODATA_TEST: [KernelTest; 1] = [KernelTest {
    name: "ktest::deliberate_write_to_rodata",
    run: deliberate_write_to_rodata,
}];

static OOM_TEST: [KernelTest; 1] = [KernelTest {
    name: "ktest::deliberate_unhandled_allocation_failure",
    run: deliberate_unhandled_allocation_failure,
}];

static PANIC_TEST: [KernelTest; 1] = [KernelTest {
    name: "ktest::deliberate_panic",
    run: deliberate_panic,
}];
static TRAP_TEST: [KernelTest; 1] = [KernelTest {
    name: "ktest::deliberate_illegal_instruction",
    run: deliberate_illegal_instruction,
}];

/// Runs the tests selected by `args`, prints the summary and powers off.
pub fn run(args: TestArgs) -> ! {
    ARGS.set(args);
    let tests: &'static [KernelTest] = match args.crash {
        Some(Crash::Panic) => &PANIC_TEST,
        Some(Crash::Trap) => &TRAP_TEST,
        Some(Crash::Oom) => &OOM_TEST,
        Some(Crash::Rodata) => &RODATA_TEST,
        Some(Crash::LockOrder) => &LOCK_ORDER_TEST,
        None => registry(),
    };
    let selected = |test: &&KernelTest| args.filter.is_none_or(|f| test.name.contains(f));
    let count = tests.iter().filter(selected).count();
    let skipped = tests.len() - count;
    STATE.selected.store(count, Ordering::Relaxed);
    println!("running {count} kernel tests");
    for test in tests.iter().filter(selected) {
        STATE
            .current
            .store(core::ptr::from_ref(test).cast_mut(), Ordering::Release);
        crate::print!("test {} ... ", test.name);
        let started = crate::arch::cpu::ticks();
        let outcome = (test.run)();
        let took = Duration(crate::arch::cpu::ticks() - started);
        STATE
            .current
            .store(core::ptr::null_mut(), Ordering::Release);
        match outcome {
            Ok(()) => {
                STATE.passed.fetch_add(1, Ordering::Relaxed);
                println!("ok{took}");
            }
            Err(failure) => {
                STATE.failed.fetch_add(1, Ordering::Relaxed);
                println!("FAILED\n    {failure}");
            }
        }
    }
    let passed = STATE.passed.load(Ordering::Relaxed);
    let failed = STATE.failed.load(Ordering::Relaxed);
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if count == 0 {
        println!(
            "no kernel test matched ktest.filter={}",
            args.filter.unwrap_or("")
        );
        power::fail(FailureCode::TestsFailed);
    }
    if failed > 0 {
        power::fail(FailureCode::TestsFailed);
    }
    power::succeed()
}

/// A test's run time in timebase ticks, printed as ` (1.25 s)` when it
/// took at least a tenth of a second (nothing otherwise).
struct Duration(u64);

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hz = crate::platform::get().timebase_hz.max(1);
        let centis = self.0 * 100 / hz;
        if centis < 10 {
            return Ok(());
        }
        write!(f, " ({}.{:02} s)", centis / 100, centis % 100)
    }
}

/// `rvos::a::b` -> `a::b`, at compile time.
pub const fn strip_crate(path: &'static str) -> &'static str {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b':' && bytes[i + 1] == b':' {
            let (_, rest) = path.split_at(i + 2);
            return rest;
        }
        i += 1;
    }
    path
}

/// Progress of the test run, shared with the panic and trap paths.
pub struct RunState {
    current: AtomicPtr<KernelTest>,
    passed: AtomicUsize,
    failed: AtomicUsize,
    selected: AtomicUsize,
}

static STATE: RunState = RunState {
    current: AtomicPtr::new(core::ptr::null_mut()),
    passed: AtomicUsize::new(0),
    failed: AtomicUsize::new(0),
    selected: AtomicUsize::new(0),
};

/// Called on the way down (panic, fatal trap): if a test is running, reports
/// it as failed with `reason` and closes the run with the summary line, so
/// the output says which test died. Does nothing outside a test.
pub fn abort_running_test(reason: fmt::Arguments<'_>) {
    let current = STATE.current.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if current.is_null() {
        return;
    }
    // SAFETY: `current` was stored from a `&'static KernelTest` by the runner.
    let test = unsafe { &*current };
    let passed = STATE.passed.load(Ordering::Relaxed);
    let failed = STATE.failed.load(Ordering::Relaxed) + 1;
    let skipped = STATE
        .selected
        .load(Ordering::Relaxed)
        .saturating_sub(passed + failed);
    crate::println!("test {} ... FAILED\n    {reason}", test.name);
    crate::println!("run stopped in {}; {skipped} test(s) not run", test.name);
    crate::println!("{passed} passed, {failed} failed, {skipped} skipped");
}
