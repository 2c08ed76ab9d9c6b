//! The machine's guest-physical memory map, in one place: where RAM is
//! ([`RamLayout`]: below the 3 GiB hole, and the rest above 4 GiB), what the
//! guest is told about it ([`memory_map`]), where the devices' windows are
//! (local APIC, I/O APIC, pc-testdev), the BIOS area that holds the ACPI
//! tables, and the addresses the loader prefers for its own boot data.
//!
//! Everyone who needs the map reads it here: the loader's multiboot memory
//! map and ELF64 identity page tables, and the machine library that installs
//! the memslots, writes the ACPI tables and places its devices. So the guest
//! is never told that a device window is RAM, and every byte of RAM is
//! mapped.
//!
//! The loader's own data (GDT, page tables, boot stack, the multiboot
//! information) goes to the preferred addresses here when no part of the
//! image is there, and otherwise to the first free place after the image
//! (see `place.rs` and the boot contracts in the crate docs). A loadable
//! segment in the BIOS area is refused with
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

/// The preferred address of the GDT of both contracts (null, code at
/// selector 0x08, data at 0x10).
pub const GDT_ADDR: u64 = 0x1000;
/// Three 8-byte descriptors.
pub const GDT_SIZE: u64 = 24;

/// ESP of the multiboot contract. The multiboot specification leaves ESP
/// undefined and a kernel must set up its own stack; this value only keeps an
/// early push from landing on the GDT or the multiboot information.
pub const MULTIBOOT_STACK_TOP: u64 = 0x7000;
/// The preferred address of the multiboot information structure (EBX),
/// followed by the memory map, module list and strings: QEMU's multiboot
/// loader keeps its information at 0x9000 too.
pub const MULTIBOOT_INFO_ADDR: u64 = 0x9000;
/// The real-mode interrupt vector table and the BIOS data area: the loader
/// never puts its data below this address (real-mode kernels use the IVT).
pub const REAL_MODE_DATA_END: u64 = 0x500;
/// The extended BIOS data area at the top of conventional memory (reserved
/// in the memory map, as a PC BIOS reserves it).
pub const EBDA_START: u64 = 0x9_fc00;
/// The end of conventional memory (the VGA window starts here).
pub const CONVENTIONAL_END: u64 = 0xa_0000;
/// The BIOS area below 1 MiB where a PC keeps its firmware and where an
/// operating system scans for the ACPI RSDP (16-byte aligned). Reserved in
/// the memory map; no image segment may lie in it.
pub const BIOS_AREA_START: u64 = 0xe_0000;
/// The end of the BIOS area (1 MiB).
pub const BIOS_AREA_END: u64 = MIB;
/// Where the machine writes its ACPI tables (RSDP first), inside the BIOS
/// area.
pub const ACPI_TABLES_ADDR: u64 = BIOS_AREA_START;
/// Room for the ACPI tables.
pub const ACPI_TABLES_SIZE: u64 = 0x1_0000;
/// Modules go above the image and never below this address.
pub const MODULES_MIN_ADDR: u64 = MIB;

/// ELF64 contract: the preferred address of the page tables: the PML4
/// (CR3), then the single PDPT (PML4 entry 0), then the page directories,
/// one 4 KiB table per GiB mapped.
pub const PML4_ADDR: u64 = 0x2000;
/// ELF64 contract: at most this many page directories, enough to map the
/// largest RAM ([`MAX_MEM_SIZE`], which ends 1 GiB higher because of the
/// hole below 4 GiB); at the preferred address they end at 0x45000.
pub const MAX_PDS: u64 = (MAX_MEM_SIZE + FOUR_GIB - LOW_RAM_END) / GIB;
/// ELF64 contract: the identity map always covers at least the first 4 GiB
/// (so the local APIC at 0xfee00000 and the I/O APIC at 0xfec00000 are
/// mapped), and all of guest RAM beyond that (up to [`RamLayout::end`]).
pub const MIN_IDENTITY_MAP: u64 = FOUR_GIB;
/// The largest guest RAM a machine may have (the ELF64 boot page tables
/// cover all of it).
pub const MAX_MEM_SIZE: u64 = 64 * GIB;
/// ELF64 contract: the preferred bottom of the 64 KiB boot stack.
pub const ELF64_STACK_BASE: u64 = 0x8_0000;
/// ELF64 contract: the size of the boot stack.
pub const ELF64_STACK_SIZE: u64 = 64 * KIB;

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

