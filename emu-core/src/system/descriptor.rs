//! Segment descriptors: reading them from the GDT/LDT and loading segment
//! registers with the checks of Intel SDM Vol. 3A, 5.4-5.6 and the
//! MOV/POP Sreg pseudocode.

use crate::api_types::Segment;
use crate::cpu::{Mode, SegReg};
use crate::exception::{Exception, ExecResult};
use crate::exec::Exec;
use softmmu::AccessKind;

/// Decode an 8-byte descriptor into a segment cache.
pub fn decode(selector: u16, raw: u64) -> Segment {
    let limit = ((raw & 0xffff) | ((raw >> 32) & 0xf_0000)) as u32;
    let g = (raw >> 55) & 1;
    Segment {
        base: ((raw >> 16) & 0xff_ffff) | (((raw >> 56) & 0xff) << 24),
        limit: if g != 0 { (limit << 12) | 0xfff } else { limit },
        selector,
        type_: ((raw >> 40) & 0xf) as u8,
        s: ((raw >> 44) & 1) as u8,
        dpl: ((raw >> 45) & 3) as u8,
        present: ((raw >> 47) & 1) as u8,
        avl: ((raw >> 52) & 1) as u8,
        l: ((raw >> 53) & 1) as u8,
        db: ((raw >> 54) & 1) as u8,
        g: g as u8,
        unusable: 0,
    }
}

impl Exec<'_> {
    /// Linear address of the descriptor for `sel`, or #GP(sel) if it lies
    /// outside the table.
    pub fn descriptor_addr(&self, sel: u16, size: u64) -> ExecResult<u64> {
        let (base, limit) = if sel & 4 != 0 {
            if self.cpu.ldtr.unusable != 0 || self.cpu.ldtr.present == 0 {
                return Err(Exception::gp(u32::from(sel & 0xfffc)).into());
            }
            (self.cpu.ldtr.base, u64::from(self.cpu.ldtr.limit))
        } else {
            (self.cpu.gdtr.base, u64::from(self.cpu.gdtr.limit))
        };
        let off = u64::from(sel & 0xfff8);
        if off + size - 1 > limit {
            return Err(Exception::gp(u32::from(sel & 0xfffc)).into());
        }
        Ok(self.wrap_la(base.wrapping_add(off)))
    }

    /// Read a descriptor table entry (an implicit supervisor access).
    pub fn read_descriptor(&mut self, sel: u16) -> ExecResult<u64> {
        let la = self.descriptor_addr(sel, 8)?;
        self.implicit_supervisor = true;
        let r = self.read_linear(la, 8, AccessKind::Read);
        self.implicit_supervisor = false;
        r
    }

    /// Set the accessed bit of a descriptor (hardware writes it on load).
    pub fn mark_accessed(&mut self, sel: u16, raw: u64) -> ExecResult {
        if raw & (1 << 40) == 0 {
            let la = self.descriptor_addr(sel, 8)?;
            self.implicit_supervisor = true;
            let r = self.write_linear(la + 5, 1, ((raw >> 40) as u8 | 1) as u64);
            self.implicit_supervisor = false;
            r?;
        }
        Ok(())
    }

    /// MOV/POP to a data or stack segment register.
    pub fn load_data_segment(&mut self, seg: SegReg, sel: u16) -> ExecResult {
        let mode = self.cpu.mode();
        if mode == Mode::Real {
            let s = self.cpu.sreg_mut(seg);
            s.selector = sel;
            s.base = u64::from(sel) << 4;
            return Ok(());
        }
        let cpl = self.cpu.cpl();
        let rpl = (sel & 3) as u8;
        let code = u32::from(sel & 0xfffc);
        if sel & 0xfffc == 0 {
            // A null selector: #GP for SS except in 64-bit mode at CPL<3.
            if seg == SegReg::Ss && !(mode == Mode::Long64 && cpl != 3 && rpl == cpl) {
                return Err(Exception::gp(0).into());
            }
            let s = self.cpu.sreg_mut(seg);
            *s = Segment {
                selector: sel,
                unusable: 1,
                dpl: if seg == SegReg::Ss { cpl } else { 0 },
                ..Segment::default()
            };
            return Ok(());
        }
        let raw = self.read_descriptor(sel)?;
        let d = decode(sel, raw);
        let is_code = d.type_ & 8 != 0;
        if seg == SegReg::Ss {
            if rpl != cpl || d.dpl != cpl || d.s == 0 || is_code || d.type_ & 2 == 0 {
                return Err(Exception::gp(code).into());
            }
            if d.present == 0 {
                return Err(Exception::ss(code).into());
            }
        } else {
            let readable = !is_code || d.type_ & 2 != 0;
            let conforming = is_code && d.type_ & 4 != 0;
            if d.s == 0 || !readable || (!conforming && (rpl > d.dpl || cpl > d.dpl)) {
                return Err(Exception::gp(code).into());
            }
            if d.present == 0 {
                return Err(Exception::np(code).into());
            }
        }
        self.mark_accessed(sel, raw)?;
        let mut d = d;
        d.type_ |= 1;
        *self.cpu.sreg_mut(seg) = d;
        Ok(())
    }

    /// Load CS for a far JMP/CALL/RET/IRET to a code segment (no gates).
    /// `rpl` becomes the new CPL.
    pub fn load_code_segment(&mut self, sel: u16, new_cpl: u8) -> ExecResult<Segment> {
        let code = u32::from(sel & 0xfffc);
        if sel & 0xfffc == 0 {
            return Err(Exception::gp(0).into());
        }
        let raw = self.read_descriptor(sel)?;
        let mut d = decode(sel, raw);
        if d.s == 0 || d.type_ & 8 == 0 {
            return Err(Exception::gp(code).into());
        }
        let conforming = d.type_ & 4 != 0;
        if (conforming && d.dpl > new_cpl) || (!conforming && d.dpl != new_cpl) {
            return Err(Exception::gp(code).into());
        }
        if d.present == 0 {
            return Err(Exception::np(code).into());
        }
        if self.cpu.efer & crate::cpu::state::EFER_LMA != 0 && d.l != 0 && d.db != 0 {
            return Err(Exception::gp(code).into());
        }
        self.mark_accessed(sel, raw)?;
        d.type_ |= 1;
        d.selector = (sel & !3) | u16::from(new_cpl);
        Ok(d)
    }

    /// Install a new CS and recompute the mode.
    pub fn set_cs(&mut self, cs: Segment) {
        *self.cpu.sreg_mut(SegReg::Cs) = cs;
        self.cpu.update_mode();
        self.signals.mode_changed = true;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decode_flat_code64() {
        let s = super::decode(8, 0x00AF_9A00_0000_FFFF);
        assert_eq!(
            (s.base, s.limit, s.type_, s.l, s.db, s.dpl, s.present),
            (0, 0xffff_ffff, 0xa, 1, 0, 0, 1)
        );
    }
}
