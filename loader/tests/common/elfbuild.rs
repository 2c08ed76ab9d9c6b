//! A tiny ELF writer for tests: ELF32/ELF64 executables with PT_LOAD
//! segments and an optional multiboot header, and raw a.out-kludge
//! multiboot images. Shared by the unit tests (via `#[path]`) and the
//! integration tests.
#![allow(dead_code)]

pub const MB_MAGIC: u32 = 0x1bad_b002;
pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const EM_386: u16 = 3;
pub const EM_X86_64: u16 = 62;
pub const ET_EXEC: u16 = 2;

/// Offsets of ELF header fields that differ between the classes.
pub struct HeaderOffsets {
    pub e_entry: usize,
    pub e_phoff: usize,
    pub e_phentsize: usize,
    pub e_phnum: usize,
}

pub const ELF32_OFFSETS: HeaderOffsets = HeaderOffsets {
    e_entry: 24,
    e_phoff: 28,
    e_phentsize: 42,
    e_phnum: 44,
};
pub const ELF64_OFFSETS: HeaderOffsets = HeaderOffsets {
    e_entry: 24,
    e_phoff: 32,
    e_phentsize: 54,
    e_phnum: 56,
};

#[derive(Clone, Debug)]
pub struct Seg {
    pub p_type: u32,
    pub vaddr: u64,
    pub paddr: u64,
    pub data: Vec<u8>,
    pub memsz: u64,
    /// Overrides the file offset (default: where the builder puts the data).
    pub offset: Option<u64>,
    /// Overrides p_filesz (default: data.len()).
    pub filesz: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct ElfBuilder {
    pub class64: bool,
    pub machine: u16,
    pub e_type: u16,
    pub entry: u64,
    pub segs: Vec<Seg>,
    /// Multiboot header flags and the words after the checksum.
    pub multiboot: Option<(u32, Vec<u32>)>,
}

/// The three words of a multiboot header with a valid checksum, then
/// `extra`.
pub fn multiboot_header(flags: u32, extra: &[u32]) -> Vec<u8> {
    let sum = 0u32.wrapping_sub(MB_MAGIC.wrapping_add(flags));
    [MB_MAGIC, flags, sum]
        .iter()
        .chain(extra)
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

impl ElfBuilder {
    /// ELF32 i386 executable with a multiboot header (flags 0).
    pub fn multiboot32(entry: u64) -> Self {
        ElfBuilder {
            class64: false,
            machine: EM_386,
            e_type: ET_EXEC,
            entry,
            segs: Vec::new(),
            multiboot: Some((0, Vec::new())),
        }
    }

    /// ELF64 x86-64 executable, no multiboot header.
    pub fn elf64(entry: u64) -> Self {
        ElfBuilder {
            class64: true,
            machine: EM_X86_64,
            e_type: ET_EXEC,
            entry,
            segs: Vec::new(),
            multiboot: None,
        }
    }

    /// Adds a PT_LOAD segment with p_vaddr = p_paddr.
    pub fn seg(mut self, paddr: u64, data: &[u8], memsz: u64) -> Self {
        self.segs.push(Seg {
            p_type: PT_LOAD,
            vaddr: paddr,
            paddr,
            data: data.to_vec(),
            memsz,
            offset: None,
            filesz: None,
        });
        self
    }

    pub fn offsets(&self) -> HeaderOffsets {
        if self.class64 {
            ELF64_OFFSETS
        } else {
            ELF32_OFFSETS
        }
    }

    pub fn ehsize(&self) -> usize {
        if self.class64 {
            64
        } else {
            52
        }
    }

    pub fn phentsize(&self) -> usize {
        if self.class64 {
            56
        } else {
            32
        }
    }

    /// File offset of program header `i`.
    pub fn phdr_offset(&self, i: usize) -> usize {
        self.ehsize() + i * self.phentsize()
    }

    pub fn build(&self) -> Vec<u8> {
        let phoff = self.ehsize();
        let mut cursor = phoff + self.segs.len() * self.phentsize();
        let mut out = vec![0u8; cursor];
        if let Some((flags, extra)) = &self.multiboot {
            cursor = cursor.next_multiple_of(4);
            out.resize(cursor, 0);
            let h = multiboot_header(*flags, extra);
            cursor += h.len();
            out.extend_from_slice(&h);
        }
        let mut offsets = Vec::new();
        for s in &self.segs {
            cursor = cursor.next_multiple_of(16);
            out.resize(cursor, 0);
            offsets.push(cursor as u64);
            out.extend_from_slice(&s.data);
            cursor += s.data.len();
        }
        // Header.
        out[0..4].copy_from_slice(b"\x7fELF");
        out[4] = if self.class64 { 2 } else { 1 };
        out[5] = 1;
        out[6] = 1;
        let put16 =
            |o: &mut Vec<u8>, at: usize, v: u16| o[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |o: &mut Vec<u8>, at: usize, v: u32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 =
            |o: &mut Vec<u8>, at: usize, v: u64| o[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put16(&mut out, 16, self.e_type);
        put16(&mut out, 18, self.machine);
        put32(&mut out, 20, 1);
        if self.class64 {
            put64(&mut out, 24, self.entry);
            put64(&mut out, 32, phoff as u64);
            put16(&mut out, 52, 64);
            put16(&mut out, 54, 56);
            put16(&mut out, 56, self.segs.len() as u16);
            put16(&mut out, 58, 64);
        } else {
            put32(&mut out, 24, self.entry as u32);
            put32(&mut out, 28, phoff as u32);
            put16(&mut out, 40, 52);
            put16(&mut out, 42, 32);
            put16(&mut out, 44, self.segs.len() as u16);
            put16(&mut out, 46, 40);
        }
        for (i, (s, off)) in self.segs.iter().zip(offsets).enumerate() {
            let at = self.phdr_offset(i);
            let offset = s.offset.unwrap_or(off);
            let filesz = s.filesz.unwrap_or(s.data.len() as u64);
            if self.class64 {
                put32(&mut out, at, s.p_type);
                put32(&mut out, at + 4, 7);
                put64(&mut out, at + 8, offset);
                put64(&mut out, at + 16, s.vaddr);
                put64(&mut out, at + 24, s.paddr);
                put64(&mut out, at + 32, filesz);
                put64(&mut out, at + 40, s.memsz);
                put64(&mut out, at + 48, 16);
            } else {
                put32(&mut out, at, s.p_type);
                put32(&mut out, at + 4, offset as u32);
                put32(&mut out, at + 8, s.vaddr as u32);
                put32(&mut out, at + 12, s.paddr as u32);
                put32(&mut out, at + 16, filesz as u32);
                put32(&mut out, at + 20, s.memsz as u32);
                put32(&mut out, at + 24, 7);
                put32(&mut out, at + 28, 16);
            }
        }
        out
    }
}

/// A raw (non-ELF) multiboot image with address fields: a 32-byte header
/// at offset 0, then `code`; loaded at `load_addr`, bss up to `bss_end`
/// (0: none), entry at the first byte of `code`.
pub fn kludge_image(load_addr: u32, code: &[u8], bss_end: u32) -> Vec<u8> {
    let load_end = load_addr + 32 + code.len() as u32;
    let mut v = multiboot_header(
        1 << 16,
        &[load_addr, load_addr, load_end, bss_end, load_addr + 32],
    );
    v.extend_from_slice(code);
    v
}

/// Little-endian field access for tests that patch images.
pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
pub fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
