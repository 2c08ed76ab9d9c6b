//! The loader's error type.

/// Why an image could not be loaded. Each message is one line naming the
/// problem; the caller prefixes the file name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Neither ELF magic nor a multiboot header.
    #[error("not an ELF file (no ELF magic) and not a multiboot image (no multiboot header in the first 8 KiB)")]
    NotElf,
    /// An ELF32 file without a multiboot header.
    #[error(
        "not a multiboot image: no multiboot header in the first 8 KiB of this 32-bit ELF file"
    )]
    NotMultiboot,
    /// A multiboot magic whose checksum does not add up.
    #[error("not a multiboot image: the multiboot header at offset {offset:#x} has a bad checksum (magic + flags + checksum = {sum:#x}, must be 0)")]
    BadChecksum { offset: usize, sum: u32 },
    /// The address fields of a multiboot header are cut off.
    #[error("the multiboot header at offset {offset:#x} is cut off by the end of the file or of its first 8 KiB")]
    MultibootHeaderTruncated { offset: usize },
    /// Required multiboot features (flags bits 0..=15) softvm lacks.
    #[error("the multiboot header requires features softvm does not provide (flags {flags:#010x}; supported required bits are 0, 1 and 2)")]
    UnsupportedMultibootFlags { flags: u32 },
    /// Inconsistent a.out-kludge address fields (flag bit 16).
    #[error("bad multiboot address fields (flag bit 16): {0}")]
    BadAddressFields(&'static str),
    /// A multiboot header without address fields in a file that is not ELF.
    #[error("the multiboot image is not an ELF file and its header does not give load addresses (flag bit 16)")]
    NotElfNoAddressFields,
    /// EI_CLASS is neither ELF32 nor ELF64.
    #[error("unsupported ELF class {0} (expected 1 for ELF32 or 2 for ELF64)")]
    BadClass(u8),
    /// EI_DATA is not little-endian.
    #[error("unsupported ELF data encoding {0} (x86 images are little-endian, 1)")]
    NotLittleEndian(u8),
    /// The file ends inside the ELF header.
    #[error("truncated ELF header: the file has {len} bytes, the header needs {need}")]
    TruncatedHeader { len: usize, need: usize },
    /// e_machine does not match the class.
    #[error("ELF{bits} file for machine {found}, expected {expected} ({name})")]
    WrongMachine {
        bits: u8,
        found: u16,
        expected: u16,
        name: &'static str,
    },
    /// e_type is not ET_EXEC.
    #[error("ELF file type {0} is not an executable (ET_EXEC, 2)")]
    WrongType(u16),
    /// e_phentsize does not match the class.
    #[error("ELF program header size is {found} bytes, expected {expected}")]
    BadProgramHeaderSize { found: u16, expected: u16 },
    /// The program header table does not fit in the file.
    #[error("ELF program headers ({count} at offset {offset:#x}) extend beyond the end of the file ({len} bytes)")]
    ProgramHeadersBeyondFile { offset: u64, count: u16, len: usize },
    /// No PT_LOAD segment with a non-zero size.
    #[error("the ELF file has no loadable segment")]
    NoLoadableSegments,
    /// A segment's file data does not fit in the file.
    #[error("segment {index}: its data ({filesz} bytes at offset {offset:#x}) extends beyond the end of the file ({len} bytes)")]
    SegmentBeyondFile {
        index: usize,
        offset: u64,
        filesz: u64,
        len: usize,
    },
    /// p_filesz > p_memsz.
    #[error("segment {index}: file size {filesz:#x} is larger than memory size {memsz:#x}")]
    FileszExceedsMemsz {
        index: usize,
        filesz: u64,
        memsz: u64,
    },
    /// A segment does not fit in guest RAM.
    #[error("segment {index} (physical {paddr:#x}, {memsz:#x} bytes) lies outside guest RAM (0x0..{mem_size:#x})")]
    SegmentOutsideRam {
        index: usize,
        paddr: u64,
        memsz: u64,
        mem_size: u64,
    },
    /// A multiboot segment ends above 4 GiB.
    #[error("segment {index} (physical {paddr:#x}, {memsz:#x} bytes) ends above 4 GiB, out of reach of a 32-bit multiboot kernel")]
    SegmentAbove4G {
        index: usize,
        paddr: u64,
        memsz: u64,
    },
    /// Two segments share guest-physical memory.
    #[error("segments {first} and {second} overlap in physical memory")]
    SegmentsOverlap { first: usize, second: usize },
    /// A segment overlaps memory the machine keeps for itself (the BIOS
    /// area with the ACPI tables).
    #[error("segment {index} ({start:#x}..{end:#x}) overlaps the {what} at {data_start:#x}..{data_end:#x}")]
    OverlapsBootData {
        index: usize,
        start: u64,
        end: u64,
        what: &'static str,
        data_start: u64,
        data_end: u64,
    },
    /// The entry point is not inside any loaded segment.
    #[error("entry point {entry:#x} is not inside any loaded segment")]
    EntryOutsideSegments { entry: u64 },
    /// Guest RAM below the minimum.
    #[error("guest RAM of {mem_size:#x} bytes is too small: the loader needs at least {min:#x}")]
    MemoryTooSmall { mem_size: u64, min: u64 },
    /// Guest RAM beyond what the ELF64 boot page tables cover.
    #[error("guest RAM of {mem_size:#x} bytes is too large for the ELF64 boot page tables (at most {max:#x})")]
    MemoryTooLarge { mem_size: u64, max: u64 },
    /// The guest memory object holds less RAM than the options say.
    #[error("guest memory holds {ram:#x} bytes of RAM, less than the {mem_size:#x} the load options give")]
    RamSmallerThanOptions { ram: u64, mem_size: u64 },
    /// A module does not fit in guest RAM (below 4 GiB).
    #[error("module '{name}' ({size} bytes) does not fit in guest RAM below {limit:#x}")]
    ModuleDoesNotFit {
        name: String,
        size: usize,
        limit: u64,
    },
    /// No free RAM for a piece of the loader's own data.
    #[error("no free RAM below 4 GiB for the loader's {what} ({len} bytes) beside the image and modules")]
    NoRoomForBootData { what: &'static str, len: u64 },
    /// A string passed as a C string contains a NUL byte.
    #[error("the {what} contains a NUL byte")]
    NulInString { what: String },
    /// The ELF64 contract passes no command line or modules.
    #[error("ELF64 images take no {0} (the ELF64 boot contract passes no boot information yet)")]
    NoBootInfoForElf64(&'static str),
    /// `vcpus` is zero.
    #[error("the VM needs at least one vCPU")]
    NoVcpus,
    /// goblin refused the ELF header or program headers.
    #[error("malformed ELF file: {0}")]
    Elf(goblin::error::Error),
    /// Writing guest RAM failed.
    #[error("writing guest memory failed: {0}")]
    Memory(softmmu::MemError),
}
