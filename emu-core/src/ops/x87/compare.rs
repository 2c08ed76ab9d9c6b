//! Comparisons and conditional moves: FCOM, FCOMP, FCOMPP, FUCOM, FUCOMP,
//! FUCOMPP, FICOM, FICOMP (condition codes), FCOMI, FCOMIP, FUCOMI,
//! FUCOMIP (EFLAGS), FTST, FXAM, and FCMOVcc.
//!
//! A comparison writes its outcome even when it raises an unmasked
//! exception (a stack underflow or an invalid operand reads as
//! unordered), but then does not pop the stack.

use super::unit::{
    add_all, begin, empty, mark, masked, pop, raise, read_mem, set_cc, set_st, source_denormal, st,
    stack_fault, sti, Source, INDEFINITE,
};
use crate::cpu::flags::{AF, CF, OF, PF, SF, ZF};
use crate::cpu::fpu::fsw::{C0, C1, C2, C3};
use crate::cpu::model::Vendor;
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::fp::{classify, Class, Cmp, F80};
use iced_x86::{Code, Instruction};

/// Operand forms: ST(0) with a single, double, word or doubleword
/// integer in memory, with ST(i), with ST(1) (FCOMPP, FUCOMPP), with 0.0
/// (FTST).
const M32: u8 = 0;
const M64: u8 = 1;
const I16: u8 = 2;
const I32: u8 = 3;
const STI: u8 = 4;
const ST1: u8 = 5;
const ZERO: u8 = 6;

/// Where the outcome goes: the condition codes or EFLAGS.
const CODES: bool = false;
const EFLAGS: bool = true;

/// FCOM/FUCOM/FICOM/FTST/FCOMI/FUCOMI and their popping forms. `SIGNALING`
/// comparisons raise IE for every NaN, the unordered ones (FUCOMx) for
/// signaling NaNs only; `POPS` is 0, 1 or 2.
fn compare<const FORM: u8, const SIGNALING: bool, const POPS: u8, const TO_EFLAGS: bool>(
    x: &mut Exec,
    ins: &Instruction,
) -> ExecResult {
    let mut fp = begin(x)?;
    let mem = match FORM {
        M32 => Some(Source::f32(read_mem(x, ins, 4)? as u32)),
        M64 => Some(Source::f64(read_mem(x, ins, 8)?)),
        I16 => Some(Source::int(&mut fp, read_mem(x, ins, 2)? as i16 as i64)),
        I32 => Some(Source::int(&mut fp, read_mem(x, ins, 4)? as i32 as i64)),
        ZERO => Some(Source::reg(F80::ZERO)),
        _ => None,
    };
    mark(x, ins);
    let other = match FORM {
        STI => sti(ins, 1),
        _ => 1,
    };
    let (outcome, completes) = if empty(x, 0) || (mem.is_none() && empty(x, other)) {
        (Cmp::Unordered, stack_fault(x, false))
    } else {
        let a = st(x, 0);
        let b = mem.unwrap_or_else(|| Source::reg(st(x, other)));
        let c = fp.compare(a, b.value, SIGNALING);
        source_denormal(&mut fp, a, b, None);
        raise(x, fp.flags);
        (c, masked(x, fp.flags))
    };
    if TO_EFLAGS {
        let (z, p, c) = match outcome {
            Cmp::Greater => (0, 0, 0),
            Cmp::Less => (0, 0, CF),
            Cmp::Equal => (ZF, 0, 0),
            Cmp::Unordered => (ZF, PF, CF),
        };
        x.cpu
            .flags
            .set_arith(ZF | PF | CF | OF | SF | AF, z | p | c);
        // Intel documents C1 as cleared; AMD processors leave it
        // (measured on the host).
        if x.sys.gate.vendor == Vendor::Intel {
            set_cc(x, C1, 0);
        }
    } else {
        let codes = match outcome {
            Cmp::Greater => 0,
            Cmp::Less => C0,
            Cmp::Equal => C3,
            Cmp::Unordered => C0 | C2 | C3,
        };
        set_cc(x, C0 | C1 | C2 | C3, codes);
    }
    if completes {
        for _ in 0..POPS {
            pop(x);
        }
    }
    Ok(())
}

