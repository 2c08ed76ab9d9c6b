//! The machine's guest-physical memory map, in one place: where RAM is
//! ([`RamLayout`]: below the 3 GiB hole, and the rest above 4 GiB), where the
//! devices' windows are (local APIC, I/O APIC, pc-testdev), and the fixed
//! addresses the loader writes its boot data to.
//!
//! Everyone who needs the map reads it here: the loader's multiboot memory
//! map and ELF64 identity page tables, and the machine library that installs
//! the memslots and places its devices. So the guest is never told that a
//! device window is RAM, and every byte of RAM is mapped.
//!
//! Everything the loader builds (GDT, page tables, the multiboot
//! information) lives below 1 MiB at the addresses here, so the boot
//! contracts in the crate docs can name them. A loadable segment that would
//! overlap one of these ranges is refused with
//! [`LoadError::OverlapsBootData`](crate::LoadError::OverlapsBootData).

/// One KiB.
pub const KIB: u64 = 1 << 10;
/// One MiB.
pub const MIB: u64 = 1 << 20;
/// One GiB.
pub const GIB: u64 = 1 << 30;
/// The first address a 32-bit kernel with paging off cannot reach.
pub const FOUR_GIB: u64 = 1 << 32;
/// Size of the guest pages the loader aligns modules and tables to.
pub const PAGE_SIZE: u64 = 4096;

/// The smallest guest RAM the loader accepts.
pub const MIN_MEM_SIZE: u64 = MIB;

/// GDT of both contracts: null, code at selector 0x08, data at 0x10.
pub const GDT_ADDR: u64 = 0x1000;
/// Three 8-byte descriptors.
pub const GDT_SIZE: u64 = 24;

/// ESP of the multiboot contract. The multiboot specification leaves ESP
/// undefined and a kernel must set up its own stack; this value only keeps an
/// early push from landing on the GDT or the multiboot information.
pub const MULTIBOOT_STACK_TOP: u64 = 0x7000;
/// Where the multiboot information structure starts (EBX); the memory map,
/// module list and strings follow it.
pub const MULTIBOOT_INFO_ADDR: u64 = 0x9000;
/// The multiboot information, memory map, module list and strings must end
/// at or below this address (the start of the reserved top of low memory).
pub const MULTIBOOT_INFO_LIMIT: u64 = 0x9_fc00;
/// Modules go above the image and never below this address.
pub const MODULES_MIN_ADDR: u64 = MIB;

/// ELF64 contract: the PML4 (CR3).
pub const PML4_ADDR: u64 = 0x2000;
/// ELF64 contract: the single PDPT (PML4 entry 0).
pub const PDPT_ADDR: u64 = 0x3000;
/// ELF64 contract: the page directories, one 4 KiB table per GiB mapped.
pub const PD_ADDR: u64 = 0x4000;
/// ELF64 contract: at most this many page directories, enough to map the
/// largest RAM ([`MAX_MEM_SIZE`], which ends 1 GiB higher because of the
/// hole below 4 GiB); they end at 0x45000.
pub const MAX_PDS: u64 = (MAX_MEM_SIZE + FOUR_GIB - LOW_RAM_END) / GIB;
/// ELF64 contract: the identity map always covers at least the first 4 GiB
/// (so the local APIC at 0xfee00000 and the I/O APIC at 0xfec00000 are
/// mapped), and all of guest RAM beyond that (up to [`RamLayout::end`]).
pub const MIN_IDENTITY_MAP: u64 = FOUR_GIB;
/// The largest guest RAM a machine may have (the ELF64 boot page tables
/// cover all of it).
pub const MAX_MEM_SIZE: u64 = 64 * GIB;
/// ELF64 contract: the bottom of the 64 KiB boot stack.
pub const ELF64_STACK_BASE: u64 = 0x8_0000;
/// ELF64 contract: RSP at entry, the top of the boot stack (16-byte aligned).
pub const ELF64_STACK_TOP: u64 = 0x9_0000;

/// Local APIC base MSR value given to the boot vCPU: base 0xfee00000, the
/// APIC enabled (bit 11) and this vCPU the bootstrap processor (bit 8).
pub const APIC_BASE_MSR: u64 = LAPIC_BASE | 0x900;

