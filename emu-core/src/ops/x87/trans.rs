//! The transcendentals: FSIN, FCOS, FSINCOS, FPTAN (with the argument
//! range rule: |ST(0)| >= 2^63 sets C2 and leaves the operand), FPATAN,
//! F2XM1, FYL2X, FYL2XP1. The values come from the soft-float core
//! ([`crate::fp`]'s `trans`), computed to 128 bits and rounded once.

use super::unit::{
    add_all, begin, empty, mark, nan_like, pop, post_arith, push, set_cc, set_st, st, stack_fault,
    INDEFINITE,
};
use crate::cpu::fpu::fsw::C2;
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::fp::{Fp, F80};
use iced_x86::{Code, Instruction};

const SIN: u8 = 0;
const COS: u8 = 1;
const F2XM1: u8 = 2;

/// FSIN, FCOS, F2XM1: ST(0) = f(ST(0)).
fn unary<const F: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let mut fp = begin(x)?;
    mark(x, ins);
    // C2 is set only for an operand out of range.
    set_cc(x, C2, 0);
    if empty(x, 0) {
        if stack_fault(x, false) {
            set_st(x, 0, INDEFINITE);
        }
        return Ok(());
    }
    let a = st(x, 0);
    let r = match F {
        SIN => fp.sin(a),
        COS => fp.cos(a),
        _ => Some(fp.exp2m1(a)),
    };
    let Some(v) = r else {
        set_cc(x, C2, C2);
        return Ok(());
    };
    if post_arith(x, &fp) {
        set_st(x, 0, v);
    }
    Ok(())
}

/// FSINCOS — Sine and Cosine: ST(0) = sin, then cos pushed. FPTAN —
/// Partial Tangent: ST(0) = tan, then 1.0 pushed (the NaN itself when the
/// result is one).
fn pushing<const TAN: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let fp0 = begin(x)?;
    mark(x, ins);
    set_cc(x, C2, 0);
    // An empty ST(0) is an underflow, a full ST(7) an overflow.
    for (i, overflow) in [(0, false), (7, true)] {
        if empty(x, i) == overflow {
            continue;
        }
        if stack_fault(x, overflow) {
            set_st(x, 0, INDEFINITE);
            push(x, INDEFINITE);
        }
        return Ok(());
    }
    let a = st(x, 0);
    let (mut fp, mut second) = (fp0, fp0);
    let r = if TAN {
        fp.tan(a).map(|t| {
            let one = F80::new(0x3fff, 1 << 63);
            (t, if nan_like(t) { t } else { one })
        })
    } else {
        match (fp.sin(a), second.cos(a)) {
            (Some(s), Some(c)) => Some((s, c)),
            _ => None,
        }
    };
    let Some((v, pushed)) = r else {
        set_cc(x, C2, C2);
        return Ok(());
    };
    if !TAN {
        merge(&mut fp, &second);
    }
    if post_arith(x, &fp) {
        set_st(x, 0, v);
        push(x, pushed);
    }
    Ok(())
}

/// The outcome of two results of one instruction: every flag, and C1
/// from the second (the value on top of the stack).
fn merge(fp: &mut Fp, second: &Fp) {
    fp.flags |= second.flags;
    fp.rounded_up = second.rounded_up;
}

const ATAN: u8 = 0;
const YL2X: u8 = 1;
const YL2XP1: u8 = 2;

/// FPATAN, FYL2X, FYL2XP1: ST(1) = f(ST(1), ST(0)), then pop.
fn binary<const F: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let mut fp = begin(x)?;
    mark(x, ins);
    if empty(x, 0) || empty(x, 1) {
        if stack_fault(x, false) {
            set_st(x, 1, INDEFINITE);
            pop(x);
        }
        return Ok(());
    }
    let (a, b) = (st(x, 0), st(x, 1));
    let v = match F {
        ATAN => fp.atan2(b, a),
        YL2X => fp.ylog2x(b, a),
        _ => fp.ylog2xp1(b, a),
    };
    if post_arith(x, &fp) {
        set_st(x, 1, v);
        pop(x);
    }
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use Code::*;
    add_all(
        t,
        &[
            (Fsin, unary::<SIN>),
            (Fcos, unary::<COS>),
            (F2xm1, unary::<F2XM1>),
            (Fsincos, pushing::<false>),
            (Fptan, pushing::<true>),
            (Fpatan, binary::<ATAN>),
            (Fyl2x, binary::<YL2X>),
            (Fyl2xp1, binary::<YL2XP1>),
        ],
    );
}
