//! Loadable segments, their checks, and the list of guest-memory writes a
//! load performs. Everything is validated while the plan is built; only
//! [`Plan::apply`] touches guest memory.

use std::borrow::Cow;

use crate::LoadError;

/// One loadable piece of the image: `data` goes to `paddr`, then zeros up to
/// `paddr + memsz`.
#[derive(Clone, Debug)]
pub(crate) struct LoadSegment<'a> {
    /// Program header index (0 for an a.out-kludge image), for messages.
    pub index: usize,
    pub paddr: u64,
    pub vaddr: u64,
    pub data: &'a [u8],
    pub memsz: u64,
}

impl LoadSegment<'_> {
    /// One past the last physical byte; call only after [`check_segments`].
    pub fn end(&self) -> u64 {
        self.paddr.saturating_add(self.memsz)
    }
}

/// Checks that every segment lies in one region of guest RAM (and below
/// `limit`, for 32-bit kernels) and that no two segments overlap.
pub(crate) fn check_segments(
    segs: &[LoadSegment<'_>],
    mem_size: u64,
    limit: Option<u64>,
) -> Result<(), LoadError> {
    let ram = crate::layout::RamLayout::new(mem_size);
    if segs.is_empty() {
        return Err(LoadError::NoLoadableSegments);
    }
    for s in segs {
        let end = s.paddr.checked_add(s.memsz);
        if let (Some(limit), Some(end)) = (limit, end) {
            if end > limit {
                return Err(LoadError::SegmentAbove4G {
                    index: s.index,
                    paddr: s.paddr,
                    memsz: s.memsz,
                });
            }
        }
        if end.is_none() || !ram.contains(s.paddr, s.memsz) {
            return Err(LoadError::SegmentOutsideRam {
                index: s.index,
                paddr: s.paddr,
                memsz: s.memsz,
                mem_size,
            });
        }
    }
    let mut order: Vec<&LoadSegment<'_>> = segs.iter().collect();
    order.sort_by_key(|s| (s.paddr, s.index));
    for pair in order.windows(2) {
        if let [a, b] = pair {
            if a.end() > b.paddr {
                return Err(LoadError::SegmentsOverlap {
                    first: a.index.min(b.index),
                    second: a.index.max(b.index),
                });
            }
        }
    }
    Ok(())
}

/// A range of guest-physical memory no segment may overlap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reserved {
    pub start: u64,
    pub end: u64,
    pub what: &'static str,
}

/// The BIOS area, where the machine keeps its ACPI tables (ROM on a PC:
/// QEMU could not load a segment there either).
pub(crate) const BIOS_AREA: Reserved = Reserved {
    start: crate::layout::BIOS_AREA_START,
    end: crate::layout::BIOS_AREA_END,
    what: "BIOS area with the ACPI tables",
};

/// Refuses segments that overlap a reserved range.
pub(crate) fn check_reserved(
    segs: &[LoadSegment<'_>],
    reserved: &[Reserved],
) -> Result<(), LoadError> {
    for s in segs {
        for r in reserved {
            if s.paddr < r.end && r.start < s.end() {
                return Err(LoadError::OverlapsBootData {
                    index: s.index,
                    start: s.paddr,
                    end: s.end(),
                    what: r.what,
                    data_start: r.start,
                    data_end: r.end,
                });
            }
        }
    }
    Ok(())
}

/// Translates a virtual entry point into a physical one through the
/// segment whose virtual range holds it (as GRUB does); identical when
/// `p_vaddr == p_paddr`.
pub(crate) fn translate_entry(segs: &[LoadSegment<'_>], entry: u64) -> Result<u64, LoadError> {
    segs.iter()
        .find_map(|s| {
            let off = entry.checked_sub(s.vaddr)?;
            if off < s.memsz {
                s.paddr.checked_add(off)
            } else {
                None
            }
        })
        .ok_or(LoadError::EntryOutsideSegments { entry })
}

/// The largest segment end: the first byte after the image.
pub(crate) fn image_end(segs: &[LoadSegment<'_>]) -> u64 {
    segs.iter().map(LoadSegment::end).max().unwrap_or(0)
}

/// One write of a load.
#[derive(Debug)]
pub(crate) enum Chunk<'a> {
    Bytes { gpa: u64, data: Cow<'a, [u8]> },
    Zero { gpa: u64, len: u64 },
}

/// Where a plan's writes go: guest memory, or a plain buffer in unit tests.
pub(crate) trait PhysWrite {
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), LoadError>;
}

impl PhysWrite for &softmmu::GuestMemory {
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), LoadError> {
        self.write_phys(softmmu::Gpa::new(gpa), data)
            .map_err(LoadError::Memory)
    }
}

/// The ordered guest-memory writes of one load.
#[derive(Debug, Default)]
pub(crate) struct Plan<'a> {
    pub chunks: Vec<Chunk<'a>>,
}

/// Zeros are written from this buffer, a piece at a time.
const ZERO_CHUNK: usize = 64 * 1024;
static ZEROS: [u8; ZERO_CHUNK] = [0; ZERO_CHUNK];

impl<'a> Plan<'a> {
    pub fn bytes(&mut self, gpa: u64, data: impl Into<Cow<'a, [u8]>>) {
        self.chunks.push(Chunk::Bytes {
            gpa,
            data: data.into(),
        });
    }

    pub fn zero(&mut self, gpa: u64, len: u64) {
        if len > 0 {
            self.chunks.push(Chunk::Zero { gpa, len });
        }
    }

