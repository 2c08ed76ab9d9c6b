//! Bitwise logic, PTEST and the blends: PAND, PANDN, POR, PXOR (MM and
//! XMM), ANDPS, ANDNPS, ORPS, XORPS and their PD twins (the same bits:
//! logic does not look at lanes), PTEST, BLENDPS, BLENDPD, PBLENDW,
//! BLENDVPS, BLENDVPD, PBLENDVB.

use super::lanes::{build, count, get, Lane};
use super::operand::{forms, Align};
use crate::cpu::flags::{ARITH, CF, ZF};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::Instruction;

/// PAND, ANDPS, ANDPD — Logical AND
pub(crate) fn and(a: u128, b: u128, _w: usize) -> u128 {
    a & b
}

/// PANDN, ANDNPS, ANDNPD — Logical AND NOT (NOT destination AND source)
pub(crate) fn andn(a: u128, b: u128, _w: usize) -> u128 {
    !a & b
}

/// POR, ORPS, ORPD — Logical OR
pub(crate) fn or(a: u128, b: u128, _w: usize) -> u128 {
    a | b
}

/// PXOR, XORPS, XORPD — Logical Exclusive OR
pub(crate) fn xor(a: u128, b: u128, _w: usize) -> u128 {
    a ^ b
}

/// PTEST's flags: ZF if `dest AND src` is zero, CF if `src AND NOT dest`
/// is zero; AF, OF, PF, SF cleared.
fn ptest_flags(a: u128, b: u128) -> u64 {
    let zf = if a & b == 0 { ZF } else { 0 };
    let cf = if b & !a == 0 { CF } else { 0 };
    zf | cf
}

/// PTEST — Logical Compare
fn ptest(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.sse_check()?;
    let b = x.vsrc(ins, 1, Align::Aligned)?;
    let a = x.xmm(ins.op0_register());
    x.cpu.flags.set_arith(ARITH, ptest_flags(a, b));
    Ok(())
}

/// Lane `i` from `b` where `pick(i)`, else from `a`.
#[inline(always)]
fn blend<T: Lane>(a: u128, b: u128, pick: impl Fn(usize) -> bool) -> u128 {
    build::<T>(
        count::<T>(16),
        |i| if pick(i) { get(b, i) } else { get(a, i) },
    )
}

/// BLENDPS — Blend Packed Single-Precision Values (imm8 bit i picks the
/// source's dword i)
fn blendps(a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    blend::<u32>(a, b, |i| imm >> i & 1 != 0)
}

/// BLENDPD — Blend Packed Double-Precision Values
fn blendpd(a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    blend::<u64>(a, b, |i| imm >> i & 1 != 0)
}

/// PBLENDW — Blend Packed Words
fn pblendw(a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    blend::<u16>(a, b, |i| imm >> i & 1 != 0)
}

/// The variable blends: lane `i` from the source where the sign bit of
/// XMM0's lane `i` is set.
fn blendv<T: Lane>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.sse_check()?;
    let b = x.vsrc(ins, 1, Align::Aligned)?;
    let d = ins.op0_register();
    let a = x.xmm(d);
    let mask = x.cpu.fpu.xmm[0];
    let sign = T::BYTES * 8 - 1;
    let r = blend::<T>(a, b, |i| get::<T>(mask, i).bits() >> sign != 0);
    x.set_xmm(d, r);
    Ok(())
}

/// BLENDVPS — Variable Blend Packed Single-Precision Values
fn blendvps(x: &mut Exec, ins: &Instruction) -> ExecResult {
    blendv::<u32>(x, ins)
}

/// BLENDVPD — Variable Blend Packed Double-Precision Values
fn blendvpd(x: &mut Exec, ins: &Instruction) -> ExecResult {
    blendv::<u64>(x, ins)
}

/// PBLENDVB — Variable Blend Packed Bytes
fn pblendvb(x: &mut Exec, ins: &Instruction) -> ExecResult {
    blendv::<u8>(x, ins)
}

pub(super) fn register(t: &mut TableBuilder) {
    use iced_x86::Code;
    forms!(
        t,
        packed(and),
        [
            Pand_mm_mmm64,
            Pand_xmm_xmmm128,
            Andps_xmm_xmmm128,
            Andpd_xmm_xmmm128
        ]
    );
    forms!(
        t,
        packed(andn),
        [
            Pandn_mm_mmm64,
            Pandn_xmm_xmmm128,
            Andnps_xmm_xmmm128,
            Andnpd_xmm_xmmm128
        ]
    );
    forms!(
        t,
        packed(or),
        [
            Por_mm_mmm64,
            Por_xmm_xmmm128,
            Orps_xmm_xmmm128,
            Orpd_xmm_xmmm128
        ]
    );
    forms!(
        t,
        packed(xor),
        [
            Pxor_mm_mmm64,
            Pxor_xmm_xmmm128,
            Xorps_xmm_xmmm128,
            Xorpd_xmm_xmmm128
        ]
    );
    t.add(Code::Ptest_xmm_xmmm128, ptest, 0);
    forms!(t, packed_imm(blendps), [Blendps_xmm_xmmm128_imm8]);
    forms!(t, packed_imm(blendpd), [Blendpd_xmm_xmmm128_imm8]);
    forms!(t, packed_imm(pblendw), [Pblendw_xmm_xmmm128_imm8]);
    t.add(Code::Blendvps_xmm_xmmm128, blendvps, 0);
    t.add(Code::Blendvpd_xmm_xmmm128, blendvpd, 0);
    t.add(Code::Pblendvb_xmm_xmmm128, pblendvb, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptest_flags_follow_the_sdm() {
        assert_eq!(ptest_flags(0, 0), ZF | CF);
        assert_eq!(ptest_flags(0xf0, 0x0f), ZF);
        assert_eq!(ptest_flags(0xff, 0x0f), CF);
        assert_eq!(ptest_flags(0x0f, 0xff), 0);
    }

    #[test]
    fn blends_pick_the_source_by_mask() {
        let a = 0x3333_3333_2222_2222_1111_1111_0000_0000u128;
        let b = 0x7777_7777_6666_6666_5555_5555_4444_4444u128;
        assert_eq!(
            blendps(a, b, 16, 0b0101),
            0x3333_3333_6666_6666_1111_1111_4444_4444
        );
        assert_eq!(
            blendpd(a, b, 16, 0b10),
            (b >> 64 << 64) | (a & u64::MAX as u128)
        );
        assert_eq!(
            pblendw(a, b, 16, 0x80),
            (b >> 112 << 112) | (a & (u128::MAX >> 16))
        );
    }
}
