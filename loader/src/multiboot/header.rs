//! The multiboot v1 header in an image and its a.out-kludge address fields.

use crate::plan::LoadSegment;
use crate::LoadError;

/// The magic that starts a multiboot header.
pub const HEADER_MAGIC: u32 = 0x1bad_b002;
/// EAX at entry: "a multiboot loader started you".
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
/// The header must lie entirely within this many bytes of the file.
pub const SEARCH_LIMIT: usize = 8192;
/// Header flag: the address fields are valid (the "a.out kludge").
pub const FLAG_ADDRESS_FIELDS: u32 = 1 << 16;
/// Required-feature bits (0..=15) softvm honours: 0 page-align modules
/// (always done), 1 memory information (always given), 2 video mode
/// (accepted and ignored, as QEMU does: no video information is passed).
pub const SUPPORTED_REQUIRED_FLAGS: u32 = 0b111;

/// The address fields of a header with flag bit 16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AddressFields {
    pub header_addr: u32,
    pub load_addr: u32,
    pub load_end_addr: u32,
    pub bss_end_addr: u32,
    pub entry_addr: u32,
}

/// A multiboot header with a valid checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MultibootHeader {
    /// File offset of the magic.
    pub offset: usize,
    pub flags: u32,
    pub addr: Option<AddressFields>,
}

/// What a search of the first 8 KiB found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    Found(MultibootHeader),
    /// A magic, but no valid checksum anywhere: the first such magic.
    BadChecksum {
        offset: usize,
        sum: u32,
    },
    Absent,
}

