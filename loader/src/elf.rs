//! ELF header and program-header parsing on top of goblin.
//!
//! goblin is only handed input whose size this module has already checked:
//! the whole ELF header is present before `Elf::parse_header`, and the whole
//! program header table lies inside the file (with the entry size goblin
//! expects) before `ProgramHeader::parse`. With those checks goblin's parsers
//! only read in bounds and return errors, never panic, so no `catch_unwind`
//! is needed; the fuzz test in `tests/fuzz.rs` exercises this.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EM_386, EM_X86_64, ET_EXEC};
use goblin::elf::program_header::PT_LOAD;
use goblin::elf::{Elf, Header, ProgramHeader};

use crate::plan::LoadSegment;
use crate::LoadError;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const EI_NIDENT: usize = 16;
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EHDR32_SIZE: usize = 52;
const EHDR64_SIZE: usize = 64;
const PHDR32_SIZE: u16 = 32;
const PHDR64_SIZE: u16 = 56;

/// Whether the image starts with the ELF magic.
pub(crate) fn is_elf(image: &[u8]) -> bool {
    image.get(..4) == Some(&ELF_MAGIC[..])
}

/// A parsed, sanity-checked ELF header.
#[derive(Debug)]
pub(crate) struct ElfHeader {
    pub header: Header,
    pub is64: bool,
}

/// Parses the ELF header after checking magic, class, byte order and size.
pub(crate) fn parse_header(image: &[u8]) -> Result<ElfHeader, LoadError> {
    if !is_elf(image) {
        return Err(LoadError::NotElf);
    }
    if image.len() < EI_NIDENT {
        return Err(LoadError::TruncatedHeader {
            len: image.len(),
            need: EI_NIDENT,
        });
    }
    let class = image[EI_CLASS];
    let (is64, need) = match class {
        ELFCLASS32 => (false, EHDR32_SIZE),
        ELFCLASS64 => (true, EHDR64_SIZE),
        other => return Err(LoadError::BadClass(other)),
    };
    let data = image[EI_DATA];
    if data != ELFDATA2LSB {
        return Err(LoadError::NotLittleEndian(data));
    }
    if image.len() < need {
        return Err(LoadError::TruncatedHeader {
            len: image.len(),
            need,
        });
    }
    let header = Elf::parse_header(image).map_err(LoadError::Elf)?;
    Ok(ElfHeader { header, is64 })
}

impl ElfHeader {
    /// Checks e_machine against the class: EM_386 for ELF32, EM_X86_64 for
    /// ELF64.
    pub fn check_machine(&self) -> Result<(), LoadError> {
        let (bits, expected, name) = if self.is64 {
            (64, EM_X86_64, "x86-64")
        } else {
            (32, EM_386, "i386")
        };
        if self.header.e_machine != expected {
            return Err(LoadError::WrongMachine {
                bits,
                found: self.header.e_machine,
                expected,
                name,
            });
        }
        Ok(())
    }

    /// Checks that the file is an executable (ET_EXEC).
    pub fn check_type(&self) -> Result<(), LoadError> {
        if self.header.e_type != ET_EXEC {
            return Err(LoadError::WrongType(self.header.e_type));
        }
        Ok(())
    }

    /// Parses the program header table and returns the PT_LOAD segments with
    /// a non-zero memory size, each checked against the file.
    pub fn segments<'a>(&self, image: &'a [u8]) -> Result<Vec<LoadSegment<'a>>, LoadError> {
        let h = &self.header;
        if h.e_phnum == 0 {
            return Err(LoadError::NoLoadableSegments);
        }
        let (entsize, container) = if self.is64 {
            (PHDR64_SIZE, Container::Big)
        } else {
            (PHDR32_SIZE, Container::Little)
        };
        if h.e_phentsize != entsize {
            return Err(LoadError::BadProgramHeaderSize {
                found: h.e_phentsize,
                expected: entsize,
            });
        }
        let beyond = LoadError::ProgramHeadersBeyondFile {
            offset: h.e_phoff,
            count: h.e_phnum,
            len: image.len(),
        };
        let table = u64::from(h.e_phnum) * u64::from(entsize);
        let fits = h
            .e_phoff
            .checked_add(table)
            .is_some_and(|end| end <= image.len() as u64);
        if !fits {
            return Err(beyond);
        }
        let offset = usize::try_from(h.e_phoff).map_err(|_| beyond)?;
        let phdrs = ProgramHeader::parse(
            image,
            offset,
            usize::from(h.e_phnum),
            Ctx::new(container, Endian::Little),
        )
        .map_err(LoadError::Elf)?;

        let mut segs = Vec::new();
        for (index, ph) in phdrs.iter().enumerate() {
            if ph.p_type != PT_LOAD {
                continue;
            }
            if ph.p_filesz > ph.p_memsz {
                return Err(LoadError::FileszExceedsMemsz {
                    index,
                    filesz: ph.p_filesz,
                    memsz: ph.p_memsz,
                });
            }
            let beyond = LoadError::SegmentBeyondFile {
                index,
                offset: ph.p_offset,
                filesz: ph.p_filesz,
                len: image.len(),
            };
            let start = usize::try_from(ph.p_offset);
            let len = usize::try_from(ph.p_filesz);
            let data = match (start, len) {
                (Ok(start), Ok(len)) => start
                    .checked_add(len)
                    .and_then(|end| image.get(start..end))
                    .ok_or(beyond)?,
                _ => return Err(beyond),
            };
            if ph.p_memsz == 0 {
                continue;
            }
            segs.push(LoadSegment {
                index,
                paddr: ph.p_paddr,
                vaddr: ph.p_vaddr,
                data,
                memsz: ph.p_memsz,
            });
        }
        if segs.is_empty() {
            return Err(LoadError::NoLoadableSegments);
        }
        Ok(segs)
    }
}
