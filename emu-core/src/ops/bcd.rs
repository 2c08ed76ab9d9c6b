//! Decimal arithmetic: DAA, DAS, AAA, AAS, AAM, AAD. All are invalid in
//! 64-bit mode (iced-x86's decoder rejects them there, so they #UD).
//!
//! Undefined flags follow the vCPU's vendor. Intel (P6 family and later,
//! the model Bochs validated against Intel hardware): OF is cleared by all
//! six; SF, ZF and PF always follow the final AL (also after AAA/AAS,
//! where the manuals leave them undefined); AAM and AAD clear CF and AF.
//! AMD processors leave the flags of the addition or subtraction the
//! adjustment performs, as measured on an AMD EPYC (family 1Ah) over every
//! AL, CF and AF (testsuite `legacy32`, which runs the table in
//! compatibility mode on the host CPU and compares every flag with these
//! kernels for the host's vendor):
//! - DAA/DAS: OF is the signed overflow of the 8-bit ADD/SUB of AL and the
//!   whole adjustment (06h, 60h or 66h);
//! - AAA/AAS: SF, ZF, PF and OF of the 16-bit ADD/SUB of AX and 106h (of
//!   AX and 0 without adjustment), before AL is masked;
//! - AAM: as on Intel (OF, AF, CF clear);
//! - AAD: all six flags those of the 8-bit ADD of AL and AH * imm8.

use crate::cpu::flags::{mask, szp, AF, ARITH, CF, OF, PF, SF, ZF};
use crate::cpu::model::Vendor;
use crate::cpu::Flags;
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

/// The status flags of the ADD (or SUB) of `b` and `a`, `size` bytes wide:
/// what AMD processors leave where the manuals do not define the flags of
/// a decimal adjustment.
fn alu_flags(size: u8, a: u64, b: u64, sub: bool) -> u64 {
    let mut f = Flags::default();
    let m = mask(size);
    if sub {
        f.lazy_sub(size, a, b, false, a.wrapping_sub(b) & m);
    } else {
        f.lazy_add(size, a, b, false, a.wrapping_add(b) & m);
    }
    f.get() & ARITH
}

/// DAA (`sub` false) and DAS (`sub` true) on AX with the incoming CF and
/// AF (SDM Vol. 2, DAA/DAS "Operation"); OF as `vendor`'s processors leave
/// it (see the module).
pub fn decimal_adjust(ax: u16, cf_in: bool, af_in: bool, sub: bool, vendor: Vendor) -> Adjusted {
    let old_al = ax as u8;
    let mut adjust = 0u8;
    let (mut cf, mut af) = (false, false);
    if old_al & 0xf > 9 || af_in {
        cf = cf_in || if sub { old_al < 6 } else { old_al > 0xf9 };
        adjust = 6;
        af = true;
    }
    if old_al > 0x99 || cf_in {
        adjust |= 0x60;
        cf = true;
    }
    let al = if sub {
        old_al.wrapping_sub(adjust)
    } else {
        old_al.wrapping_add(adjust)
    };
    let mut flags = bcd_flags(al, cf, af);
    if vendor == Vendor::Amd {
        flags |= alu_flags(1, u64::from(old_al), u64::from(adjust), sub) & OF;
    }
    Adjusted {
        ax: (ax & 0xff00) | u16::from(al),
        flags,
    }
}

/// AAA (`sub` false) and AAS (`sub` true): the adjustment is applied to
/// AX as a whole (a carry out of AL reaches AH), then AL keeps its low
/// nibble. SF, ZF, PF and OF as `vendor`'s processors leave them.
pub fn ascii_adjust(ax: u16, af_in: bool, sub: bool, vendor: Vendor) -> Adjusted {
    let adjust = ax & 0xf > 9 || af_in;
    let d: u16 = if adjust { 0x106 } else { 0 };
    let sum = if sub {
        ax.wrapping_sub(d)
    } else {
        ax.wrapping_add(d)
    };
    let out = sum & 0xff0f;
    let mut flags = bcd_flags(out as u8, adjust, adjust);
    if vendor == Vendor::Amd {
        let undefined = OF | SF | ZF | PF;
        flags &= !undefined;
        flags |= alu_flags(2, u64::from(ax), u64::from(d), sub) & undefined;
    }
    Adjusted { ax: out, flags }
}

/// AAM with base `imm` (non-zero): AH = AL / imm, AL = AL mod imm (the
/// same flags on both vendors).
pub fn aam_result(ax: u16, imm: u8) -> Adjusted {
    let al = ax as u8;
    let (q, r) = (al / imm, al % imm);
    Adjusted {
        ax: u16::from(q) << 8 | u16::from(r),
        flags: bcd_flags(r, false, false),
    }
}

