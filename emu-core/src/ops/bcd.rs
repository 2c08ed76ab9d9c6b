//! Decimal arithmetic: DAA, DAS, AAA, AAS, AAM, AAD. All are invalid in
//! 64-bit mode (iced-x86's decoder rejects them there, so they #UD).
//!
//! Undefined flags, as P6-family and later Intel processors leave them
//! (the model Bochs validated against Intel hardware): OF is cleared by
//! all six; SF, ZF and PF always follow the final AL (also after AAA/AAS,
//! where the manuals leave them undefined); AAM and AAD clear CF and AF.
//! AMD processors differ. Measured on this project's AMD EPYC (Zen) host
//! over every AL, CF and AF (testsuite `legacy32`, which runs the table
//! in compatibility mode on the host CPU):
//! - DAA/DAS: OF is the signed overflow of AL plus/minus the whole
//!   adjustment (06h, 60h or 66h);
//! - AAA/AAS: the flags of the 16-bit ADD/SUB of AX and 106h (of AX + 0
//!   without adjustment): SF, ZF and OF from the 16-bit result, PF from
//!   its low byte before AL is masked;
//! - AAM: as above (OF, AF, CF clear);
//! - AAD: all six flags those of the 8-bit ADD of AL and AH * imm8.
//!
//! The vendor model does not switch to these yet.

use crate::cpu::flags::{szp, AF, ARITH, CF, OF, PF, SF, ZF};
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction};

/// The result of one adjustment: the new AX and the status flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adjusted {
    pub ax: u16,
    pub flags: u64,
}

/// Flags of a BCD result: SZP of AL, OF clear, CF and AF as given.
fn bcd_flags(al: u8, cf: bool, af: bool) -> u64 {
    szp(1, u64::from(al)) | if cf { CF } else { 0 } | if af { AF } else { 0 }
}

/// DAA (`sub` false) and DAS (`sub` true) on AX with the incoming CF and
/// AF (SDM Vol. 2, DAA/DAS "Operation").
pub fn decimal_adjust(ax: u16, cf_in: bool, af_in: bool, sub: bool) -> Adjusted {
    let old_al = ax as u8;
    let mut al = old_al;
    let (mut cf, mut af) = (false, false);
    if old_al & 0xf > 9 || af_in {
        if sub {
            cf = cf_in || old_al < 6;
            al = al.wrapping_sub(6);
        } else {
            cf = cf_in || old_al > 0xf9;
            al = al.wrapping_add(6);
        }
        af = true;
    }
    if old_al > 0x99 || cf_in {
        al = if sub {
            al.wrapping_sub(0x60)
        } else {
            al.wrapping_add(0x60)
        };
        cf = true;
    }
    Adjusted {
        ax: (ax & 0xff00) | u16::from(al),
        flags: bcd_flags(al, cf, af),
    }
}

/// AAA (`sub` false) and AAS (`sub` true): the adjustment is applied to
/// AX as a whole (a carry out of AL reaches AH), then AL keeps its low
/// nibble.
pub fn ascii_adjust(ax: u16, af_in: bool, sub: bool) -> Adjusted {
    let adjust = ax & 0xf > 9 || af_in;
    let mut ax = ax;
    if adjust {
        ax = if sub {
            ax.wrapping_sub(0x106)
        } else {
            ax.wrapping_add(0x106)
        };
    }
    ax &= 0xff0f;
    Adjusted {
        ax,
        flags: bcd_flags(ax as u8, adjust, adjust),
    }
}

/// AAM with base `imm` (non-zero): AH = AL / imm, AL = AL mod imm.
pub fn aam_result(ax: u16, imm: u8) -> Adjusted {
    let al = ax as u8;
    let (q, r) = (al / imm, al % imm);
    Adjusted {
        ax: u16::from(q) << 8 | u16::from(r),
        flags: bcd_flags(r, false, false),
    }
}

/// AAD with base `imm`: AL = AL + AH * imm (mod 256), AH = 0.
pub fn aad_result(ax: u16, imm: u8) -> Adjusted {
    let al = (ax as u8).wrapping_add(((ax >> 8) as u8).wrapping_mul(imm));
    Adjusted {
        ax: u16::from(al),
        flags: bcd_flags(al, false, false),
    }
}

