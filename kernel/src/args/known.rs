//! The boot arguments the kernel knows, with their one-line help: the
//! list unknown keys are checked against, and what the docs describe.

/// Every key the kernel understands, with its one-line help.
pub const KNOWN_ARGS: &[(&str, &str)] = &[
    (
        "log",
        "log level: off, error, warn, info (default), debug, trace; per target: \
         log=warn,pages:trace (targets: the monitor's `help log`)",
    ),
    (
        "printk_ratelimit",
        "memory reports (OOM, refused frees, memdebug): seconds per rate-limit window \
         (default 5, 0 = no limit)",
    ),
    (
        "printk_ratelimit_burst",
        "memory reports logged per rate-limit window (default 10)",
    ),
    (
        "timer_hz",
        "timer interrupts per second on every hart (default 100, 0 = off)",
    ),
    ("pagealloc", "page allocator: buddy (default) or bitmap"),
    (
        "alloc",
        "kernel heap: slab (default: slab classes over TLSF), tlsf or buddy",
    ),
    (
        "cmds",
        "monitor: run this `;`-separated command list, then power off",
    ),
    (
        "memdebug",
        "memory debugging: off (default), all, or a comma list of poison, allocpoison, \
         redzone, track, leakcheck",
    ),
    (
        "memdebug.track",
        "with memdebug=track: record call sites of byte allocations of at least this many \
         bytes (default 256; 0 in the test build)",
    ),
    (
        "memdebug.leakwatch",
        "with memdebug=leakcheck: boot-hart timer ticks between two leak checks (default 100)",
    ),
    (
        "memdebug.kfence",
        "with memdebug on: every N-th byte allocation up to a page sits against an unmapped \
         guard page (default 0 = none)",
    ),
    (
        "fail_page_alloc",
        "fault injection in the page allocator: <interval>,<probability%>,<space>,<times>[,<min_order>] (Linux syntax)",
    ),
    (
        "fail_page_alloc.filter",
        "fail only page requests whose requester name contains this (heap, pagetable, pages)",
    ),
    (
        "failslab",
        "fault injection in the kernel heap's small blocks, same syntax as fail_page_alloc",
    ),
    (
        "failslab.filter",
        "fail only heap requests whose cache name contains this (kmalloc-64, tlsf, buddy)",
    ),
    (
        "badmem",
        "physical pages to take out of service at boot: 0x84000000,0x84001000 (at most 16)",
    ),
    (
        "stress",
        "test build: run the stress workload on every hart for this many seconds instead of the tests",
    ),
    (
        "stress.seed",
        "the stress workload's base seed, decimal or 0x-hex (default 0x57e55eed; xtask: SEED=)",
    ),
    (
        "stress.free",
        "test build: hold all but this many free pages during the stress run (near exhaustion)",
    ),
    (
        "ktest.filter",
        "test build: run only tests whose name contains the text",
    ),
    (
        "ktest.crash",
        "test build: run one deliberately crashing test (panic|trap|oom|rodata|lockorder)",
    ),
    (
        "ktest.harts",
        "test build: hart count QEMU was given (-smp)",
    ),
    ("ktest.mem", "test build: RAM bytes QEMU was given (-m)"),
];
