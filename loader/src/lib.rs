//! loader: puts a guest image into guest RAM and builds the vCPU state it
//! boots with.
//!
//! Two kinds of images are understood, told apart by [`detect`]:
//!
//! - **Multiboot v1** ([`ImageKind::Multiboot32`]): any file with a
//!   multiboot header (magic 0x1BADB002, 4-byte aligned, within the first
//!   8 KiB, with a valid checksum). This is the format of kvm-unit-tests
//!   `.flat` files and of what `qemu-system-x86_64 -kernel` boots.
//! - **Bare-metal ELF64** ([`ImageKind::Elf64`]): an x86-64 `ET_EXEC` ELF64
//!   file without a multiboot header, entered directly in long mode.
//!
//! [`load`] validates everything first (headers, segments against the file
//! and guest RAM, overlaps, the entry point, room for modules and boot
//! information) and writes guest memory only when the whole load is known to
//! fit. It never panics on any input; every failure is a [`LoadError`] whose
//! message is one line.
//!
//! # Multiboot boot contract
//!
//! The image is loaded as the multiboot specification (v0.6.96) says:
//!
//! - With header flag bit 16 (the "a.out kludge") the address fields decide:
//!   file bytes from `header_offset - (header_addr - load_addr)` up to
//!   `load_end_addr` (0: end of file) go to `load_addr`, zeros up to
//!   `bss_end_addr` (0: none), and the entry is `entry_addr`. The file need
//!   not be ELF. Without bit 16 the file must be ELF32 for i386 (or ELF64 for
//!   x86-64, as GRUB allows), `ET_EXEC`: each `PT_LOAD` segment is copied to
//!   its physical address `p_paddr` and zero-filled from `p_filesz` to
//!   `p_memsz`; the entry is `e_entry` translated through the segment whose
//!   virtual range contains it (equal to `e_entry` when `p_vaddr == p_paddr`).
//!   Segments must lie in guest RAM below 4 GiB (not in the device hole
//!   above 3 GiB), not in the BIOS area 0xe0000..0x100000 (where the
//!   machine keeps its ACPI tables), and not overlap each other.
//! - Required header flags 0 (page-aligned modules), 1 (memory information)
//!   and 2 (video mode; accepted and ignored as QEMU does, no video
//!   information is passed) are supported; any other bit of 0..=15 is
//!   refused.
//! - vCPU 0 starts in 32-bit protected mode, paging off: CS = selector 0x08,
//!   flat 4 GiB 32-bit code (type 0xb); DS, ES, FS, GS, SS = 0x10, flat
//!   4 GiB data (type 0x3); CR0 = 0x11 (PE | ET), CR3 = CR4 = EFER = 0;
//!   EFLAGS = 0x2 (interrupts off); EAX = 0x2BADB002; EBX = the address of
//!   the multiboot information (0x9000 unless the image is there, see
//!   below); EIP = the entry; ESP = 0x7000 (the specification leaves ESP
//!   undefined: the kernel must set up its own stack); all other general
//!   registers 0.
//! - GDTR = base 0x1000 (unless the image is there), limit 23: a GDT with
//!   a null entry, a flat 32-bit
//!   code entry (0x08) and a flat data entry (0x10), matching the segment
//!   registers. IDTR = base 0, limit 0, so an exception before the kernel
//!   loads its own IDT ends in a triple fault. The local APIC base MSR is
//!   0xfee00900 (enabled, bootstrap processor).
//! - The multiboot information has flags 0x24d: `mem_lower` = 640
//!   and `mem_upper` = (RAM below the hole - 1 MiB) / 1024 (KiB); the memory map
//!   (`mmap_addr`, `mmap_length`; entries of 24 bytes whose `size` field is
//!   20; [`layout::memory_map`]): 0..0x9fc00 available (type 1),
//!   0x9fc00..0xa0000 reserved (2), the BIOS area 0xe0000..0x100000 with
//!   the ACPI tables reserved (2), then RAM as [`layout::RamLayout`] lays
//!   it out (type 1): 0x100000 up to the RAM size or to 3 GiB, whichever is
//!   lower, and with more than 3 GiB the rest from 4 GiB on; the
//!   command line as a NUL-terminated string (`cmdline`); the boot modules
//!   (`mods_count`, `mods_addr`: 16-byte entries `mod_start`, `mod_end`
//!   (exclusive), `string` = the module's name, 0); `boot_loader_name` =
//!   "softvm". The memory map, module list and strings follow the structure.
//! - Modules are copied one after another, each page aligned, starting at
//!   the first page after the image (and not below 1 MiB); they must end in
//!   RAM below the hole (3 GiB).
//! - Where the loader's own data goes: the GDT (24 bytes) at 0x1000 and the
//!   information (structure, memory map, module list, strings) at 0x9000,
//!   as QEMU does, when no segment or module is there. A piece that would
//!   overlap one goes to the first free place after the image instead
//!   (16-byte aligned for the GDT, page aligned for the information),
//!   skipping modules and reserved memory, and failing that to the first
//!   free place from 0x500 up. Free means RAM the memory map calls
//!   available, below 4 GiB, at or above 0x500 (the real-mode IVT and BIOS
//!   data area are left alone). So images linked at 0x1000, 0x8000 or
//!   0x9000 boot: kvm-unit-tests' `realmode.flat` (0x8000..0xda30) gets its
//!   information at 0xe000.
//!
//! # ELF64 boot contract
//!
//! - The file must be ELF64, little-endian, `e_machine` = x86-64 (62),
//!   `e_type` = `ET_EXEC`. Each `PT_LOAD` segment is copied to `p_paddr` and
//!   zero-filled to `p_memsz`. The entry is `e_entry` translated through the
//!   segment containing it (equal to `e_entry` when `p_vaddr == p_paddr`).
//!   Guest RAM must be between 1 MiB and 64 GiB; segments must lie in RAM
//!   (not in the hole between 3 and 4 GiB, nor in the BIOS area
//!   0xe0000..0x100000).
//! - vCPU 0 starts in 64-bit long mode: CR0 = 0x80010011 (PE | ET | WP | PG),
//!   CR4 = 0x20 (PAE), EFER = 0x500 (LME | LMA), CR3 = the page tables. CS = selector
//!   0x08, 64-bit code (L = 1, D = 0, type 0xb); DS, ES, FS, GS, SS = 0x10,
//!   flat data (type 0x3). RIP = the entry; RSP = the top of a 64 KiB
//!   stack (0x90000 for the stack at 0x80000..0x90000); RFLAGS = 0x2
//!   (interrupts off); RDI = 0 (reserved for a pointer to boot information,
//!   none is passed yet); all other general registers 0.
//! - Page tables: an identity map with 2 MiB pages (present, writable,
//!   supervisor) covering all of guest RAM (up to [`layout::RamLayout::end`],
//!   past the hole) and at least the first 4 GiB (so
//!   the local APIC at 0xfee00000 and the I/O APIC at 0xfec00000 are
//!   reachable): PML4 (entry 0 only), then the PDPT, then one page
//!   directory per GiB, in consecutive pages (0x2000, 0x3000, 0x4000..).
//! - GDTR = base 0x1000, limit 23: null, 64-bit code (0x08), data (0x10).
//!   IDTR = base 0, limit 0 (an exception before the program loads an IDT
//!   ends in a triple fault). The local APIC base MSR is 0xfee00900.
//! - The GDT, page tables and stack go to 0x1000, 0x2000 and 0x80000 when
//!   no segment is there, and otherwise where no segment is, by the
//!   multiboot contract's rule above (page tables page aligned, the stack
//!   16-byte aligned). A command line or modules are refused (the contract
//!   has no way to pass them yet).
//!
//! In both contracts only vCPU 0's state is built; other vCPUs wait for
//! INIT/SIPI as on real hardware. The addresses are in [`layout`].

