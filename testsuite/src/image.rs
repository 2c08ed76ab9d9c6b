//! Writing guest images: multiboot ELF32 and bare-metal ELF64 executables
//! with PT_LOAD segments, as `softvm run` and `qemu -kernel` load them.

/// One loadable segment.
#[derive(Clone, Debug)]
pub struct Segment {
    pub paddr: u64,
    pub data: Vec<u8>,
    /// Memory size (>= data.len(); the rest is zeroed bss).
    pub memsz: u64,
}

const MB_MAGIC: u32 = 0x1bad_b002;

/// A multiboot v1 header (flags 0) with a valid checksum.
pub fn multiboot_header() -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0..4].copy_from_slice(&MB_MAGIC.to_le_bytes());
    h[8..12].copy_from_slice(&(MB_MAGIC.wrapping_neg()).to_le_bytes());
    h
}

/// An ELF executable: ELF32/i386 when `class64` is false (multiboot images
/// carry their header in the first segment), ELF64/x86-64 otherwise.
pub fn elf(class64: bool, entry: u64, segs: &[Segment]) -> Vec<u8> {
    let (ehsize, phentsize) = if class64 {
        (64usize, 56usize)
    } else {
        (52, 32)
    };
    let phoff = ehsize;
    let mut data_off = phoff + phentsize * segs.len();
    data_off = (data_off + 0xfff) & !0xfff;
    let mut out = vec![0u8; data_off];
    out[0..4].copy_from_slice(b"\x7fELF");
    out[4] = if class64 { 2 } else { 1 };
    out[5] = 1; // little-endian
    out[6] = 1; // version
    let put16 =
        |b: &mut Vec<u8>, at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 =
        |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put16(&mut out, 16, 2); // ET_EXEC
    put16(&mut out, 18, if class64 { 62 } else { 3 });
    put32(&mut out, 20, 1);
    if class64 {
        put64(&mut out, 24, entry);
        put64(&mut out, 32, phoff as u64);
        put16(&mut out, 52, ehsize as u16);
        put16(&mut out, 54, phentsize as u16);
        put16(&mut out, 56, segs.len() as u16);
    } else {
        put32(&mut out, 24, entry as u32);
        put32(&mut out, 28, phoff as u32);
        put16(&mut out, 40, ehsize as u16);
        put16(&mut out, 42, phentsize as u16);
        put16(&mut out, 44, segs.len() as u16);
    }
    let mut file_off = data_off;
    let mut blobs = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let p = phoff + i * phentsize;
        let memsz = s.memsz.max(s.data.len() as u64);
        if class64 {
            put32(&mut out, p, 1);
            put32(&mut out, p + 4, 7);
            put64(&mut out, p + 8, file_off as u64);
            put64(&mut out, p + 16, s.paddr);
            put64(&mut out, p + 24, s.paddr);
            put64(&mut out, p + 32, s.data.len() as u64);
            put64(&mut out, p + 40, memsz);
            put64(&mut out, p + 48, 0x1000);
        } else {
            put32(&mut out, p, 1);
            put32(&mut out, p + 4, file_off as u32);
            put32(&mut out, p + 8, s.paddr as u32);
            put32(&mut out, p + 12, s.paddr as u32);
            put32(&mut out, p + 16, s.data.len() as u32);
            put32(&mut out, p + 20, memsz as u32);
            put32(&mut out, p + 24, 7);
            put32(&mut out, p + 28, 0x1000);
        }
        blobs.push(s.data.clone());
        file_off += s.data.len();
    }
    for b in blobs {
        out.extend_from_slice(&b);
    }
    out
}

/// The PT_LOAD segments of an ELF32 image written by [`elf`] (to add more
/// and write it again).
pub fn segments_of(img: &[u8]) -> Vec<Segment> {
    let rd32 = |at: usize| u32::from_le_bytes([img[at], img[at + 1], img[at + 2], img[at + 3]]);
    let rd16 = |at: usize| u16::from_le_bytes([img[at], img[at + 1]]);
    let (phoff, phnum) = (rd32(28) as usize, rd16(44) as usize);
    (0..phnum)
        .map(|i| {
            let p = phoff + i * 32;
            let (off, paddr, filesz, memsz) = (
                rd32(p + 4) as usize,
                rd32(p + 12),
                rd32(p + 16) as usize,
                rd32(p + 20),
            );
            Segment {
                paddr: u64::from(paddr),
                data: img[off..off + filesz].to_vec(),
                memsz: u64::from(memsz),
            }
        })
        .collect()
}
