//! Arithmetic on ST(0) (with ST(1) for some): FCHS, FABS, FSQRT, FRNDINT,
//! FSCALE, FXTRACT, FPREM, FPREM1.

use super::unit::{
    add_all, begin, empty, mark, nan_like, post, post_arith, push, set_c1, set_cc, set_st, st,
    stack_fault, INDEFINITE,
};
use crate::cpu::fpu::fsw::{C0, C1, C2, C3};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::fp::{Fp, F80};
use iced_x86::{Code, Instruction};

/// The start of an instruction on ST(0) (and ST(1) when `two`): the
/// operands, or `None` after a stack underflow (whose masked response
/// writes the indefinite to ST(0)).
fn operands(x: &mut Exec, ins: &Instruction, two: bool) -> ExecResult<Option<(Fp, F80, F80)>> {
    let fp = begin(x)?;
    mark(x, ins);
    if empty(x, 0) || (two && empty(x, 1)) {
        if stack_fault(x, false) {
            set_st(x, 0, INDEFINITE);
        }
        return Ok(None);
    }
    Ok(Some((fp, st(x, 0), st(x, 1))))
}

/// FCHS — Change Sign; FABS — Absolute Value: the sign bit alone, for
/// NaNs too, with no exception.
fn sign<const ABS: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if let Some((_, a, _)) = operands(x, ins, false)? {
        let se = if ABS { a.se & 0x7fff } else { a.se ^ 0x8000 };
        set_st(x, 0, F80::new(se, a.signif));
        set_c1(x, false);
    }
    Ok(())
}

/// FSQRT, FRNDINT, FSCALE: ST(0) = f(ST(0), ST(1)).
fn st0_op<const OP: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let two = OP == SCALE;
    if let Some((mut fp, a, b)) = operands(x, ins, two)? {
        let v = match OP {
            SQRT => fp.sqrt(a),
            RNDINT => {
                let mode = fp.env.round;
                fp.round_int(a, mode, true)
            }
            _ => fp.scale(a, b),
        };
        if post_arith(x, &fp) {
            set_st(x, 0, v);
        }
    }
    Ok(())
}

const SQRT: u8 = 0;
const RNDINT: u8 = 1;
const SCALE: u8 = 2;

/// FXTRACT — Extract Exponent and Significand: ST(0) becomes the
/// exponent (as a real), then the significand is pushed.
fn fxtract(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let fp0 = begin(x)?;
    mark(x, ins);
    if empty(x, 0) {
        if stack_fault(x, false) {
            set_st(x, 0, INDEFINITE);
            push(x, INDEFINITE);
        }
        return Ok(());
    }
    if !empty(x, 7) {
        if stack_fault(x, true) {
            set_st(x, 0, INDEFINITE);
            push(x, INDEFINITE);
        }
        return Ok(());
    }
    let mut fp = fp0;
    let (e, s) = fp.extract(st(x, 0));
    if post(x, &fp) {
        set_c1(x, false);
        set_st(x, 0, e);
        push(x, s);
    }
    Ok(())
}

/// FPREM — Partial Remainder (quotient truncated); FPREM1 — IEEE Partial
/// Remainder (quotient rounded to nearest): the quotient's three low bits
/// in C0, C3, C1, and C2 set while the reduction is incomplete.
fn fprem<const NEAREST: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let Some((mut fp, a, b)) = operands(x, ins, true)? else {
        // A stack underflow clears C2 as well (so does an unmasked
        // exception below: only a completed partial reduction sets it).
        set_cc(x, C2, 0);
        return Ok(());
    };
    {
        let r = fp.rem(a, b, NEAREST);
        if !post(x, &fp) {
            set_cc(x, C2, 0);
            return Ok(());
        }
        if nan_like(r.value) {
            // A NaN result (a NaN operand, or the masked response to an
            // invalid one) clears C1 and C2 and leaves C0 and C3
            // (measured on the host).
            set_cc(x, C1 | C2, 0);
        } else {
            let q = r.quotient;
            let bit = |n: u8, c: u16| if q & n != 0 { c } else { 0 };
            let c2 = if r.complete { 0 } else { C2 };
            set_cc(
                x,
                C0 | C1 | C2 | C3,
                bit(4, C0) | bit(2, C3) | bit(1, C1) | c2,
            );
        }
        set_st(x, 0, r.value);
    }
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use Code::*;
    add_all(
        t,
        &[
            (Fchs, sign::<false>),
            (Fabs, sign::<true>),
            (Fsqrt, st0_op::<SQRT>),
            (Frndint, st0_op::<RNDINT>),
            (Fscale, st0_op::<SCALE>),
            (Fxtract, fxtract),
            (Fprem, fprem::<false>),
            (Fprem1, fprem::<true>),
        ],
    );
}
