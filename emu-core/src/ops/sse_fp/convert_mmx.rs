//! The conversions with an MMX register: CVTPI2PS, CVTPI2PD (from
//! mm/m64), CVT(T)PS2PI (to mm, from xmm/m64) and CVT(T)PD2PI (to mm, from
//! xmm/m128).
//!
//! They are SSE instructions (CR0.EM or CR4.OSFXSR clear: #UD; CR0.TS:
//! #NM, Intel SDM Vol. 3B, Table 23-4/23-5). Those that read or write an
//! MMX register also take #MF for a pending x87 exception, and put the
//! x87 unit in MMX state (TOP = 0, every register valid), even when an
//! unmasked SIMD exception then stops them. CVTPI2PS and CVTPI2PD from
//! memory do neither (measured).

use super::lanes::{int32, set_mm, set_xmm, src, with_int32, xmm, Lane};
use super::mxcsr::Mxcsr;
use crate::exception::ExecResult;
use crate::exec::{Exec, Handler};
use crate::fp::{F32, F64};
use iced_x86::{Code, Instruction, OpKind};

/// The checks of an SSE instruction; #MF too when it uses an MMX
/// register.
fn check(x: &mut Exec, mmx: bool) -> ExecResult {
    x.sse_check()?;
    if mmx {
        x.mmx_check()?;
    }
    Ok(())
}

/// CVTPI2PS (`G` = F32: the low two lanes, the upper half kept) and
/// CVTPI2PD (`G` = F64: the whole register; exact).
fn pi_to_float<G: Lane>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let mmx = ins.op1_kind() == OpKind::Register;
    check(x, mmx)?;
    let b = src(x, ins, 1)?;
    if mmx {
        x.cpu.fpu.enter_mmx();
    }
    let d = ins.op0_register();
    let mut m = Mxcsr::new(x);
    let r = (0..2).fold(xmm(x, d), |r, i| {
        let v: G = m.lane(|fp| fp.from_int(int32(b, i)));
        G::with_lane(r, i, v)
    });
    m.commit(x)?;
    set_xmm(x, d, r);
    Ok(())
}

/// CVT(T)PS2PI, CVT(T)PD2PI: the low two lanes to two 32-bit integers in
/// an MMX register.
fn float_to_pi<F: Lane, const TRUNC: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    check(x, true)?;
    let b = src(x, ins, 1)?;
    x.cpu.fpu.enter_mmx();
    let mut m = Mxcsr::new(x);
    let r = (0..2).fold(0, |r, i| {
        let n = m.lane(|fp| fp.to_int(F::lane(b, i), 32, TRUNC));
        with_int32(r, i, n)
    });
    m.commit(x)?;
    set_mm(x, ins.op0_register(), r as u64);
    Ok(())
}

/// The forms of this file and their handlers.
pub(super) const FORMS: &[(Code, Handler)] = &[
    (Code::Cvtpi2ps_xmm_mmm64, pi_to_float::<F32>),
    (Code::Cvtpi2pd_xmm_mmm64, pi_to_float::<F64>),
    (Code::Cvtps2pi_mm_xmmm64, float_to_pi::<F32, false>),
    (Code::Cvttps2pi_mm_xmmm64, float_to_pi::<F32, true>),
    (Code::Cvtpd2pi_mm_xmmm128, float_to_pi::<F64, false>),
    (Code::Cvttpd2pi_mm_xmmm128, float_to_pi::<F64, true>),
];
