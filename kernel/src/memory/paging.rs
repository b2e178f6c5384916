//! The final kernel page table (stage 2) and the address-space services
//! around it: building it from the plan (`memory::kernel_map`) with frames
//! from the page allocator, switching every hart to it, mapping and
//! unmapping after boot with TLB invalidation on every hart (SBI RFENCE),
//! and the questions fault diagnosis asks (is it RAM, a device, mapped?).
//!
//! Every change after boot comes back as a [`PageTableChange`] that the
//! caller logs (at debug, target `paging`) once it holds no allocator
//! lock: KFENCE maps and unmaps its pages under its pool's lock.
//!
//! The table itself is the host-tested `sv39` crate's `PageTable`, over
//! [`KernelFrames`]: table pages come from `memory::pages` and are reached
//! through the linear map. Ranges are mapped with the largest page size
//! their alignment allows (1 GiB, 2 MiB, 4 KiB). Every leaf is global and
//! has A and D preset; there is no identity mapping.

use crate::arch::{self, PAGE_SIZE, mmu};
use crate::memory::{Size, kernel_map, pages};
use crate::platform;
use crate::sync::IrqTicketLock;
use core::sync::atomic::{AtomicUsize, Ordering};
use sv39::{FrameSource, PageSize, PageTable, PagingError, PhysAddr, PteFlags, VirtAddr};

/// Page-table frames from the page allocator, through the linear map
/// (untraced: the table's lock is held, and KFENCE maps under its own).
pub struct KernelFrames;

// SAFETY: frames come from the page allocator (4 KiB aligned, owned until
// freed) and the linear map reaches all of RAM read-write.
unsafe impl FrameSource for KernelFrames {
    fn alloc_frame(&mut self) -> Option<PhysAddr> {
        let virt = pages::alloc_untraced("pagetable", 1, PAGE_SIZE).ok()?;
        TABLE_PAGES.fetch_add(1, Ordering::Relaxed);
        PhysAddr::new(arch::virt_to_phys(virt)).ok()
    }

    unsafe fn dealloc_frame(&mut self, pa: PhysAddr) {
        if let Err(error) = pages::free_untraced(arch::phys_to_virt(pa.as_usize()), 1) {
            panic!(
                "page-table frame {:#x} refused by the page allocator: {error}",
                pa.as_usize()
            );
        }
        TABLE_PAGES.fetch_sub(1, Ordering::Relaxed);
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> *mut u8 {
        arch::phys_to_virt(pa.as_usize()) as *mut u8
    }
}

static KERNEL_TABLE: IrqTicketLock<Option<PageTable<KernelFrames>>> =
    IrqTicketLock::new("kernel page table", None);
/// satp value of the kernel page table, or 0 while the boot table is used.
static KERNEL_SATP: AtomicUsize = AtomicUsize::new(0);
/// Pages the kernel table's tables take (Linux's `PageTables`).
static TABLE_PAGES: AtomicUsize = AtomicUsize::new(0);
/// Leaves of the linear map of RAM per size, 4K, 2M, 1G (Linux's
/// `DirectMap4k`, `DirectMap2M`, `DirectMap1G`).
static DIRECT_MAP: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];

/// Pages of page tables the kernel table holds.
pub fn table_pages() -> usize {
    TABLE_PAGES.load(Ordering::Relaxed)
}

/// Leaves of the linear map of RAM: 4K, 2M and 1G pages.
pub fn direct_map_leaves() -> [usize; 3] {
    DIRECT_MAP
        .each_ref()
        .map(|count| count.load(Ordering::Relaxed))
}

fn flags(perms: kernel_map::Perms) -> PteFlags {
    let base = PteFlags::G | PteFlags::A | PteFlags::D;
    match perms {
        kernel_map::Perms::Rx => base | PteFlags::R | PteFlags::X,
        kernel_map::Perms::Ro => base | PteFlags::R,
        kernel_map::Perms::Rw => base | PteFlags::R | PteFlags::W,
    }
}

/// Leaves of each size one range took: `[4K, 2M, 1G]`.
type PageCounts = [usize; 3];

