//! Fixed guest-physical addresses the loader writes its boot data to.
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
/// ELF64 contract: at most this many page directories (so at most 64 GiB of
/// guest RAM); they end at 0x44000.
pub const MAX_PDS: u64 = 64;
/// ELF64 contract: the identity map always covers at least the first 4 GiB
/// (so the local APIC at 0xfee00000 and the I/O APIC at 0xfec00000 are
/// mapped), and all of guest RAM beyond that.
pub const MIN_IDENTITY_MAP: u64 = FOUR_GIB;
/// ELF64 contract: the largest guest RAM the boot page tables can cover.
pub const ELF64_MAX_MEM_SIZE: u64 = MAX_PDS * GIB;
/// ELF64 contract: the bottom of the 64 KiB boot stack.
pub const ELF64_STACK_BASE: u64 = 0x8_0000;
/// ELF64 contract: RSP at entry, the top of the boot stack (16-byte aligned).
pub const ELF64_STACK_TOP: u64 = 0x9_0000;

/// Local APIC base MSR value given to the boot vCPU: base 0xfee00000, the
/// APIC enabled (bit 11) and this vCPU the bootstrap processor (bit 8).
pub const APIC_BASE_MSR: u64 = 0xfee0_0900;

const _: () = assert!(GDT_ADDR + GDT_SIZE <= PML4_ADDR);
const _: () = assert!(GDT_ADDR + GDT_SIZE <= MULTIBOOT_STACK_TOP);
const _: () = assert!(MULTIBOOT_STACK_TOP <= MULTIBOOT_INFO_ADDR);
const _: () = assert!(PD_ADDR + MAX_PDS * PAGE_SIZE <= ELF64_STACK_BASE);
const _: () = assert!(ELF64_STACK_TOP - ELF64_STACK_BASE == 64 * KIB);
const _: () = assert!(ELF64_STACK_TOP <= MULTIBOOT_INFO_LIMIT);
const _: () = assert!(MULTIBOOT_INFO_LIMIT <= MIN_MEM_SIZE);
const _: () = assert!(ELF64_STACK_TOP.is_multiple_of(16));