/// AAD with base `imm`: AL = AL + AH * imm (mod 256), AH = 0. CF, AF and
/// OF as `vendor`'s processors leave them.
pub fn aad_result(ax: u16, imm: u8, vendor: Vendor) -> Adjusted {
    let product = ((ax >> 8) as u8).wrapping_mul(imm);
    let al = (ax as u8).wrapping_add(product);
    let flags = match vendor {
        Vendor::Intel => bcd_flags(al, false, false),
        Vendor::Amd => alu_flags(1, u64::from(ax as u8), u64::from(product), false),
    };
    Adjusted {
        ax: u16::from(al),
        flags,
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
    let r = decimal_adjust(ax(x), f.cf(), f.test(AF), false, x.sys.gate.vendor);
    commit(x, r);
    Ok(())
}

/// DAS — Decimal Adjust AL after Subtraction
fn das(x: &mut Exec, _: &Instruction) -> ExecResult {
    let f = &x.cpu.flags;
    let r = decimal_adjust(ax(x), f.cf(), f.test(AF), true, x.sys.gate.vendor);
    commit(x, r);
    Ok(())
}

/// AAA — ASCII Adjust After Addition
fn aaa(x: &mut Exec, _: &Instruction) -> ExecResult {
    let r = ascii_adjust(ax(x), x.cpu.flags.test(AF), false, x.sys.gate.vendor);
    commit(x, r);
    Ok(())
}

/// AAS — ASCII Adjust AL After Subtraction
fn aas(x: &mut Exec, _: &Instruction) -> ExecResult {
    let r = ascii_adjust(ax(x), x.cpu.flags.test(AF), true, x.sys.gate.vendor);
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
    let r = aad_result(ax(x), ins.immediate8(), x.sys.gate.vendor);
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

    const I: Vendor = Vendor::Intel;
    const A: Vendor = Vendor::Amd;

    /// The SDM's worked examples (Vol. 2, DAA and DAS).
    #[test]
    fn sdm_examples() {
        // ADD AL,BL with AL=79h BL=35h gives AEh, flags 110000 (O S Z A P C).
        let r = decimal_adjust(0x00ae, false, false, false, I);
        assert_eq!(r.ax, 0x14);
        assert_eq!(r.flags & (CF | AF | SF | ZF), CF | AF);
        // AL=2Eh, no CF/AF: 34h, AF set, CF clear.
        let r = decimal_adjust(0x002e, false, false, false, I);
        assert_eq!(r.ax, 0x34);
        assert_eq!(r.flags & (CF | AF), AF);
        // SUB AL,BL with AL=35h BL=47h gives EEh with CF and AF set.
        let r = decimal_adjust(0x00ee, true, true, true, I);
        assert_eq!(r.ax, 0x88);
        assert_eq!(r.flags & (CF | AF | SF | ZF), CF | AF | SF);
    }

    #[test]
    fn ascii_adjust_carries_into_ah() {
        // AAS with AX = 0, AF = 1: AX - 106h = FEFAh, AL masked: FE0Ah.
        assert_eq!(ascii_adjust(0x0000, true, true, I).ax, 0xfe0a);
        // AAA with AL = FAh: AX + 106h carries twice into AH.
        assert_eq!(ascii_adjust(0x01fa, false, false, I).ax, 0x0300);
        assert_eq!(ascii_adjust(0x0135, false, false, I).ax, 0x0105);
        assert_eq!(ascii_adjust(0x0135, false, false, I).flags & (CF | AF), 0);
    }

    #[test]
    fn aam_aad_bases() {
        assert_eq!(aam_result(0x0063, 10).ax, 0x0909);
        assert_eq!(aam_result(0x00ff, 16).ax, 0x0f0f);
        assert_eq!(aad_result(0x0909, 10, I).ax, 99);
        assert_eq!(aad_result(0x0f0f, 16, I).ax, 0xff);
        assert_eq!(aad_result(0x0f0f, 16, I).flags, SF | PF);
        assert_eq!(aam_result(0x000a, 10).flags, ZF | PF);
    }

    /// Entries of the host table measured on an AMD EPYC (family 1Ah),
    /// where Intel's flags differ.
    #[test]
    fn amd_flags_are_those_of_the_adjusting_alu_operation() {
        let both = |r: Adjusted| (r.ax, r.flags);
        // DAA of 7Ah (+66h): 7Ah + 66h overflows (OF); Intel clears OF.
        assert_eq!(
            both(decimal_adjust(0x207a, false, false, false, A)),
            (0x2080, OF | SF | AF)
        );
        assert_eq!(
            both(decimal_adjust(0x207a, false, false, false, I)),
            (0x2080, SF | AF)
        );
        // DAS of 9Ah (-66h): signed 9Ah - 66h overflows.
        assert_eq!(
            both(decimal_adjust(0xc09a, false, false, true, A)),
            (0xc034, OF | AF | CF)
        );
        // AAA of DA80h without adjustment: SF, ZF, PF of the 16-bit AX.
        assert_eq!(both(ascii_adjust(0xda80, false, false, A)), (0xda00, SF));
        assert_eq!(
            both(ascii_adjust(0xda80, false, false, I)),
            (0xda00, ZF | PF)
        );
        // AAS of 005Ah: 005Ah - 106h = FF54h (SF; PF of 54h clear).
        assert_eq!(
            both(ascii_adjust(0x005a, false, true, A)),
            (0xff04, SF | AF | CF)
        );
        // AAD 10 of 2605h: the ADD 05h + 7Ch = 81h (OF, SF, AF, PF).
        assert_eq!(both(aad_result(0x2605, 10, A)), (0x0081, OF | SF | AF | PF));
        assert_eq!(both(aad_result(0x2605, 10, I)), (0x0081, SF | PF));
    }
}