/// Maps `len` bytes at `va` to `pa` with the largest pages alignment allows.
fn map_range(
    table: &mut PageTable<KernelFrames>,
    va: usize,
    pa: usize,
    len: usize,
    flags: PteFlags,
) -> Result<PageCounts, PagingError> {
    let mut counts = [0; 3];
    let mut offset = 0;
    while offset < len {
        let (v, p, left) = (va + offset, pa + offset, len - offset);
        let size = PageSize::LARGEST_FIRST
            .into_iter()
            .find(|size| {
                let bytes = size.bytes();
                v.is_multiple_of(bytes) && p.is_multiple_of(bytes) && left >= bytes
            })
            .ok_or(PagingError::Unaligned {
                addr: v,
                required: PageSize::Size4K,
            })?;
        table.map(VirtAddr::new(v)?, PhysAddr::new(p)?, size, flags)?;
        counts[size.level()] += 1;
        offset += size.bytes();
    }
    Ok(counts)
}

/// Builds the kernel table from `plan`, prints the final mappings, and
/// switches the calling (boot) hart to it. The other harts switch as they
/// start (`switch_this_hart`).
pub fn install_kernel_table(plan: &kernel_map::Plan) -> Result<(), PagingError> {
    let mut table = PageTable::new(KernelFrames)?;
    let (used_before, _) = pages::usage();
    let mut total = [0; 3];
    log::debug!("kernel page table (no identity map, no W+X):");
    for mapping in plan.as_slice() {
        let counts = map_range(
            &mut table,
            mapping.virt_start(),
            mapping.phys.start() as usize,
            mapping.phys.size() as usize,
            flags(mapping.perms),
        )?;
        for (sum, count) in total.iter_mut().zip(counts) {
            *sum += count;
        }
        if mapping.what == kernel_map::LINEAR_MAP {
            for (direct, count) in DIRECT_MAP.iter().zip(counts) {
                direct.fetch_add(count, Ordering::Relaxed);
            }
        }
        log::debug!(
            "  {:#x}..{:#x} -> {:#010x} {} {:>10}  {:<16} [{}]",
            mapping.virt_start(),
            mapping.virt_start() + mapping.phys.size() as usize,
            mapping.phys.start(),
            mapping.perms,
            Size(mapping.phys.size()),
            mapping.what,
            PageCountsDisplay(counts)
        );
    }
    let table_pages = pages::usage().0 - used_before;
    log::info!(
        "kernel page table: {} leaves ({}), {} table pages; no identity map, no W+X, \
         guard pages unmapped",
        total.iter().sum::<usize>(),
        PageCountsDisplay(total),
        table_pages
    );
    let satp = table.satp(0);
    *KERNEL_TABLE.lock() = Some(table);
    KERNEL_SATP.store(satp, Ordering::Release);
    switch_this_hart();
    Ok(())
}

struct PageCountsDisplay(PageCounts);

impl core::fmt::Display for PageCountsDisplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut first = true;
        for (count, name) in self.0.iter().zip(["4K", "2M", "1G"]).rev() {
            if *count > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{count}x{name}")?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Installs the kernel page table on the calling hart (if one is built)
/// and flushes its TLB.
pub fn switch_this_hart() {
    let satp = KERNEL_SATP.load(Ordering::Acquire);
    if satp == 0 {
        mmu::flush_local_all();
        return;
    }
    // SAFETY: the kernel table maps this code, every stack, the hart-local
    // blocks and the devices at the addresses the kernel already uses (the
    // linear offset), so execution continues.
    unsafe { mmu::switch_to(satp) };
}

/// The satp of the kernel table (0 before it is built).
#[cfg_attr(
    not(feature = "ktest"),
    expect(dead_code, reason = "the page-table tests are its only user so far")
)]
pub fn kernel_satp() -> usize {
    KERNEL_SATP.load(Ordering::Acquire)
}

/// Why a change to the live kernel table failed.
#[derive(Clone, Copy, Debug)]
pub enum MapError {
    /// The kernel table is not built yet.
    NoKernelTable,
    Paging(PagingError),
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoKernelTable => f.write_str("the kernel page table is not built yet"),
            Self::Paging(error) => write!(f, "{error}"),
        }
    }
}

impl From<PagingError> for MapError {
    fn from(error: PagingError) -> Self {
        Self::Paging(error)
    }
}

fn with_table<R>(
    f: impl FnOnce(&mut PageTable<KernelFrames>) -> Result<R, PagingError>,
) -> Result<R, MapError> {
    let mut guard = KERNEL_TABLE.lock();
    let table = guard.as_mut().ok_or(MapError::NoKernelTable)?;
    Ok(f(table)?)
}

/// What a change to the live kernel table did, for the debug log.
#[derive(Clone, Copy, Debug)]
pub enum Edit {
    Map { pa: usize, perms: kernel_map::Perms },
    Unmap,
    Protect { perms: kernel_map::Perms },
}