/// The kind of a [`memory_map`] entry, with the multiboot/e820 type numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// RAM the kernel may use (type 1).
    Available = 1,
    /// Reserved: the EBDA and the BIOS area with the ACPI tables (type 2,
    /// as a PC BIOS's e820 map reserves them).
    Reserved = 2,
}

/// One entry of the memory map given to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry {
    pub base: u64,
    pub len: u64,
    pub kind: MemKind,
}

impl MapEntry {
    const fn new(base: u64, len: u64, kind: MemKind) -> MapEntry {
        MapEntry { base, len, kind }
    }

    /// One past the last address.
    pub const fn end(&self) -> u64 {
        self.base + self.len
    }
}

/// The physical memory map the guest is told about, in address order:
/// conventional memory up to the EBDA (available), the EBDA (reserved),
/// the BIOS area with the ACPI tables (reserved), then RAM as [`RamLayout`]
/// lays it out from 1 MiB: up to the hole below 4 GiB, and the rest above
/// 4 GiB. The VGA window and option ROM space (0xa0000..0xe0000) are not
/// listed, as on a PC.
pub fn memory_map(mem_size: u64) -> Vec<MapEntry> {
    let mut map = vec![
        MapEntry::new(0, EBDA_START, MemKind::Available),
        MapEntry::new(EBDA_START, CONVENTIONAL_END - EBDA_START, MemKind::Reserved),
        MapEntry::new(
            BIOS_AREA_START,
            BIOS_AREA_END - BIOS_AREA_START,
            MemKind::Reserved,
        ),
    ];
    for (start, len) in RamLayout::new(mem_size).regions() {
        let end = start + len;
        let start = start.max(MIB);
        if end > start {
            map.push(MapEntry::new(start, end - start, MemKind::Available));
        }
    }
    map
}

const _: () = assert!(LOW_RAM_END <= IOAPIC_BASE && LOW_RAM_END <= LAPIC_BASE);
const _: () = assert!(LOW_RAM_END <= PC_TESTDEV_MMIO);
const _: () = assert!(IOAPIC_BASE + IOAPIC_SIZE <= LAPIC_BASE);
const _: () = assert!(PC_TESTDEV_MMIO + PC_TESTDEV_MMIO_SIZE <= HIGH_RAM_START);
const _: () = assert!(REAL_MODE_DATA_END <= GDT_ADDR);
const _: () = assert!(GDT_ADDR + GDT_SIZE <= PML4_ADDR);
const _: () = assert!(GDT_ADDR + GDT_SIZE <= MULTIBOOT_STACK_TOP);
const _: () = assert!(MULTIBOOT_STACK_TOP <= MULTIBOOT_INFO_ADDR);
const _: () = assert!(PML4_ADDR + (2 + MAX_PDS) * PAGE_SIZE <= ELF64_STACK_BASE);
const _: () = assert!(ELF64_STACK_BASE + ELF64_STACK_SIZE <= EBDA_START);
const _: () = assert!(EBDA_START <= CONVENTIONAL_END && CONVENTIONAL_END <= BIOS_AREA_START);
const _: () = assert!(ACPI_TABLES_ADDR + ACPI_TABLES_SIZE <= BIOS_AREA_END);
const _: () = assert!(ACPI_TABLES_ADDR.is_multiple_of(16));
const _: () = assert!(BIOS_AREA_END <= MIN_MEM_SIZE);

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

    #[test]
    fn memory_map_entries() {
        let e = |base, len, kind| MapEntry { base, len, kind };
        use MemKind::{Available as A, Reserved as R};
        assert_eq!(
            memory_map(128 * MIB),
            vec![
                e(0, 0x9_fc00, A),
                e(0x9_fc00, 0x400, R),
                e(0xe_0000, 0x2_0000, R),
                e(MIB, 127 * MIB, A)
            ]
        );
        assert_eq!(memory_map(MIB).len(), 3);
        // Across the hole: RAM resumes at 4 GiB, nothing in 3..4 GiB.
        assert_eq!(
            memory_map(5 * GIB)[3..],
            [e(MIB, 3 * GIB - MIB, A), e(FOUR_GIB, 2 * GIB, A)]
        );
    }
}
