//! CMPPS, CMPPD, CMPSS, CMPSD (the eight SSE predicates) and COMISS,
//! COMISD, UCOMISS, UCOMISD.

use super::lanes::{src, xmm, xmm_op, Lane};
use super::mxcsr::Mxcsr;
use crate::cpu::flags::{ARITH, CF, PF, ZF};
use crate::exception::ExecResult;
use crate::exec::{Exec, Handler};
use crate::fp::{Cmp, Fp, F32, F64};
use iced_x86::{Code, Instruction};

/// Predicate `imm & 7` of CMPxx: EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD.
/// LT, LE, NLT and NLE signal IE for a QNaN too.
fn predicate<F: Lane>(fp: &mut Fp, imm: u8, a: F, b: F) -> bool {
    let p = imm & 7;
    let c = fp.compare(a, b, matches!(p, 1 | 2 | 5 | 6));
    let less_eq = matches!(c, Cmp::Less | Cmp::Equal);
    match p {
        0 => c == Cmp::Equal,
        1 => c == Cmp::Less,
        2 => less_eq,
        3 => c == Cmp::Unordered,
        4 => c != Cmp::Equal,
        5 => c != Cmp::Less,
        6 => !less_eq,
        _ => c != Cmp::Unordered,
    }
}

/// CMPPS/CMPPD (`n` = every lane) and CMPSS/CMPSD (`n` = 1): each lane
/// all ones where the predicate holds.
fn cmp<F: Lane, const SCALAR: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let imm = ins.immediate8();
    let n = if SCALAR { 1 } else { F::COUNT };
    xmm_op(x, ins, |m, a, b| {
        (0..n).fold(a, |r, i| {
            let t = m.lane(|fp| predicate(fp, imm, F::lane(a, i), F::lane(b, i)));
            F::with_lane(r, i, F::mask(t))
        })
    })
}

/// COMISS/COMISD (signaling: IE for any NaN) and UCOMISS/UCOMISD (quiet):
/// ZF, PF, CF give the outcome (111 unordered, 000 greater, 001 less,
/// 100 equal); OF, SF and AF are cleared.
fn comis<F: Lane, const SIGNALING: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.sse_check()?;
    let b = F::lane(src(x, ins, 1)?, 0);
    let a = F::lane(xmm(x, ins.op0_register()), 0);
    let mut m = Mxcsr::new(x);
    let c = m.lane(|fp| fp.compare(a, b, SIGNALING));
    m.commit(x)?;
    let f = match c {
        Cmp::Unordered => ZF | PF | CF,
        Cmp::Greater => 0,
        Cmp::Less => CF,
        Cmp::Equal => ZF,
    };
    x.cpu.flags.set_arith(ARITH, f);
    Ok(())
}

/// The forms of this file and their handlers.
pub(super) const FORMS: &[(Code, Handler)] = &[
    (Code::Cmpps_xmm_xmmm128_imm8, cmp::<F32, false>),
    (Code::Cmppd_xmm_xmmm128_imm8, cmp::<F64, false>),
    (Code::Cmpss_xmm_xmmm32_imm8, cmp::<F32, true>),
    (Code::Cmpsd_xmm_xmmm64_imm8, cmp::<F64, true>),
    (Code::Comiss_xmm_xmmm32, comis::<F32, true>),
    (Code::Comisd_xmm_xmmm64, comis::<F64, true>),
    (Code::Ucomiss_xmm_xmmm32, comis::<F32, false>),
    (Code::Ucomisd_xmm_xmmm64, comis::<F64, false>),
];