mod cpu;
mod elf;
mod elf64;
mod error;
pub mod layout;
mod multiboot;
mod place;
mod plan;

use std::fmt;

pub use error::LoadError;

use elf::ElfHeader;
use multiboot::{MultibootHeader, Scan};

/// What to load an image with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Bytes of guest RAM, starting at guest-physical address 0.
    pub mem_size: u64,
    /// The kernel command line (multiboot only; a C string for the guest,
    /// so it must not contain NUL).
    pub cmdline: String,
    /// Boot modules, in order (multiboot only; from `--initrd`/`--module`).
    pub modules: Vec<Module>,
    /// How many vCPUs the VM has (at least 1). Only vCPU 0's state is built.
    pub vcpus: u32,
}

impl Default for LoadOptions {
    /// QEMU's defaults: 128 MiB of RAM, one vCPU, no command line or modules.
    fn default() -> Self {
        LoadOptions {
            mem_size: 128 * layout::MIB,
            cmdline: String::new(),
            modules: Vec::new(),
            vcpus: 1,
        }
    }
}

/// A multiboot boot module: its contents and the string the kernel sees.
#[derive(Clone, PartialEq, Eq)]
pub struct Module {
    /// The module's string in the multiboot information (no NUL).
    pub name: String,
    /// The bytes copied into guest RAM.
    pub data: Vec<u8>,
}

