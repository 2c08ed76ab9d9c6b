//! Which segments the interpreter's hot memory path may use without the
//! full segment checks.
//!
//! Every data access goes segment offset -> linear address -> guest RAM.
//! The checks of the first step (type, presence, limit, expand-down) and
//! the mode's address wrap depend only on the segment registers and the
//! mode, which no instruction changes without ending the run of
//! instructions it is in. So at the start of each run the CPU summarises
//! them once per segment: a "hot" segment is one whose accesses need only
//! `offset <= limit`, where `limit + 1` is a multiple of the page size or
//! the segment is unlimited (64-bit mode). An access that also stays in
//! one page then passes every segment check: its last byte is within the
//! limit as well. Anything else, and any segment not hot, takes the
//! checked path in `exec/mem.rs`, which raises the faults.
//!
//! Writing a segment register or recomputing the mode clears the summary
//! (see [`super::Cpu::sreg_mut`]), so a stale one is never used.

use super::state::{Mode, SegReg};
use crate::api_types::Segment;
use softmmu::PAGE_SIZE;

/// The summary; [`HotSegs::default`] has no hot segment.
#[derive(Clone, Copy, Debug, Default)]
pub struct HotSegs {
    /// Bit `s` set: segment `s` is hot for reads.
    read: u8,
    /// Bit `s` set: segment `s` is hot for writes.
    write: u8,
    /// Linear addresses wrap to this mask (4 GiB outside long mode).
    wrap: u64,
    base: [u64; 6],
    limit: [u64; 6],
}

impl HotSegs {
    /// The summary for the current segment registers in `mode`.
    pub fn of(mode: Mode, seg: &[Segment; 6]) -> HotSegs {
        let mut h = HotSegs {
            wrap: 0xffff_ffff,
            ..HotSegs::default()
        };
        for (i, s) in seg.iter().enumerate() {
            let bit = 1u8 << i;
            if mode == Mode::Long64 {
                // No limit or type checks; only FS and GS have a base.
                let fs_gs = i == SegReg::Fs as usize || i == SegReg::Gs as usize;
                h.base[i] = if fs_gs { s.base } else { 0 };
                h.limit[i] = u64::MAX;
                h.read |= bit;
                h.write |= bit;
                continue;
            }
            let limit = u64::from(s.limit);
            let expand_down = s.type_ & 0xc == 0x4 && s.s != 0;
            if expand_down || !(limit + 1).is_multiple_of(PAGE_SIZE) {
                continue;
            }
            h.base[i] = s.base;
            h.limit[i] = limit;
            if mode == Mode::Real {
                h.read |= bit;
                h.write |= bit;
                continue;
            }
            if s.unusable != 0 || s.present == 0 {
                continue;
            }
            let code = s.type_ & 8 != 0;
            let readable = !code || s.type_ & 2 != 0;
            let writable = !code && s.type_ & 2 != 0;
            if readable {
                h.read |= bit;
            }
            if writable {
                h.write |= bit;
            }
        }
        if mode == Mode::Long64 {
            h.wrap = u64::MAX;
        }
        h
    }

    /// No segment is hot any more.
    pub fn clear(&mut self) {
        self.read = 0;
        self.write = 0;
    }

    /// The linear address of `off` in `seg` if the segment is hot for the
    /// access and `off` is within its limit. The caller must still keep
    /// the access inside one page.
    #[inline(always)]
    pub fn linear(&self, seg: SegReg, off: u64, write: bool) -> Option<u64> {
        let i = seg as usize;
        let ok = if write { self.write } else { self.read };
        if ok & (1 << i) == 0 || off > self.limit[i] {
            return None;
        }
        Some(self.base[i].wrapping_add(off) & self.wrap)
    }
}