    /// Copies a checked segment: its file bytes, then zeros to `memsz`.
    pub fn segment(&mut self, s: &LoadSegment<'a>) {
        let filesz = s.data.len() as u64;
        if filesz > 0 {
            self.bytes(s.paddr, s.data);
        }
        self.zero(
            s.paddr.saturating_add(filesz),
            s.memsz.saturating_sub(filesz),
        );
    }

    /// Performs the writes in order.
    pub fn apply(&self, mut mem: impl PhysWrite) -> Result<(), LoadError> {
        for c in &self.chunks {
            match c {
                Chunk::Bytes { gpa, data } => {
                    if !data.is_empty() {
                        mem.write(*gpa, data)?;
                    }
                }
                Chunk::Zero { gpa, len } => {
                    let mut done = 0u64;
                    while done < *len {
                        let n = (*len - done).min(ZERO_CHUNK as u64);
                        // n <= ZERO_CHUNK, so the conversion and slice are in range.
                        let n_usize = usize::try_from(n).unwrap_or(ZERO_CHUNK);
                        let at = gpa.saturating_add(done);
                        mem.write(at, &ZEROS[..n_usize])?;
                        done += n;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testmem {
    //! A flat byte buffer standing in for guest RAM in unit tests.
    use super::PhysWrite;
    use crate::LoadError;

    pub struct VecMem(pub Vec<u8>);

    impl PhysWrite for &mut VecMem {
        fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), LoadError> {
            let start = usize::try_from(gpa).expect("test gpa fits usize");
            self.0[start..start + data.len()].copy_from_slice(data);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::layout::MIB;

    fn seg(index: usize, paddr: u64, memsz: u64) -> LoadSegment<'static> {
        LoadSegment {
            index,
            paddr,
            vaddr: paddr,
            data: &[],
            memsz,
        }
    }

    #[test]
    fn segments_in_ram_pass() {
        let segs = [seg(0, 0x10_0000, 0x1000), seg(1, 0x10_1000, 0x1000)];
        check_segments(&segs, 0x20_0000, Some(1 << 32)).unwrap();
    }

    #[test]
    fn segment_past_ram_end_fails() {
        let segs = [seg(3, 0x1f_f000, 0x2000)];
        assert!(matches!(
            check_segments(&segs, 0x20_0000, None),
            Err(LoadError::SegmentOutsideRam { index: 3, .. })
        ));
    }

    #[test]
    fn segment_in_the_hole_below_4g_fails() {
        // 4 GiB of RAM: 0..3 GiB and 4..5 GiB; 3..4 GiB holds devices.
        let mem = 4 << 30;
        let segs = [seg(0, 0xc000_0000, 0x1000)];
        assert!(matches!(
            check_segments(&segs, mem, None),
            Err(LoadError::SegmentOutsideRam { .. })
        ));
        check_segments(&[seg(0, 1 << 32, 0x1000)], mem, None).unwrap();
        assert!(check_segments(&[seg(0, 0xbfff_f000, 0x2000)], mem, None).is_err());
    }

    #[test]
    fn segment_wrapping_u64_fails() {
        let segs = [seg(0, u64::MAX - 1, 0x10)];
        assert!(matches!(
            check_segments(&segs, u64::MAX, None),
            Err(LoadError::SegmentOutsideRam { .. })
        ));
    }

    #[test]
    fn segment_above_4g_fails_for_32_bit() {
        let segs = [seg(0, 0xffff_f000, 0x2000)];
        assert!(matches!(
            check_segments(&segs, 8 << 30, Some(1 << 32)),
            Err(LoadError::SegmentAbove4G { .. })
        ));
    }

    #[test]
    fn overlapping_segments_fail() {
        let segs = [seg(2, 0x10_0800, 0x1000), seg(0, 0x10_0000, 0x1000)];
        assert!(matches!(
            check_segments(&segs, 0x20_0000, None),
            Err(LoadError::SegmentsOverlap {
                first: 0,
                second: 2
            })
        ));
    }

    #[test]
    fn reserved_overlap_fails() {
        let segs = [seg(1, 0xd_f000, 0x2000)];
        let e = check_reserved(&segs, &[BIOS_AREA]).unwrap_err();
        assert!(matches!(e, LoadError::OverlapsBootData { index: 1, .. }));
        assert_eq!(
            e.to_string(),
            "segment 1 (0xdf000..0xe1000) overlaps the BIOS area with the ACPI tables at 0xe0000..0x100000"
        );
        check_reserved(&[seg(0, 0xd_f000, 0x1000), seg(1, MIB, 1)], &[BIOS_AREA]).unwrap();
    }

    #[test]
    fn entry_is_translated_through_its_segment() {
        let mut s = seg(0, 0x10_0000, 0x1000);
        s.vaddr = 0xffff_ffff_8000_0000;
        assert_eq!(
            translate_entry(&[s.clone()], 0xffff_ffff_8000_0010).unwrap(),
            0x10_0010
        );
        assert!(matches!(
            translate_entry(&[s], 0xffff_ffff_8000_1000),
            Err(LoadError::EntryOutsideSegments { .. })
        ));
    }

    #[test]
    fn plan_writes_data_then_zeros() {
        let data = [1u8, 2, 3];
        let s = LoadSegment {
            index: 0,
            paddr: 0x10,
            vaddr: 0x10,
            data: &data,
            memsz: 0x2_0000,
        };
        let mut plan = Plan::default();
        plan.segment(&s);
        let mut mem = testmem::VecMem(vec![0xaa; 0x3_0000]);
        plan.apply(&mut mem).unwrap();
        assert_eq!(&mem.0[0x0f..0x14], &[0xaa, 1, 2, 3, 0]);
        assert!(mem.0[0x13..0x2_0010].iter().all(|&b| b == 0));
        assert_eq!(mem.0[0x2_0010], 0xaa);
    }
}