impl Module {
    /// A module named `name` holding `data`.
    pub fn new(name: impl Into<String>, data: Vec<u8>) -> Module {
        Module {
            name: name.into(),
            data,
        }
    }
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("len", &self.data.len())
            .finish()
    }
}

/// The kind of an image, and so its boot contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// A multiboot v1 kernel, entered in 32-bit protected mode.
    Multiboot32,
    /// A bare-metal ELF64 program, entered in 64-bit long mode.
    Elf64,
}

/// The vCPU 0 state an image boots with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootState {
    pub kind: ImageKind,
    pub regs: emu_core::Regs,
    pub sregs: emu_core::Sregs,
    /// The physical entry point (equal to `regs.rip`).
    pub entry: u64,
}

/// How an image will be booted, with what its headers said.
enum Class {
    Multiboot {
        header: MultibootHeader,
        elf: Option<ElfHeader>,
    },
    Elf64(ElfHeader),
}

/// Parses just enough of the image to choose its boot contract.
fn classify(image: &[u8]) -> Result<Class, LoadError> {
    match multiboot::scan(image)? {
        Scan::Found(header) => {
            multiboot::check_flags(&header)?;
            if header.addr.is_some() {
                // The address fields decide; any ELF headers are ignored.
                return Ok(Class::Multiboot { header, elf: None });
            }
            if !elf::is_elf(image) {
                return Err(LoadError::NotElfNoAddressFields);
            }
            let elf = elf::parse_header(image)?;
            elf.check_machine()?;
            elf.check_type()?;
            Ok(Class::Multiboot {
                header,
                elf: Some(elf),
            })
        }
        scan => {
            if !elf::is_elf(image) {
                return Err(match scan {
                    Scan::BadChecksum { offset, sum } => LoadError::BadChecksum { offset, sum },
                    _ => LoadError::NotElf,
                });
            }
            let elf = elf::parse_header(image)?;
            elf.check_machine()?;
            if !elf.is64 {
                return Err(match scan {
                    Scan::BadChecksum { offset, sum } => LoadError::BadChecksum { offset, sum },
                    _ => LoadError::NotMultiboot,
                });
            }
            elf.check_type()?;
            Ok(Class::Elf64(elf))
        }
    }
}

/// Tells which boot contract an image gets, checking its headers (but not
/// its segments: [`load`] does that).
///
/// A valid multiboot header decides first (as with QEMU and GRUB, even in
/// an ELF64 file); otherwise an x86-64 ELF64 executable is bare-metal ELF64,
/// and an ELF32 file is refused as "not a multiboot image".
pub fn detect(image: &[u8]) -> Result<ImageKind, LoadError> {
    Ok(match classify(image)? {
        Class::Multiboot { .. } => ImageKind::Multiboot32,
        Class::Elf64(_) => ImageKind::Elf64,
    })
}

/// Checks the options every contract needs.
fn check_options(opts: &LoadOptions) -> Result<(), LoadError> {
    if opts.vcpus == 0 {
        return Err(LoadError::NoVcpus);
    }
    if opts.mem_size < layout::MIN_MEM_SIZE {
        return Err(LoadError::MemoryTooSmall {
            mem_size: opts.mem_size,
            min: layout::MIN_MEM_SIZE,
        });
    }
    Ok(())
}

/// Validates the image against the options and returns the boot state and
/// the guest-memory writes, without touching guest memory.
fn prepare<'a>(
    image: &'a [u8],
    opts: &'a LoadOptions,
) -> Result<(BootState, plan::Plan<'a>), LoadError> {
    let class = classify(image)?;
    check_options(opts)?;
    match &class {
        Class::Multiboot { header, elf } => multiboot::prepare(image, header, elf.as_ref(), opts),
        Class::Elf64(elf) => elf64::prepare(image, elf, opts),
    }
}

/// Loads `image` into `mem` (RAM of `opts.mem_size` bytes at address 0) and
/// returns the state vCPU 0 boots with. Nothing is written unless the whole
/// image, its modules and the boot data fit.
pub fn load(
    image: &[u8],
    mem: &softmmu::GuestMemory,
    opts: &LoadOptions,
) -> Result<BootState, LoadError> {
    let (state, plan) = prepare(image, opts)?;
    let ram = mem.ram_size();
    if ram < opts.mem_size {
        return Err(LoadError::RamSmallerThanOptions {
            ram,
            mem_size: opts.mem_size,
        });
    }
    plan.apply(mem)?;
    Ok(state)
}

#[cfg(test)]
mod tests;