/// RAM below 4 GiB ends here at most: the gigabyte below 4 GiB is the hole
/// where devices live (QEMU's `pc` machine splits RAM at 3 GiB likewise when
/// it has 3.5 GiB or more).
pub const LOW_RAM_END: u64 = 3 * GIB;
/// RAM beyond [`LOW_RAM_END`] continues here.
pub const HIGH_RAM_START: u64 = FOUR_GIB;
/// The local APIC's MMIO page (xAPIC mode).
pub const LAPIC_BASE: u64 = 0xfee0_0000;
/// The I/O APIC's registers.
pub const IOAPIC_BASE: u64 = 0xfec0_0000;
/// The I/O APIC's window (a page).
pub const IOAPIC_SIZE: u64 = 0x1000;
/// QEMU's pc-testdev scratch MMIO page.
pub const PC_TESTDEV_MMIO: u64 = 0xff00_0000;
/// Size of the pc-testdev MMIO window.
pub const PC_TESTDEV_MMIO_SIZE: u64 = 0x1_0000;

/// Where a machine with `mem_size` bytes of RAM has it: from 0 up to
/// [`LOW_RAM_END`], and the rest from [`HIGH_RAM_START`] on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamLayout {
    mem_size: u64,
}

impl RamLayout {
    /// The layout of `mem_size` bytes of RAM.
    pub const fn new(mem_size: u64) -> RamLayout {
        RamLayout { mem_size }
    }

    /// Total bytes of RAM.
    pub const fn size(&self) -> u64 {
        self.mem_size
    }

    /// The end of RAM below 4 GiB.
    pub const fn low_end(&self) -> u64 {
        if self.mem_size < LOW_RAM_END {
            self.mem_size
        } else {
            LOW_RAM_END
        }
    }

    /// Bytes of RAM above 4 GiB.
    pub const fn high_size(&self) -> u64 {
        self.mem_size - self.low_end()
    }

    /// One past the highest RAM address.
    pub const fn end(&self) -> u64 {
        if self.high_size() == 0 {
            self.low_end()
        } else {
            HIGH_RAM_START + self.high_size()
        }
    }

    /// The RAM regions as (start, length), in address order; one or two.
    pub fn regions(&self) -> Vec<(u64, u64)> {
        let mut v = vec![(0, self.low_end())];
        if self.high_size() > 0 {
            v.push((HIGH_RAM_START, self.high_size()));
        }
        v
    }

    /// Whether `start..start+len` lies wholly inside one RAM region (a
    /// wrapping range never does).
    pub fn contains(&self, start: u64, len: u64) -> bool {
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        self.regions()
            .iter()
            .any(|&(s, l)| start >= s && end <= s + l)
    }
}

const _: () = assert!(LOW_RAM_END <= IOAPIC_BASE && LOW_RAM_END <= LAPIC_BASE);
const _: () = assert!(LOW_RAM_END <= PC_TESTDEV_MMIO);
const _: () = assert!(IOAPIC_BASE + IOAPIC_SIZE <= LAPIC_BASE);
const _: () = assert!(PC_TESTDEV_MMIO + PC_TESTDEV_MMIO_SIZE <= HIGH_RAM_START);
const _: () = assert!(GDT_ADDR + GDT_SIZE <= PML4_ADDR);
const _: () = assert!(GDT_ADDR + GDT_SIZE <= MULTIBOOT_STACK_TOP);
const _: () = assert!(MULTIBOOT_STACK_TOP <= MULTIBOOT_INFO_ADDR);
const _: () = assert!(PD_ADDR + MAX_PDS * PAGE_SIZE <= ELF64_STACK_BASE);
const _: () = assert!(ELF64_STACK_TOP - ELF64_STACK_BASE == 64 * KIB);
const _: () = assert!(ELF64_STACK_TOP <= MULTIBOOT_INFO_LIMIT);
const _: () = assert!(MULTIBOOT_INFO_LIMIT <= MIN_MEM_SIZE);
const _: () = assert!(ELF64_STACK_TOP.is_multiple_of(16));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_splits_at_the_hole() {
        let small = RamLayout::new(128 * MIB);
        assert_eq!(small.regions(), vec![(0, 128 * MIB)]);
        assert_eq!(small.end(), 128 * MIB);
        let exact = RamLayout::new(3 * GIB);
        assert_eq!(exact.regions(), vec![(0, 3 * GIB)]);
        let four = RamLayout::new(4 * GIB);
        assert_eq!(four.regions(), vec![(0, 3 * GIB), (FOUR_GIB, GIB)]);
        assert_eq!(four.end(), 5 * GIB);
        assert!(four.contains(FOUR_GIB, GIB));
        assert!(!four.contains(3 * GIB - 1, 2));
        assert!(!four.contains(u64::MAX, 2));
        let max = RamLayout::new(MAX_MEM_SIZE);
        assert_eq!(max.end().div_ceil(GIB), MAX_PDS);
    }
}
