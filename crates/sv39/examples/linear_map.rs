//! Builds the page table a small kernel boots into: its image mapped with
//! per-section permissions and all of RAM in a linear map in the upper
//! half, each range with the largest pages its alignment allows. Table
//! frames come from one of kalloc's page allocators over host memory.
//! Prints the leaves, the page counts and the walk of one address.
//!
//! Run: `cargo run -p rvos-sv39 --example linear_map`.

use kalloc::page::BuddyPageAllocator;
use kalloc::{BaseAllocator, PageAllocator};
use sv39::{FrameSource, PAGE_SIZE, PageTable, PagingError, PhysAddr, PteFlags, VirtAddr};

/// Where the host buffer pretends to be in physical memory.
const RAM_BASE: usize = 0x8000_0000;
/// RAM as the kernel sees it: 1 GiB + 6 MiB from `RAM_BASE`.
const RAM_LEN: usize = (1 << 30) + (6 << 20);
/// The linear map's offset: RAM at `pa` is reached at `pa + LINEAR_OFFSET`.
const LINEAR_OFFSET: usize = 0xffff_ffc0_0000_0000;
/// The kernel image, loaded 2 MiB into RAM.
const KERNEL_TEXT: usize = RAM_BASE + (2 << 20);

#[repr(C, align(4096))]
struct Frame([u8; PAGE_SIZE]);

/// Table frames from a buddy allocator managing a host buffer.
struct HostRam {
    allocator: BuddyPageAllocator,
    base: *mut u8,
    _frames: Vec<Frame>,
}

impl HostRam {
    fn new(count: usize) -> Self {
        let mut frames: Vec<Frame> = (0..count).map(|_| Frame([0; PAGE_SIZE])).collect();
        let base = frames.as_mut_ptr().cast::<u8>();
        let mut allocator = BuddyPageAllocator::new();
        // SAFETY: the buffer is used by nothing else and lives as long as the
        // allocator (both are fields of `HostRam`; the `Vec` is dropped last).
        unsafe { allocator.add_memory(base.expose_provenance(), count * PAGE_SIZE) }
            .expect("a usable region");
        Self {
            allocator,
            base,
            _frames: frames,
        }
    }
}

// SAFETY: frames come from the allocator, 4 KiB aligned and unused until
// freed, and `phys_to_virt` points into the buffer that holds them.
unsafe impl FrameSource for HostRam {
    fn alloc_frame(&mut self) -> Option<PhysAddr> {
        let addr = self.allocator.alloc_pages(1, PAGE_SIZE).ok()?;
        PhysAddr::new(RAM_BASE + (addr - self.base.addr())).ok()
    }

    unsafe fn dealloc_frame(&mut self, pa: PhysAddr) {
        let addr = self.base.addr() + (pa.as_usize() - RAM_BASE);
        self.allocator
            .dealloc_pages(addr, 1)
            .expect("a frame this source handed out");
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> *mut u8 {
        self.base.wrapping_add(pa.as_usize() - RAM_BASE)
    }
}

fn main() -> Result<(), PagingError> {
    let mut table = PageTable::new(HostRam::new(32))?;
    let global = PteFlags::G;

    // The image at its physical address: text (2 MiB + 12 KiB), then data.
    let text_len = (2 << 20) + 3 * PAGE_SIZE;
    let text = table.map_range(
        VirtAddr::new(KERNEL_TEXT)?,
        PhysAddr::new(KERNEL_TEXT)?,
        text_len,
        global | PteFlags::R | PteFlags::X,
    )?;
    let data_start = KERNEL_TEXT + text_len;
    let data = table.map_range(
        VirtAddr::new(data_start)?,
        PhysAddr::new(data_start)?,
        5 * PAGE_SIZE,
        global | PteFlags::R | PteFlags::W,
    )?;
    // All of RAM, read-write, in the upper half.
    let linear = table.map_range(
        VirtAddr::new(RAM_BASE + LINEAR_OFFSET)?,
        PhysAddr::new(RAM_BASE)?,
        RAM_LEN,
        global | PteFlags::R | PteFlags::W,
    )?;
    assert_eq!((text.pages_2m, text.pages_4k), (1, 3));
    assert_eq!(data.pages_4k, 5);
    assert_eq!((linear.pages_1g, linear.pages_2m), (1, 3));

    println!("text {text:?}\ndata {data:?}\nlinear map {linear:?}");
    println!(
        "table frames in use: {}",
        table.frames().allocator.used_pages()
    );
    for mapping in table.mappings() {
        println!(
            "  {:>#20x} -> {:>#12x} {:>2} {}",
            mapping.va.as_usize(),
            mapping.pa.as_usize(),
            mapping.size,
            mapping.flags
        );
    }

    // What `translate <va>` in a kernel shell shows: one line per level.
    let va = VirtAddr::new(LINEAR_OFFSET + KERNEL_TEXT + 0x1234)?;
    let walk = table.walk(va);
    println!("walk of {va}:");
    for step in walk.steps() {
        println!(
            "  level {} table {} [{:3}] {:?}",
            step.level, step.table, step.index, step.entry
        );
    }
    println!("  -> {:?}", walk.end);
    assert_eq!(table.translate(va)?.pa.as_usize(), KERNEL_TEXT + 0x1234);
    Ok(())
}
