//! Memory operands wider than 8 bytes: the 10-byte x87 formats, 16-byte
//! XMM operands, and the 14/28/94/108/512-byte and larger images of
//! FSTENV, FSAVE, FXSAVE and XSAVE.
//!
//! The rules are those of the narrow accesses in `mem.rs`, applied to the
//! whole operand: the segment check covers every byte, and every page is
//! translated before any byte is written, so a store either faults having
//! changed nothing or completes. Reads of MMIO go out in aligned pieces of
//! at most 8 bytes, which is how KVM splits a wide MMIO access too.

use super::Exec;
use crate::cpu::state::SegReg;
use crate::exception::{Exception, ExecResult};
use softmmu::{AccessKind, Translation, PAGE_SIZE};

/// The largest piece of one MMIO access.
const MMIO_PIECE: usize = 8;

/// The longest operand these helpers take (two pages: any operand of up
/// to 4 KiB, whatever its alignment, spans at most two).
pub const MAX_BULK: usize = PAGE_SIZE as usize;
const MAX_PAGES: usize = 2;

/// The pages of one operand: translation and byte count, in order.
struct Pages {
    parts: [Option<(Translation, usize)>; MAX_PAGES],
}

impl Exec<'_> {
    /// Read `buf.len()` bytes at `seg:off`.
    pub fn read_bytes(&mut self, seg: SegReg, off: u64, buf: &mut [u8]) -> ExecResult {
        if buf.is_empty() {
            return Ok(());
        }
        let la = self.linear(seg, off, buf.len(), false)?;
        self.read_linear_bytes(la, buf, AccessKind::Read)
    }

    /// Write `data` at `seg:off`: all or nothing.
    pub fn write_bytes(&mut self, seg: SegReg, off: u64, data: &[u8]) -> ExecResult {
        if data.is_empty() {
            return Ok(());
        }
        let la = self.linear(seg, off, data.len(), true)?;
        self.write_linear_bytes(la, data)
    }

    /// Check that `seg:off` may be written for `len` bytes (segment and
    /// every page), without writing: for instructions that read before
    /// they write and must not fault half-way.
    pub fn probe_write_bytes(&mut self, seg: SegReg, off: u64, len: usize) -> ExecResult {
        if len == 0 {
            return Ok(());
        }
        let la = self.linear(seg, off, len, true)?;
        self.translate_pages(la, len, AccessKind::Write)?;
        Ok(())
    }

    /// A 16-byte little-endian operand.
    pub fn read_u128(&mut self, seg: SegReg, off: u64) -> ExecResult<u128> {
        let mut b = [0u8; 16];
        self.read_bytes(seg, off, &mut b)?;
        Ok(u128::from_le_bytes(b))
    }

    pub fn write_u128(&mut self, seg: SegReg, off: u64, v: u128) -> ExecResult {
        self.write_bytes(seg, off, &v.to_le_bytes())
    }

    /// #GP(0) unless the linear address of `seg:off` is a multiple of
    /// `align` (the aligned SSE forms, FXSAVE/FXRSTOR, XSAVE). The check
    /// is made on the linear address, before any access: a misaligned
    /// operand faults with #GP even where the access would also #PF.
    pub fn check_alignment(&self, seg: SegReg, off: u64, align: u64) -> ExecResult {
        let la = self.segment_base(seg).wrapping_add(off);
        if la & (align - 1) != 0 {
            return Err(Exception::gp(0).into());
        }
        Ok(())
    }

    /// The base a segment contributes to linear addresses in the current
    /// mode (0 for all but FS and GS in 64-bit mode).
    pub fn segment_base(&self, seg: SegReg) -> u64 {
        if self.cpu.mode() == crate::cpu::Mode::Long64 && !matches!(seg, SegReg::Fs | SegReg::Gs) {
            0
        } else {
            self.cpu.sreg(seg).base
        }
    }

    /// Translate every page of `la..la+len`, in order. `len` is at most
    /// [`MAX_BULK`] (the largest operand, an XSAVE image, is far smaller).
    fn translate_pages(&mut self, la: u64, len: usize, kind: AccessKind) -> ExecResult<Pages> {
        debug_assert!(len <= MAX_BULK);
        let mut out = Pages {
            parts: [None; MAX_PAGES],
        };
        let mut done = 0usize;
        for slot in out.parts.iter_mut() {
            if done >= len {
                break;
            }
            let at = self.wrap_la(la.wrapping_add(done as u64));
            let n = ((PAGE_SIZE - (at & (PAGE_SIZE - 1))) as usize).min(len - done);
            *slot = Some((self.translate_la(at, kind)?, n));
            done += n;
        }
        Ok(out)
    }

    /// Read bytes at a linear address (every page translated first).
    pub fn read_linear_bytes(&mut self, la: u64, buf: &mut [u8], kind: AccessKind) -> ExecResult {
        let pages = self.translate_pages(la, buf.len(), kind)?;
        let mut done = 0usize;
        for (t, n) in pages.parts.into_iter().flatten() {
            let part = &mut buf[done..done + n];
            match t {
                Translation::Ram { hva, .. } => self.mmu.load_bytes(hva, part),
                Translation::Mmio { gpa } => {
                    self.signals.attention = true;
                    let mut k = 0usize;
                    while k < n {
                        let m = mmio_piece(gpa.raw() + k as u64, n - k);
                        let v = self.mmio_read(gpa.raw() + k as u64, m as u8)?;
                        part[k..k + m].copy_from_slice(&v.to_le_bytes()[..m]);
                        k += m;
                    }
                }
            }
            done += n;
        }
        Ok(())
    }

    /// Write bytes at a linear address: every page is translated for
    /// writing before anything is stored.
    pub fn write_linear_bytes(&mut self, la: u64, data: &[u8]) -> ExecResult {
        let pages = self.translate_pages(la, data.len(), AccessKind::Write)?;
        let mut done = 0usize;
        for (t, n) in pages.parts.into_iter().flatten() {
            let part = &data[done..done + n];
            match t {
                Translation::Ram { hva, gpa } => {
                    self.mmu.store_bytes(hva, part);
                    self.note_write(gpa.raw());
                }
                Translation::Mmio { gpa } => {
                    self.signals.attention = true;
                    let mut k = 0usize;
                    while k < n {
                        let m = mmio_piece(gpa.raw() + k as u64, n - k);
                        let mut v = [0u8; 8];
                        v[..m].copy_from_slice(&part[k..k + m]);
                        self.mmio_write(gpa.raw() + k as u64, m as u8, u64::from_le_bytes(v));
                        k += m;
                    }
                }
            }
            done += n;
        }
        Ok(())
    }
}

/// The size of the next MMIO piece at `gpa` with `left` bytes to go: the
/// largest power of two up to 8 that is aligned at `gpa` and fits.
fn mmio_piece(gpa: u64, left: usize) -> usize {
    let mut m = MMIO_PIECE;
    while m > 1 && (!(gpa as usize).is_multiple_of(m) || m > left) {
        m /= 2;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::mmio_piece;

    #[test]
    fn mmio_pieces_are_aligned_and_fit() {
        assert_eq!(mmio_piece(0x1000, 16), 8);
        assert_eq!(mmio_piece(0x1004, 16), 4);
        assert_eq!(mmio_piece(0x1001, 16), 1);
        assert_eq!(mmio_piece(0x1008, 2), 2);
        assert_eq!(mmio_piece(0x1008, 10), 8);
        assert_eq!(mmio_piece(0x1000, 3), 2);
    }
}
