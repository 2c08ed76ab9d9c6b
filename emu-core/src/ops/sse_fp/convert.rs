//! Conversions among XMM lanes and general registers: CVTPS2PD, CVTPD2PS,
//! CVTSS2SD, CVTSD2SS, CVTDQ2PS, CVT(T)PS2DQ, CVTDQ2PD, CVT(T)PD2DQ,
//! CVTSI2SS/SD from 32- and 64-bit sources, CVT(T)SS2SI and CVT(T)SD2SI
//! to 32- and 64-bit registers.
//!
//! Conversions to integers round by MXCSR.RC, or truncate (the CVTT
//! forms); NaNs and values out of range give the integer indefinite
//! (0x80000000, 0x8000000000000000) with IE. The forms that make fewer
//! lanes than 128 bits hold (CVTPD2PS, CVTPD2DQ) zero the upper half.

use super::lanes::{int32, src, with_int32, xmm_op, Lane};
use super::mxcsr::Mxcsr;
use crate::exception::ExecResult;
use crate::exec::{Exec, Handler};
use crate::fp::{F32, F64};
use iced_x86::{Code, Instruction};

/// CVTPS2PD, CVTPD2PS (`N` = 2) and CVTSS2SD, CVTSD2SS (`N` = 1,
/// `SCALAR`): lanes `0..N` of the source converted from `F` to `G` into
/// lanes `0..N` of the result. The scalar forms keep the destination's
/// other bits; the packed ones zero them (CVTPD2PS's upper half).
fn float_to_float<F: Lane, G: Lane, const N: usize, const SCALAR: bool>(
    x: &mut Exec,
    ins: &Instruction,
) -> ExecResult {
    xmm_op(x, ins, |m, a, b| {
        let base = if SCALAR { a } else { 0 };
        (0..N).fold(base, |r, i| {
            let v: G = m.lane(|fp| fp.convert(F::lane(b, i)));
            G::with_lane(r, i, v)
        })
    })
}

/// CVTDQ2PS, CVTDQ2PD: 32-bit integer lanes `0..G::COUNT` to `G`.
fn dq_to_float<G: Lane>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    xmm_op(x, ins, |m, _, b| {
        (0..G::COUNT).fold(0, |r, i| {
            let v: G = m.lane(|fp| fp.from_int(int32(b, i)));
            G::with_lane(r, i, v)
        })
    })
}

/// CVT(T)PS2DQ, CVT(T)PD2DQ: `F` lanes to 32-bit integers (upper lanes
/// zero when there are fewer than four).
fn float_to_dq<F: Lane, const TRUNC: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    xmm_op(x, ins, |m, _, b| {
        (0..F::COUNT).fold(0, |r, i| {
            let n = m.lane(|fp| fp.to_int(F::lane(b, i), 32, TRUNC));
            with_int32(r, i, n)
        })
    })
}

/// CVTSI2SS, CVTSI2SD: a `BITS`-bit integer to lane 0.
fn si_to_float<G: Lane, const BITS: u32>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    xmm_op(x, ins, |m, a, b| {
        let n = if BITS == 32 {
            i64::from(b as u32 as i32)
        } else {
            b as u64 as i64
        };
        let v: G = m.lane(|fp| fp.from_int(n));
        G::with_lane(a, 0, v)
    })
}

/// CVT(T)SS2SI, CVT(T)SD2SI: lane 0 to a `BITS`-bit general register (a
/// 32-bit result zero-extended, as every 32-bit register write is).
fn float_to_si<F: Lane, const BITS: u32, const TRUNC: bool>(
    x: &mut Exec,
    ins: &Instruction,
) -> ExecResult {
    x.sse_check()?;
    let a = F::lane(src(x, ins, 1)?, 0);
    let mut m = Mxcsr::new(x);
    let n = m.lane(|fp| fp.to_int(a, BITS, TRUNC));
    m.commit(x)?;
    x.set_reg(ins.op0_register(), n as u64);
    Ok(())
}

/// The forms of this file and their handlers.
pub(super) const FORMS: &[(Code, Handler)] = &[
    (
        Code::Cvtps2pd_xmm_xmmm64,
        float_to_float::<F32, F64, 2, false>,
    ),
    (
        Code::Cvtpd2ps_xmm_xmmm128,
        float_to_float::<F64, F32, 2, false>,
    ),
    (
        Code::Cvtss2sd_xmm_xmmm32,
        float_to_float::<F32, F64, 1, true>,
    ),
    (
        Code::Cvtsd2ss_xmm_xmmm64,
        float_to_float::<F64, F32, 1, true>,
    ),
    (Code::Cvtdq2ps_xmm_xmmm128, dq_to_float::<F32>),
    (Code::Cvtdq2pd_xmm_xmmm64, dq_to_float::<F64>),
    (Code::Cvtps2dq_xmm_xmmm128, float_to_dq::<F32, false>),
    (Code::Cvttps2dq_xmm_xmmm128, float_to_dq::<F32, true>),
    (Code::Cvtpd2dq_xmm_xmmm128, float_to_dq::<F64, false>),
    (Code::Cvttpd2dq_xmm_xmmm128, float_to_dq::<F64, true>),
    (Code::Cvtsi2ss_xmm_rm32, si_to_float::<F32, 32>),
    (Code::Cvtsi2ss_xmm_rm64, si_to_float::<F32, 64>),
    (Code::Cvtsi2sd_xmm_rm32, si_to_float::<F64, 32>),
    (Code::Cvtsi2sd_xmm_rm64, si_to_float::<F64, 64>),
    (Code::Cvtss2si_r32_xmmm32, float_to_si::<F32, 32, false>),
    (Code::Cvtss2si_r64_xmmm32, float_to_si::<F32, 64, false>),
    (Code::Cvttss2si_r32_xmmm32, float_to_si::<F32, 32, true>),
    (Code::Cvttss2si_r64_xmmm32, float_to_si::<F32, 64, true>),
    (Code::Cvtsd2si_r32_xmmm64, float_to_si::<F64, 32, false>),
    (Code::Cvtsd2si_r64_xmmm64, float_to_si::<F64, 64, false>),
    (Code::Cvttsd2si_r32_xmmm64, float_to_si::<F64, 32, true>),
    (Code::Cvttsd2si_r64_xmmm64, float_to_si::<F64, 64, true>),
];