/// FXAM — Examine Floating-Point: the class of ST(0) in C3, C2, C0 and
/// its sign in C1, for an empty register too.
fn fxam(x: &mut Exec, ins: &Instruction) -> ExecResult {
    begin(x)?;
    mark(x, ins);
    let v = st(x, 0);
    let class = if empty(x, 0) {
        C3 | C0
    } else {
        match classify(v) {
            Class::Unsupported => 0,
            Class::Nan => C0,
            Class::Normal => C2,
            Class::Infinity => C2 | C0,
            Class::Zero => C3,
            Class::Denormal => C3 | C2,
        }
    };
    let sign = if v.sign() { C1 } else { 0 };
    set_cc(x, C0 | C1 | C2 | C3, class | sign);
    Ok(())
}

/// FCMOVcc — Floating-Point Conditional Move: ST(0) = ST(i) when the
/// EFLAGS condition `CC` (the Jcc condition number) holds. C1 is left
/// alone unless a stack underflow clears it.
fn fcmov<const CC: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    begin(x)?;
    mark(x, ins);
    let i = sti(ins, 1);
    if empty(x, 0) || empty(x, i) {
        if stack_fault(x, false) {
            set_st(x, 0, INDEFINITE);
        }
        return Ok(());
    }
    if x.cpu.flags.cond(CC) {
        let v = st(x, i);
        set_st(x, 0, v);
    }
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use Code::*;
    const S: bool = true;
    const U: bool = false;
    add_all(
        t,
        &[
            (Fcom_m32fp, compare::<M32, S, 0, CODES>),
            (Fcom_m64fp, compare::<M64, S, 0, CODES>),
            (Fcomp_m32fp, compare::<M32, S, 1, CODES>),
            (Fcomp_m64fp, compare::<M64, S, 1, CODES>),
            (Ficom_m16int, compare::<I16, S, 0, CODES>),
            (Ficom_m32int, compare::<I32, S, 0, CODES>),
            (Ficomp_m16int, compare::<I16, S, 1, CODES>),
            (Ficomp_m32int, compare::<I32, S, 1, CODES>),
            (Fcom_st0_sti, compare::<STI, S, 0, CODES>),
            (Fcom_st0_sti_DCD0, compare::<STI, S, 0, CODES>),
            (Fcomp_st0_sti, compare::<STI, S, 1, CODES>),
            (Fcomp_st0_sti_DCD8, compare::<STI, S, 1, CODES>),
            (Fcomp_st0_sti_DED0, compare::<STI, S, 1, CODES>),
            (Fcompp, compare::<ST1, S, 2, CODES>),
            (Fucom_st0_sti, compare::<STI, U, 0, CODES>),
            (Fucomp_st0_sti, compare::<STI, U, 1, CODES>),
            (Fucompp, compare::<ST1, U, 2, CODES>),
            (Ftst, compare::<ZERO, S, 0, CODES>),
            (Fcomi_st0_sti, compare::<STI, S, 0, EFLAGS>),
            (Fcomip_st0_sti, compare::<STI, S, 1, EFLAGS>),
            (Fucomi_st0_sti, compare::<STI, U, 0, EFLAGS>),
            (Fucomip_st0_sti, compare::<STI, U, 1, EFLAGS>),
            (Fxam, fxam),
            (Fcmovb_st0_sti, fcmov::<0x2>),
            (Fcmove_st0_sti, fcmov::<0x4>),
            (Fcmovbe_st0_sti, fcmov::<0x6>),
            (Fcmovu_st0_sti, fcmov::<0xa>),
            (Fcmovnb_st0_sti, fcmov::<0x3>),
            (Fcmovne_st0_sti, fcmov::<0x5>),
            (Fcmovnbe_st0_sti, fcmov::<0x7>),
            (Fcmovnu_st0_sti, fcmov::<0xb>),
        ],
    );
}
