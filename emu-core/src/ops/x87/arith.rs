//! The basic arithmetic: FADD, FSUB, FSUBR, FMUL, FDIV, FDIVR with a
//! 32- or 64-bit real, a 16- or 32-bit integer or a register operand, and
//! the popping register forms FADDP ... FDIVRP.
//!
//! One kernel, [`binop`], instantiated per operation and operand form: the
//! destination register is the left operand, and the reversed operations
//! (FSUBR, FDIVR) compute `other - dest` and `other / dest`.

use super::unit::{
    begin, empty, mark, pop, post_arith, read_mem, set_st, source_denormal, st, stack_fault, sti,
    Source, INDEFINITE,
};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::fp::{Fp, F80};
use iced_x86::{Code, Instruction};

/// The operations, numbered as the ModR/M reg field of D8 /r.
const ADD: u8 = 0;
const MUL: u8 = 1;
const SUB: u8 = 4;
const SUBR: u8 = 5;
const DIV: u8 = 6;
const DIVR: u8 = 7;

/// Operand forms: ST(0) op memory (single, double, word or doubleword
/// integer), ST(0) op ST(i), ST(i) op ST(0), and the latter with a pop.
const M32: u8 = 0;
const M64: u8 = 1;
const I16: u8 = 2;
const I32: u8 = 3;
const ST0_STI: u8 = 4;
const STI_ST0: u8 = 5;
const STI_ST0_POP: u8 = 6;

/// `a OP b` (for the reversed operations, `b OP a`), with the
/// denormal-operand exception of a single or double memory operand.
pub(super) fn compute(fp: &mut Fp, op: u8, a: F80, b: Source) -> F80 {
    let (l, r) = match op {
        SUBR | DIVR => (b.value, a),
        _ => (a, b.value),
    };
    let v = match op {
        ADD => fp.add(l, r),
        MUL => fp.mul(l, r),
        SUB | SUBR => fp.sub(l, r),
        _ => fp.div(l, r),
    };
    let divisor = matches!(op, DIV | DIVR).then_some(r);
    source_denormal(fp, a, b, divisor);
    v
}

/// FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR (and FIxxx, FxxxP) — one operation in
/// one operand form.
fn binop<const OP: u8, const FORM: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let mut fp = begin(x)?;
    let (dst, other) = match FORM {
        ST0_STI => (0, sti(ins, 1)),
        STI_ST0 | STI_ST0_POP => (sti(ins, 0), 0),
        _ => (0, 0),
    };
    let mem = match FORM {
        M32 => Some(Source::f32(read_mem(x, ins, 4)? as u32)),
        M64 => Some(Source::f64(read_mem(x, ins, 8)?)),
        I16 => Some(Source::int(&mut fp, read_mem(x, ins, 2)? as i16 as i64)),
        I32 => Some(Source::int(&mut fp, read_mem(x, ins, 4)? as i32 as i64)),
        _ => None,
    };
    mark(x, ins);
    let popping = FORM == STI_ST0_POP;
    if empty(x, dst) || (mem.is_none() && empty(x, other)) {
        if stack_fault(x, false) {
            set_st(x, dst, INDEFINITE);
            if popping {
                pop(x);
            }
        }
        return Ok(());
    }
    let b = mem.unwrap_or_else(|| Source::reg(st(x, other)));
    let v = compute(&mut fp, OP, st(x, dst), b);
    if post_arith(x, &fp) {
        set_st(x, dst, v);
        if popping {
            pop(x);
        }
    }
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use Code::*;
    macro_rules! forms {
        ($op:expr, $m32:ident, $m64:ident, $i16:ident, $i32:ident, $st0:ident, $sti:ident, $pop:ident) => {
            t.add($m32, binop::<{ $op }, M32>, 0);
            t.add($m64, binop::<{ $op }, M64>, 0);
            t.add($i16, binop::<{ $op }, I16>, 0);
            t.add($i32, binop::<{ $op }, I32>, 0);
            t.add($st0, binop::<{ $op }, ST0_STI>, 0);
            t.add($sti, binop::<{ $op }, STI_ST0>, 0);
            t.add($pop, binop::<{ $op }, STI_ST0_POP>, 0);
        };
    }
    forms!(
        ADD,
        Fadd_m32fp,
        Fadd_m64fp,
        Fiadd_m16int,
        Fiadd_m32int,
        Fadd_st0_sti,
        Fadd_sti_st0,
        Faddp_sti_st0
    );
    forms!(
        MUL,
        Fmul_m32fp,
        Fmul_m64fp,
        Fimul_m16int,
        Fimul_m32int,
        Fmul_st0_sti,
        Fmul_sti_st0,
        Fmulp_sti_st0
    );
    forms!(
        SUB,
        Fsub_m32fp,
        Fsub_m64fp,
        Fisub_m16int,
        Fisub_m32int,
        Fsub_st0_sti,
        Fsub_sti_st0,
        Fsubp_sti_st0
    );
    forms!(
        SUBR,
        Fsubr_m32fp,
        Fsubr_m64fp,
        Fisubr_m16int,
        Fisubr_m32int,
        Fsubr_st0_sti,
        Fsubr_sti_st0,
        Fsubrp_sti_st0
    );
    forms!(
        DIV,
        Fdiv_m32fp,
        Fdiv_m64fp,
        Fidiv_m16int,
        Fidiv_m32int,
        Fdiv_st0_sti,
        Fdiv_sti_st0,
        Fdivp_sti_st0
    );
    forms!(
        DIVR,
        Fdivr_m32fp,
        Fdivr_m64fp,
        Fidivr_m16int,
        Fidivr_m32int,
        Fdivr_st0_sti,
        Fdivr_sti_st0,
        Fdivrp_sti_st0
    );
}