fn read_u32(bytes: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    let b: [u8; 4] = bytes.get(off..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Finds the first 4-byte-aligned multiboot header with a valid checksum in
/// the first 8 KiB, as GRUB and QEMU do.
pub(crate) fn scan(image: &[u8]) -> Result<Scan, LoadError> {
    let window = &image[..image.len().min(SEARCH_LIMIT)];
    let mut bad = None;
    let mut off = 0usize;
    while off + 12 <= window.len() {
        if read_u32(window, off) == Some(HEADER_MAGIC) {
            let flags = read_u32(window, off + 4).unwrap_or(0);
            let checksum = read_u32(window, off + 8).unwrap_or(0);
            let sum = HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum);
            if sum == 0 {
                let addr = if flags & FLAG_ADDRESS_FIELDS != 0 {
                    let field = |i: usize| {
                        read_u32(window, off + 12 + 4 * i)
                            .ok_or(LoadError::MultibootHeaderTruncated { offset: off })
                    };
                    Some(AddressFields {
                        header_addr: field(0)?,
                        load_addr: field(1)?,
                        load_end_addr: field(2)?,
                        bss_end_addr: field(3)?,
                        entry_addr: field(4)?,
                    })
                } else {
                    None
                };
                return Ok(Scan::Found(MultibootHeader {
                    offset: off,
                    flags,
                    addr,
                }));
            }
            if bad.is_none() {
                bad = Some(Scan::BadChecksum { offset: off, sum });
            }
        }
        off += 4;
    }
    Ok(bad.unwrap_or(Scan::Absent))
}

/// Refuses headers that require features softvm lacks.
pub(crate) fn check_flags(h: &MultibootHeader) -> Result<(), LoadError> {
    if h.flags & 0xffff & !SUPPORTED_REQUIRED_FLAGS != 0 {
        return Err(LoadError::UnsupportedMultibootFlags { flags: h.flags });
    }
    Ok(())
}

/// The one segment an a.out-kludge header describes, and its entry point.
pub(super) fn kludge_segment<'a>(
    image: &'a [u8],
    header_offset: usize,
    a: &AddressFields,
) -> Result<(LoadSegment<'a>, u64), LoadError> {
    let bad = LoadError::BadAddressFields;
    let back = a
        .header_addr
        .checked_sub(a.load_addr)
        .ok_or(bad("header_addr is below load_addr"))?;
    let file_len = image.len() as u64;
    let load_offset = (header_offset as u64)
        .checked_sub(u64::from(back))
        .ok_or(bad("load_addr lies before the start of the file"))?;
    let load_size = if a.load_end_addr == 0 {
        // Offsets are within the file, so this cannot underflow.
        file_len.saturating_sub(load_offset)
    } else {
        u64::from(
            a.load_end_addr
                .checked_sub(a.load_addr)
                .ok_or(bad("load_end_addr is below load_addr"))?,
        )
    };
    let load_end = load_offset
        .checked_add(load_size)
        .filter(|&end| end <= file_len)
        .ok_or(bad("load_end_addr asks for more bytes than the file holds"))?;
    let memsz = if a.bss_end_addr == 0 {
        load_size
    } else {
        u64::from(a.bss_end_addr)
            .checked_sub(u64::from(a.load_addr))
            .filter(|&m| m >= load_size)
            .ok_or(bad("bss_end_addr is below the end of the loaded data"))?
    };
    if memsz == 0 {
        return Err(LoadError::NoLoadableSegments);
    }
    let (start, end) = match (usize::try_from(load_offset), usize::try_from(load_end)) {
        (Ok(s), Ok(e)) => (s, e),
        _ => return Err(bad("load_end_addr asks for more bytes than the file holds")),
    };
    let data = image
        .get(start..end)
        .ok_or(bad("load_end_addr asks for more bytes than the file holds"))?;
    let seg = LoadSegment {
        index: 0,
        paddr: a.load_addr.into(),
        vaddr: a.load_addr.into(),
        data,
        memsz,
    };
    Ok((seg, a.entry_addr.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u32, extra: &[u32]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [
            HEADER_MAGIC,
            flags,
            0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(flags)),
        ]
        .iter()
        .chain(extra)
        {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v
    }

    #[test]
    fn scan_finds_aligned_header_only() {
        let mut img = vec![0u8; 64];
        img[2..14].copy_from_slice(&header(0, &[]));
        assert_eq!(scan(&img).unwrap(), Scan::Absent);
        img[16..28].copy_from_slice(&header(3, &[]));
        assert_eq!(
            scan(&img).unwrap(),
            Scan::Found(MultibootHeader {
                offset: 16,
                flags: 3,
                addr: None
            })
        );
    }

    #[test]
    fn scan_stops_at_8k() {
        let mut img = vec![0u8; 9000];
        img[8184..8196].copy_from_slice(&header(0, &[]));
        assert_eq!(scan(&img).unwrap(), Scan::Absent);
        img[8180..8192].copy_from_slice(&header(0, &[]));
        assert!(matches!(scan(&img).unwrap(), Scan::Found(_)));
    }

    #[test]
    fn scan_reports_bad_checksum_and_skips_it() {
        let mut img = vec![0u8; 64];
        let mut h = header(0, &[]);
        h[8] ^= 1;
        img[0..12].copy_from_slice(&h);
        assert!(matches!(
            scan(&img).unwrap(),
            Scan::BadChecksum { offset: 0, .. }
        ));
        img[20..32].copy_from_slice(&header(0, &[]));
        assert!(matches!(
            scan(&img).unwrap(),
            Scan::Found(MultibootHeader { offset: 20, .. })
        ));
    }

    #[test]
    fn scan_truncated_address_fields() {
        let img = header(FLAG_ADDRESS_FIELDS, &[1, 2]);
        assert!(matches!(
            scan(&img),
            Err(LoadError::MultibootHeaderTruncated { offset: 0 })
        ));
    }

    #[test]
    fn unsupported_required_flags() {
        let h = MultibootHeader {
            offset: 0,
            flags: 0x8,
            addr: None,
        };
        assert!(check_flags(&h).is_err());
        let h = MultibootHeader {
            offset: 0,
            flags: 0x7 | FLAG_ADDRESS_FIELDS | 0x8000_0000,
            addr: None,
        };
        assert!(check_flags(&h).is_ok());
    }

    #[test]
    fn kludge_arithmetic() {
        // Header at file offset 0x20, loaded from file offset 0.
        let img = vec![7u8; 0x100];
        let a = AddressFields {
            header_addr: 0x10_0020,
            load_addr: 0x10_0000,
            load_end_addr: 0x10_0080,
            bss_end_addr: 0x10_1000,
            entry_addr: 0x10_0040,
        };
        let (s, entry) = kludge_segment(&img, 0x20, &a).unwrap();
        assert_eq!(
            (s.paddr, s.data.len(), s.memsz, entry),
            (0x10_0000, 0x80, 0x1000, 0x10_0040)
        );
        let whole = AddressFields {
            load_end_addr: 0,
            bss_end_addr: 0,
            ..a
        };
        let (s, _) = kludge_segment(&img, 0x20, &whole).unwrap();
        assert_eq!((s.data.len(), s.memsz), (0x100, 0x100));
        for bad in [
            AddressFields {
                header_addr: 0xf_0000,
                ..a
            },
            AddressFields {
                header_addr: 0x10_0040,
                ..a
            },
            AddressFields {
                load_end_addr: 0xf_0000,
                ..a
            },
            AddressFields {
                load_end_addr: 0x10_0200,
                ..a
            },
            AddressFields {
                bss_end_addr: 0x10_0010,
                ..a
            },
        ] {
            assert!(
                matches!(
                    kludge_segment(&img, 0x20, &bad),
                    Err(LoadError::BadAddressFields(_))
                ),
                "{bad:?}"
            );
        }
    }
}
