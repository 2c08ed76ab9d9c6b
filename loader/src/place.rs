//! Where the loader puts its own data: the GDT, the multiboot information
//! (with its memory map, module list and strings), and the ELF64 page
//! tables and boot stack.
//!
//! Each piece has a preferred address (the fixed addresses of earlier
//! contracts, and QEMU's 0x9000 for the multiboot information), used when
//! no part of the image, no module and no other piece is there. Otherwise
//! it goes to the first free place after the image, and if there is none,
//! the first free place anywhere: so an image linked at 0x1000, 0x8000 or
//! 0x9000 boots, as it does with QEMU, whose multiboot loader also puts the
//! command line and module list after the kernel. Free means RAM the
//! memory map calls available, below 4 GiB (32-bit kernels reach it with
//! paging off) and above the real-mode IVT and BIOS data area.

use crate::layout::{memory_map, MemKind, FOUR_GIB, REAL_MODE_DATA_END};
use crate::plan::LoadSegment;
use crate::LoadError;

/// A free-space finder over guest RAM for one load.
pub(crate) struct Placer {
    /// Available RAM below 4 GiB, in address order (start, end).
    free: Vec<(u64, u64)>,
    /// What is in use: segments, modules, pieces placed so far.
    taken: Vec<(u64, u64)>,
    /// Where the search for a non-preferred place starts: the image's end.
    after_image: u64,
}

fn align_up(v: u64, to: u64) -> Option<u64> {
    Some(v.checked_add(to - 1)? & !(to - 1))
}

impl Placer {
    /// A placer for `mem_size` bytes of RAM holding `segs` and the
    /// modules at `modules` (start, end).
    pub fn new(mem_size: u64, segs: &[LoadSegment<'_>], modules: &[(u64, u64)]) -> Placer {
        let free = memory_map(mem_size)
            .iter()
            .filter(|e| e.kind == MemKind::Available && e.base < FOUR_GIB)
            .map(|e| (e.base.max(REAL_MODE_DATA_END), e.end().min(FOUR_GIB)))
            .filter(|(s, e)| s < e)
            .collect();
        let mut taken: Vec<(u64, u64)> = segs.iter().map(|s| (s.paddr, s.end())).collect();
        taken.extend(modules.iter().copied());
        let after_image = segs.iter().map(LoadSegment::end).max().unwrap_or(0);
        Placer {
            free,
            taken,
            after_image,
        }
    }

    /// Whether `start..start+len` is free RAM.
    fn fits(&self, start: u64, len: u64) -> bool {
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        self.free.iter().any(|&(s, e)| start >= s && end <= e)
            && !self.taken.iter().any(|&(s, e)| start < e && s < end)
    }

    /// The first free, `align`-aligned place of `len` bytes at or above
    /// `from`.
    fn first_fit(&self, from: u64, len: u64, align: u64) -> Option<u64> {
        for &(s, e) in &self.free {
            let mut at = align_up(from.max(s), align)?;
            // Each step moves past one taken range, so this ends.
            while at.checked_add(len)? <= e {
                match self
                    .taken
                    .iter()
                    .filter(|&&(ts, te)| at < te && ts < at + len)
                    .map(|&(_, te)| te)
                    .max()
                {
                    None => return Some(at),
                    Some(te) => at = align_up(te, align)?,
                }
            }
        }
        None
    }

    /// Places `len` bytes of `what` (at `preferred` if free, else after
    /// the image, else anywhere free) and marks them taken.
    pub fn place(
        &mut self,
        what: &'static str,
        len: u64,
        align: u64,
        preferred: u64,
    ) -> Result<u64, LoadError> {
        let at = if self.fits(preferred, len) {
            Some(preferred)
        } else {
            self.first_fit(self.after_image, len, align)
                .or_else(|| self.first_fit(0, len, align))
        };
        let at = at.ok_or(LoadError::NoRoomForBootData { what, len })?;
        self.taken.push((at, at + len));
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MIB;

    fn seg(paddr: u64, memsz: u64) -> LoadSegment<'static> {
        LoadSegment {
            index: 0,
            paddr,
            vaddr: paddr,
            data: &[],
            memsz,
        }
    }

    #[test]
    fn preferred_when_free() {
        let mut p = Placer::new(16 * MIB, &[seg(0x10_0000, 0x1000)], &[]);
        assert_eq!(p.place("a", 24, 16, 0x1000).unwrap(), 0x1000);
        // Taken now: the next piece at the same address moves after the image.
        assert_eq!(p.place("b", 24, 16, 0x1000).unwrap(), 0x10_1000);
        assert_eq!(p.place("c", 0x100, 16, 0x1000).unwrap(), 0x10_1020);
    }

    #[test]
    fn after_the_image_skipping_modules_and_reserved_memory() {
        // An image ending just below the EBDA: the next free RAM is 1 MiB,
        // where a module sits; the piece goes after it.
        let segs = [seg(0x9_0000, 0xf000)];
        let mut p = Placer::new(16 * MIB, &segs, &[(MIB, MIB + 0x1234)]);
        assert_eq!(
            p.place("x", 0x2000, 0x1000, 0x9_5000).unwrap(),
            MIB + 0x2000
        );
    }

    #[test]
    fn anywhere_when_nothing_is_free_after_the_image() {
        // 2 MiB of RAM; the image fills everything from 1 MiB up.
        let mut p = Placer::new(2 * MIB, &[seg(MIB, MIB)], &[]);
        assert_eq!(p.place("x", 0x100, 16, MIB).unwrap(), REAL_MODE_DATA_END);
        let e = p.place("huge", 2 * MIB, 16, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no free RAM below 4 GiB for the loader's huge (2097152 bytes) beside the image and modules"
        );
    }

    #[test]
    fn never_below_the_bios_data_area_nor_in_reserved_memory() {
        let p = Placer::new(16 * MIB, &[], &[]);
        assert!(!p.fits(0, 0x10));
        assert!(!p.fits(0x4ff, 2));
        assert!(p.fits(0x500, 0x10));
        assert!(!p.fits(0x9_fc00 - 8, 16));
        assert!(!p.fits(0xe_0000, 16));
        assert!(!p.fits(u64::MAX - 4, 16));
    }
}