fn commit(x: &mut Exec, r: Adjusted) {
    x.set_gpr(0, 2, u64::from(r.ax));
    x.cpu.flags.set_arith(ARITH, r.flags);
}

fn ax(x: &Exec) -> u16 {
    x.cpu.gpr[0] as u16
}

/// DAA — Decimal Adjust AL after Addition
fn daa(x: &mut Exec, _: &Instruction) -> ExecResult {
    let f = &x.cpu.flags;
    let r = decimal_adjust(ax(x), f.cf(), f.test(AF), false);
    commit(x, r);
    Ok(())
}

/// DAS — Decimal Adjust AL after Subtraction
fn das(x: &mut Exec, _: &Instruction) -> ExecResult {
    let f = &x.cpu.flags;
    let r = decimal_adjust(ax(x), f.cf(), f.test(AF), true);
    commit(x, r);
    Ok(())
}

/// AAA — ASCII Adjust After Addition
fn aaa(x: &mut Exec, _: &Instruction) -> ExecResult {
    let r = ascii_adjust(ax(x), x.cpu.flags.test(AF), false);
    commit(x, r);
    Ok(())
}

/// AAS — ASCII Adjust AL After Subtraction
fn aas(x: &mut Exec, _: &Instruction) -> ExecResult {
    let r = ascii_adjust(ax(x), x.cpu.flags.test(AF), true);
    commit(x, r);
    Ok(())
}

/// AAM — ASCII Adjust AX After Multiply (any base; base 0 is #DE).
fn aam(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let imm = ins.immediate8();
    if imm == 0 {
        return Err(Exception::de().into());
    }
    let r = aam_result(ax(x), imm);
    commit(x, r);
    Ok(())
}

/// AAD — ASCII Adjust AX Before Division (any base).
fn aad(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let r = aad_result(ax(x), ins.immediate8());
    commit(x, r);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(Code::Daa, daa, OF);
    t.add(Code::Das, das, OF);
    t.add(Code::Aaa, aaa, OF | SF | ZF | PF);
    t.add(Code::Aas, aas, OF | SF | ZF | PF);
    t.add(Code::Aam_imm8, aam, OF | AF | CF);
    t.add(Code::Aad_imm8, aad, OF | AF | CF);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDM's worked examples (Vol. 2, DAA and DAS).
    #[test]
    fn sdm_examples() {
        // ADD AL,BL with AL=79h BL=35h gives AEh, flags 110000 (O S Z A P C).
        let r = decimal_adjust(0x00ae, false, false, false);
        assert_eq!(r.ax, 0x14);
        assert_eq!(r.flags & (CF | AF | SF | ZF), CF | AF);
        // AL=2Eh, no CF/AF: 34h, AF set, CF clear.
        let r = decimal_adjust(0x002e, false, false, false);
        assert_eq!(r.ax, 0x34);
        assert_eq!(r.flags & (CF | AF), AF);
        // SUB AL,BL with AL=35h BL=47h gives EEh with CF and AF set.
        let r = decimal_adjust(0x00ee, true, true, true);
        assert_eq!(r.ax, 0x88);
        assert_eq!(r.flags & (CF | AF | SF | ZF), CF | AF | SF);
    }

    #[test]
    fn ascii_adjust_carries_into_ah() {
        // AAS with AX = 0, AF = 1: AX - 106h = FEFAh, AL masked: FE0Ah.
        assert_eq!(ascii_adjust(0x0000, true, true).ax, 0xfe0a);
        // AAA with AL = FAh: AX + 106h carries twice into AH.
        assert_eq!(ascii_adjust(0x01fa, false, false).ax, 0x0300);
        assert_eq!(ascii_adjust(0x0135, false, false).ax, 0x0105);
        assert_eq!(ascii_adjust(0x0135, false, false).flags & (CF | AF), 0);
    }

    #[test]
    fn aam_aad_bases() {
        assert_eq!(aam_result(0x0063, 10).ax, 0x0909);
        assert_eq!(aam_result(0x00ff, 16).ax, 0x0f0f);
        assert_eq!(aad_result(0x0909, 10).ax, 99);
        assert_eq!(aad_result(0x0f0f, 16).ax, 0xff);
        assert_eq!(aad_result(0x0f0f, 16).flags, SF | PF);
        assert_eq!(aam_result(0x000a, 10).flags, ZF | PF);
    }
}
