//! ROUNDPS, ROUNDPD, ROUNDSS, ROUNDSD and the dot products DPPS, DPPD
//! (SSE4.1).

use super::lanes::{map, xmm_op, Lane};
use super::mxcsr::Mxcsr;
use crate::exception::ExecResult;
use crate::exec::{Exec, Handler};
use crate::fp::{Fp, Round, F32, F64};
use iced_x86::{Code, Instruction};

/// ROUNDxx: immediate bits 0..=1 the rounding direction, bit 2 "use
/// MXCSR.RC instead", bit 3 "do not report PE". No DE for denormal
/// sources (DAZ still reads them as zero).
fn round<F: Lane, const SCALAR: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let imm = ins.immediate8();
    let n = if SCALAR { 1 } else { F::COUNT };
    xmm_op(x, ins, |m, a, b| {
        let mode = if imm & 4 != 0 {
            m.env.round
        } else {
            Round::from_bits(u32::from(imm))
        };
        map(m, a, b, n, |fp: &mut Fp, _, v: F| {
            fp.round_int(v, mode, imm & 8 == 0)
        })
    })
}

/// The sum of the products the high nibble of `imm` selects (+0.0 for
/// the others), added pairwise: (p0 + p1) + (p2 + p3) for four lanes;
/// each operation an ordinary one (a denormal product is a denormal
/// operand of the sum, DAZ included). Products, pair sums and the final
/// sum are stages: the flags of a completed stage stay reported, and a
/// stage that raises an unmasked exception is the last (measured).
fn dot<F: Lane>(m: &mut Mxcsr, a: u128, b: u128, imm: u8) -> F {
    let mut p = [F::zero(false); 4];
    for (i, slot) in p.iter_mut().enumerate().take(F::COUNT) {
        if imm & (0x10 << i) != 0 {
            *slot = m.lane(|fp| fp.mul(F::lane(a, i), F::lane(b, i)));
        }
    }
    if m.end_stage() {
        return p[0];
    }
    let low = m.lane(|fp| fp.add(p[0], p[1]));
    if F::COUNT == 2 {
        return low;
    }
    let high = m.lane(|fp| fp.add(p[2], p[3]));
    if m.end_stage() {
        return low;
    }
    m.lane(|fp| fp.add(low, high))
}

/// DPPS/DPPD — Dot Product of Packed Single/Double Precision Values: the
/// sum into the lanes the low bits of the immediate select, +0.0 into the
/// others.
fn dp<F: Lane>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let imm = ins.immediate8();
    xmm_op(x, ins, |m, a, b| {
        let s: F = dot(m, a, b, imm);
        (0..F::COUNT).fold(0, |r, i| {
            let v = if imm & (1 << i) != 0 {
                s
            } else {
                F::zero(false)
            };
            F::with_lane(r, i, v)
        })
    })
}

/// The forms of this file and their handlers.
pub(super) const FORMS: &[(Code, Handler)] = &[
    (Code::Roundps_xmm_xmmm128_imm8, round::<F32, false>),
    (Code::Roundpd_xmm_xmmm128_imm8, round::<F64, false>),
    (Code::Roundss_xmm_xmmm32_imm8, round::<F32, true>),
    (Code::Roundsd_xmm_xmmm64_imm8, round::<F64, true>),
    (Code::Dpps_xmm_xmmm128_imm8, dp::<F32>),
    (Code::Dppd_xmm_xmmm128_imm8, dp::<F64>),
];
