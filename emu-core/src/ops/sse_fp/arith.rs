//! ADD, SUB, MUL, DIV, MIN, MAX and SQRT in their PS, PD, SS and SD
//! forms, ADDSUBPS/PD and the horizontal HADDPS/PD, HSUBPS/PD.
//!
//! The scalar forms compute lane 0 and keep the destination's other
//! lanes; SQRT takes its operand from the source. MIN and MAX return the
//! second operand when either is a NaN or both are zeros.

use super::lanes::{map, xmm_op, Lane};
use crate::exception::ExecResult;
use crate::exec::{Exec, Handler};
use crate::fp::{Fp, F32, F64};
use iced_x86::{Code, Instruction};

const ADD: u8 = 0;
const SUB: u8 = 1;
const MUL: u8 = 2;
const DIV: u8 = 3;
const MIN: u8 = 4;
const MAX: u8 = 5;
const SQRT: u8 = 6;

fn op<F: Lane, const OP: u8>(fp: &mut Fp, a: F, b: F) -> F {
    match OP {
        ADD => fp.add(a, b),
        SUB => fp.sub(a, b),
        MUL => fp.mul(a, b),
        DIV => fp.div(a, b),
        MIN => fp.min(a, b),
        MAX => fp.max(a, b),
        _ => fp.sqrt(b),
    }
}

/// Every lane.
fn packed<F: Lane, const OP: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    xmm_op(x, ins, |m, a, b| map(m, a, b, F::COUNT, op::<F, OP>))
}

/// Lane 0; the destination's other lanes kept.
fn scalar<F: Lane, const OP: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    xmm_op(x, ins, |m, a, b| map(m, a, b, 1, op::<F, OP>))
}

/// ADDSUBPS/ADDSUBPD — Packed Single/Double FP Add/Subtract: even lanes
/// subtract, odd lanes add.
fn addsub<F: Lane>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    xmm_op(x, ins, |m, a, b| {
        (0..F::COUNT).fold(a, |r, i| {
            let (p, q) = (F::lane(a, i), F::lane(b, i));
            let v = m.lane(|fp| {
                if i % 2 == 0 {
                    fp.sub(p, q)
                } else {
                    fp.add(p, q)
                }
            });
            F::with_lane(r, i, v)
        })
    })
}

/// HADDPS/HADDPD, HSUBPS/HSUBPD — Packed Horizontal Add/Subtract: the
/// low half of the result from adjacent pairs of the destination, the
/// high half from those of the source.
fn horizontal<F: Lane, const OP: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    xmm_op(x, ins, |m, a, b| {
        let half = F::COUNT / 2;
        (0..F::COUNT).fold(a, |r, i| {
            let v = if i < half { a } else { b };
            let k = 2 * (i % half);
            let s = m.lane(|fp| op::<F, OP>(fp, F::lane(v, k), F::lane(v, k + 1)));
            F::with_lane(r, i, s)
        })
    })
}

/// The forms of this file and their handlers.
pub(super) const FORMS: &[(Code, Handler)] = &[
    (Code::Addps_xmm_xmmm128, packed::<F32, ADD>),
    (Code::Addpd_xmm_xmmm128, packed::<F64, ADD>),
    (Code::Addss_xmm_xmmm32, scalar::<F32, ADD>),
    (Code::Addsd_xmm_xmmm64, scalar::<F64, ADD>),
    (Code::Subps_xmm_xmmm128, packed::<F32, SUB>),
    (Code::Subpd_xmm_xmmm128, packed::<F64, SUB>),
    (Code::Subss_xmm_xmmm32, scalar::<F32, SUB>),
    (Code::Subsd_xmm_xmmm64, scalar::<F64, SUB>),
    (Code::Mulps_xmm_xmmm128, packed::<F32, MUL>),
    (Code::Mulpd_xmm_xmmm128, packed::<F64, MUL>),
    (Code::Mulss_xmm_xmmm32, scalar::<F32, MUL>),
    (Code::Mulsd_xmm_xmmm64, scalar::<F64, MUL>),
    (Code::Divps_xmm_xmmm128, packed::<F32, DIV>),
    (Code::Divpd_xmm_xmmm128, packed::<F64, DIV>),
    (Code::Divss_xmm_xmmm32, scalar::<F32, DIV>),
    (Code::Divsd_xmm_xmmm64, scalar::<F64, DIV>),
    (Code::Minps_xmm_xmmm128, packed::<F32, MIN>),
    (Code::Minpd_xmm_xmmm128, packed::<F64, MIN>),
    (Code::Minss_xmm_xmmm32, scalar::<F32, MIN>),
    (Code::Minsd_xmm_xmmm64, scalar::<F64, MIN>),
    (Code::Maxps_xmm_xmmm128, packed::<F32, MAX>),
    (Code::Maxpd_xmm_xmmm128, packed::<F64, MAX>),
    (Code::Maxss_xmm_xmmm32, scalar::<F32, MAX>),
    (Code::Maxsd_xmm_xmmm64, scalar::<F64, MAX>),
    (Code::Sqrtps_xmm_xmmm128, packed::<F32, SQRT>),
    (Code::Sqrtpd_xmm_xmmm128, packed::<F64, SQRT>),
    (Code::Sqrtss_xmm_xmmm32, scalar::<F32, SQRT>),
    (Code::Sqrtsd_xmm_xmmm64, scalar::<F64, SQRT>),
    (Code::Addsubps_xmm_xmmm128, addsub::<F32>),
    (Code::Addsubpd_xmm_xmmm128, addsub::<F64>),
    (Code::Haddps_xmm_xmmm128, horizontal::<F32, ADD>),
    (Code::Haddpd_xmm_xmmm128, horizontal::<F64, ADD>),
    (Code::Hsubps_xmm_xmmm128, horizontal::<F32, SUB>),
    (Code::Hsubpd_xmm_xmmm128, horizontal::<F64, SUB>),
];