/// One page of the kernel table changed, and the TLB shootdown that
/// followed: log it with [`PageTableChange::log`] once no allocator lock
/// is held.
#[must_use = "log the change once no allocator lock is held"]
#[derive(Clone, Copy, Debug)]
pub struct PageTableChange {
    pub va: usize,
    pub edit: Edit,
    /// Other harts whose TLBs were invalidated through SBI RFENCE.
    pub remote_harts: usize,
}

impl PageTableChange {
    /// Logs the change at debug (target `paging`).
    pub fn log(self) {
        let va = self.va;
        match self.edit {
            Edit::Map { pa, perms } => {
                log::debug!("map {va:#x} -> {pa:#x} {perms} (4K)");
            }
            Edit::Unmap => log::debug!("unmap {va:#x}"),
            Edit::Protect { perms } => log::debug!("protect {va:#x} {perms}"),
        }
        log::debug!(
            "TLB shootdown {va:#x}..{:#x}: sfence.vma here, SBI remote_sfence_vma to {} other harts",
            va + PAGE_SIZE,
            self.remote_harts
        );
    }
}

/// Invalidates the page at `va` on every hart and describes the change.
fn shoot_down(va: usize, edit: Edit) -> PageTableChange {
    let remote_harts = mmu::flush_all_harts(va..va + PAGE_SIZE);
    PageTableChange {
        va,
        edit,
        remote_harts,
    }
}

/// Maps the 4 KiB page at `va` to `pa` and makes every hart see it.
pub fn map_page(
    va: usize,
    pa: usize,
    perms: kernel_map::Perms,
) -> Result<PageTableChange, MapError> {
    with_table(|table| {
        table.map(
            VirtAddr::new(va)?,
            PhysAddr::new(pa)?,
            PageSize::Size4K,
            flags(perms),
        )
    })?;
    Ok(shoot_down(va, Edit::Map { pa, perms }))
}

/// Unmaps the page at `va` on every hart.
pub fn unmap_page(va: usize) -> Result<PageTableChange, MapError> {
    with_table(|table| table.unmap(VirtAddr::new(va)?))?;
    Ok(shoot_down(va, Edit::Unmap))
}

/// Changes the permissions of the page at `va` on every hart.
#[cfg_attr(
    not(feature = "ktest"),
    expect(dead_code, reason = "the page-table tests are its only user so far")
)]
pub fn protect_page(va: usize, perms: kernel_map::Perms) -> Result<PageTableChange, MapError> {
    with_table(|table| table.protect(VirtAddr::new(va)?, flags(perms)))?;
    Ok(shoot_down(va, Edit::Protect { perms }))
}

/// Whether the kernel table maps `va`: `None` before it exists or when its
/// lock is busy (fault diagnosis must never wait on it).
pub fn is_mapped(va: usize) -> Option<bool> {
    let guard = KERNEL_TABLE.try_lock()?;
    let table = guard.as_ref()?;
    let va = VirtAddr::new(va).ok()?;
    Some(table.translate(va).is_ok())
}

/// Runs `f` on the live kernel page table (read-only, its lock held, so
/// `f` must not print or allocate); `None` before the table is built.
#[cfg_attr(
    feature = "ktest",
    expect(
        dead_code,
        reason = "the monitor's `vmmap`/`translate` are its only users"
    )
)]
pub fn inspect<R>(f: impl FnOnce(&PageTable<KernelFrames>) -> R) -> Option<R> {
    KERNEL_TABLE.lock().as_ref().map(f)
}

/// Whether physical `pa` is RAM the device tree lists.
pub fn is_ram(pa: usize) -> bool {
    platform::try_get().is_some_and(|p| p.ram.as_slice().iter().any(|r| r.contains(pa as u64)))
}

/// The device whose registers virtual `addr` (linear map) falls in.
pub fn device_at(addr: usize) -> Option<&'static str> {
    let platform = platform::try_get()?;
    if addr < arch::KERNEL_OFFSET {
        return None;
    }
    let pa = arch::virt_to_phys(addr);
    let uart = platform.uart;
    if (uart.base..uart.base + PAGE_SIZE).contains(&pa) {
        return Some(uart.path_name);
    }
    platform
        .finisher
        .filter(|f| (f.base..f.base + f.size).contains(&pa))
        .map(|_| "sifive,test")
}

#[cfg(feature = "ktest")]
mod mmu_tests;
#[cfg(feature = "ktest")]
mod tests;
