//! Inserts and extracts of one lane: PINSRB/W/D/Q, PEXTRB/W/D/Q (to a
//! general register, zero-extended, or to memory), INSERTPS, EXTRACTPS.
//! The lane number is the imm8 modulo the lane count.

use super::lanes::{count, get, put, Lane};
use super::operand::{add_all, forms, width, Align};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Instruction, OpKind};

/// `a` with lane `imm mod lanes` replaced by the low `T` of `b`.
#[inline(always)]
fn insert<T: Lane>(a: u128, b: u128, w: usize, imm: u8) -> u128 {
    put(a, usize::from(imm) % count::<T>(w), T::from_bits(b))
}

/// PINSRB — Insert Byte
fn pinsrb(a: u128, b: u128, w: usize, imm: u8) -> u128 {
    insert::<u8>(a, b, w, imm)
}

/// PINSRW — Insert Word
fn pinsrw(a: u128, b: u128, w: usize, imm: u8) -> u128 {
    insert::<u16>(a, b, w, imm)
}

/// PINSRD — Insert Dword
fn pinsrd(a: u128, b: u128, w: usize, imm: u8) -> u128 {
    insert::<u32>(a, b, w, imm)
}

/// PINSRQ — Insert Qword
fn pinsrq(a: u128, b: u128, w: usize, imm: u8) -> u128 {
    insert::<u64>(a, b, w, imm)
}

/// INSERTPS — Insert Scalar Single-Precision Floating-Point Value: the
/// dword `e` into dword `imm8[5:4]` of `a`, then the dwords named in
/// `imm8[3:0]` cleared.
fn insertps(a: u128, e: u32, imm: u8) -> u128 {
    let r = put(a, usize::from(imm >> 4 & 3), e);
    (0..4).fold(r, |r, i| {
        if imm >> i & 1 != 0 {
            put(r, i, 0u32)
        } else {
            r
        }
    })
}

/// INSERTPS: from a register the dword is the source's dword `imm8[7:6]`;
/// from memory it is the m32 operand.
fn insertps_op(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.sse_check()?;
    let imm = ins.immediate8();
    let b = x.vsrc(ins, 1, Align::Aligned)?;
    let e: u32 = if ins.op1_kind() == OpKind::Register {
        get(b, usize::from(imm >> 6))
    } else {
        get(b, 0)
    };
    let d = ins.op0_register();
    let r = insertps(x.xmm(d), e, imm);
    x.set_xmm(d, r);
    Ok(())
}

/// The extracts: lane `imm mod lanes` of operand 1 (MM or XMM) to operand
/// 0, a general register (zero-extended) or memory of the lane's size.
#[inline(always)]
fn extract<T: Lane>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let s = ins.op1_register();
    let mmx = s.is_mm();
    x.simd_check(mmx)?;
    let i = usize::from(ins.immediate8()) % count::<T>(width(s));
    let v = get::<T>(x.vreg(s), i).bits();
    x.vstore_op0(ins, v, Align::Aligned)?;
    if mmx {
        x.cpu.fpu.enter_mmx();
    }
    Ok(())
}

/// PEXTRB — Extract Byte
fn pextrb(x: &mut Exec, ins: &Instruction) -> ExecResult {
    extract::<u8>(x, ins)
}

/// PEXTRW — Extract Word
fn pextrw(x: &mut Exec, ins: &Instruction) -> ExecResult {
    extract::<u16>(x, ins)
}

/// PEXTRD — Extract Dword; EXTRACTPS — Extract Packed Floating-Point
/// Values (the same bits)
fn pextrd(x: &mut Exec, ins: &Instruction) -> ExecResult {
    extract::<u32>(x, ins)
}

/// PEXTRQ — Extract Qword
fn pextrq(x: &mut Exec, ins: &Instruction) -> ExecResult {
    extract::<u64>(x, ins)
}

pub(super) fn register(t: &mut TableBuilder) {
    use iced_x86::Code::*;
    forms!(
        t,
        packed_imm(pinsrb),
        [Pinsrb_xmm_r32m8_imm8, Pinsrb_xmm_r64m8_imm8]
    );
    forms!(
        t,
        packed_imm(pinsrw),
        [
            Pinsrw_mm_r32m16_imm8,
            Pinsrw_mm_r64m16_imm8,
            Pinsrw_xmm_r32m16_imm8,
            Pinsrw_xmm_r64m16_imm8
        ]
    );
    forms!(t, packed_imm(pinsrd), [Pinsrd_xmm_rm32_imm8]);
    forms!(t, packed_imm(pinsrq), [Pinsrq_xmm_rm64_imm8]);
    t.add(Insertps_xmm_xmmm32_imm8, insertps_op, 0);
    t.add(Pextrb_r32m8_xmm_imm8, pextrb, 0);
    t.add(Pextrb_r64m8_xmm_imm8, pextrb, 0);
    add_all(
        t,
        &[
            Pextrw_r32_mm_imm8,
            Pextrw_r64_mm_imm8,
            Pextrw_r32_xmm_imm8,
            Pextrw_r64_xmm_imm8,
            Pextrw_r32m16_xmm_imm8,
            Pextrw_r64m16_xmm_imm8,
        ],
        pextrw,
    );
    add_all(
        t,
        &[
            Pextrd_rm32_xmm_imm8,
            Extractps_rm32_xmm_imm8,
            Extractps_r64m32_xmm_imm8,
        ],
        pextrd,
    );
    t.add(Pextrq_rm64_xmm_imm8, pextrq, 0);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ops::simd::host::check_imm;

    /// INSERTPS from a register, as the handler computes it.
    fn insertps_reg(a: u128, b: u128, _w: usize, imm: u8) -> u128 {
        insertps(a, get(b, usize::from(imm >> 6)), imm)
    }

    #[test]
    fn insertps_matches_the_host() {
        check_imm!(insertps_reg, "insertps", xmm);
    }

    #[test]
    fn lanes_wrap_around() {
        let a = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
        assert_eq!(pinsrb(a, 0x1ff, 16, 0x11), (a & !0xff00) | 0xff00);
        assert_eq!(pinsrw(a, 0xabcd, 8, 5), (a & !0xffff_0000) | 0xabcd_0000);
        assert_eq!(
            pinsrq(a, u128::MAX, 16, 3),
            (a & u64::MAX as u128) | (u128::from(u64::MAX) << 64)
        );
        assert_eq!(pinsrd(a, 7, 16, 0), (a & !0xffff_ffff) | 7);
    }
}
