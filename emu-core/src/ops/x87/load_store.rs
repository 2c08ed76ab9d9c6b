//! Loads and stores: FLD, FST, FSTP (single, double, extended, register),
//! FILD, FIST, FISTP, FISTTP (word, doubleword, quadword integers), FXCH.

use super::unit::{
    add_all, begin, empty, mark, masked, pop, push, raise, read_m80, read_mem, set_c1, set_st, st,
    stack_fault, sti, write_m80, write_mem, INDEFINITE,
};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::fp::{Flags, Fp, F32, F64, F80};
use iced_x86::{Code, Instruction};

/// Memory formats: single, double, extended real; word, doubleword,
/// quadword integer.
const M32: u8 = 0;
const M64: u8 = 1;
const M80: u8 = 2;
const I16: u8 = 3;
const I32: u8 = 4;
const I64: u8 = 5;

/// Push a loaded value: the overflow check first (a full ST(7) pushes the
/// indefinite when IE is masked), then the conversion's exceptions. An
/// unmasked invalid operation (an SNaN source) stops the load; an
/// unmasked denormal operand does not (the value is pushed and the
/// exception reported at the next waiting instruction).
fn push_loaded(x: &mut Exec, fp: &Fp, v: F80) {
    if !empty(x, 7) {
        if stack_fault(x, true) {
            push(x, INDEFINITE);
        }
        return;
    }
    set_c1(x, false);
    if fp.flags.contains(Flags::IE) && !masked(x, Flags::IE) {
        raise(x, Flags::IE);
        return;
    }
    raise(x, fp.flags);
    push(x, v);
}

/// FLD m32/m64/m80 and FILD m16/m32/m64 — Load (Integer) onto the stack.
fn load<const FORM: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let mut fp = begin(x)?;
    let v = match FORM {
        M32 => fp.convert(F32(read_mem(x, ins, 4)? as u32)),
        M64 => fp.convert(F64(read_mem(x, ins, 8)?)),
        M80 => F80::from_bytes(&read_m80(x, ins)?),
        I16 => fp.from_int(i64::from(read_mem(x, ins, 2)? as i16)),
        I32 => fp.from_int(i64::from(read_mem(x, ins, 4)? as i32)),
        _ => fp.from_int(read_mem(x, ins, 8)? as i64),
    };
    mark(x, ins);
    push_loaded(x, &fp, v);
    Ok(())
}

/// FLD ST(i) — push a copy of ST(i) (no exception for its contents).
fn fld_sti(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let fp = begin(x)?;
    mark(x, ins);
    let i = sti(ins, 0);
    if empty(x, i) {
        // An underflow, even when ST(7) is full as well (C1 = 0).
        if stack_fault(x, false) {
            push(x, INDEFINITE);
        }
        return Ok(());
    }
    let v = st(x, i);
    push_loaded(x, &fp, v);
    Ok(())
}

/// The value a store of `v` in format `FORM` (not M80) writes, with the
/// exceptions it raises in `fp`. The integer indefinite and the real
/// indefinite are what the conversions return for invalid operands.
fn convert_out<const FORM: u8, const TRUNC: bool>(fp: &mut Fp, v: F80) -> u64 {
    match FORM {
        M32 => u64::from(fp.convert::<F80, F32>(v).0),
        M64 => fp.convert::<F80, F64>(v).0,
        I16 => fp.to_int(v, 16, TRUNC) as u64,
        I32 => fp.to_int(v, 32, TRUNC) as u64,
        _ => fp.to_int(v, 64, TRUNC) as u64,
    }
}

fn size_of(form: u8) -> usize {
    match form {
        I16 => 2,
        M32 | I32 => 4,
        _ => 8,
    }
}

/// FST/FSTP m32/m64/m80, FIST/FISTP m16/m32/m64, FISTTP — store ST(0)
/// (FISTTP truncating), then pop for the P forms. An empty ST(0) stores
/// the indefinite of the format when IE is masked. An unmasked invalid
/// operation, overflow or underflow leaves memory and the stack as they
/// were; an unmasked precision exception does not stop the store.
fn store<const FORM: u8, const POP: bool, const TRUNC: bool>(
    x: &mut Exec,
    ins: &Instruction,
) -> ExecResult {
    let mut fp = begin(x)?;
    if empty(x, 0) {
        if masked(x, Flags::IE) && FORM == M80 {
            write_m80(x, ins, &INDEFINITE.to_bytes())?;
        } else if masked(x, Flags::IE) {
            let v = convert_out::<FORM, TRUNC>(&mut fp, INDEFINITE);
            write_mem(x, ins, size_of(FORM), v)?;
        }
        mark(x, ins);
        if stack_fault(x, false) && POP {
            pop(x);
        }
        return Ok(());
    }
    let v = st(x, 0);
    if FORM == M80 {
        write_m80(x, ins, &v.to_bytes())?;
        mark(x, ins);
        set_c1(x, false);
    } else {
        let out = convert_out::<FORM, TRUNC>(&mut fp, v);
        let stop = Flags(fp.flags.bits() & (Flags::IE | Flags::OE | Flags::UE).bits());
        let write = masked(x, stop);
        if write {
            write_mem(x, ins, size_of(FORM), out)?;
        }
        mark(x, ins);
        raise(x, fp.flags);
        set_c1(x, write && fp.rounded_up);
        if !write {
            return Ok(());
        }
    }
    if POP {
        pop(x);
    }
    Ok(())
}

/// FST ST(i), FSTP ST(i) — copy ST(0) to ST(i) (bit for bit, no
/// exception for its contents), then pop for FSTP. The reserved encoding
/// D9 D8+i (FSTPNCE, `CHECK` false) is FSTP without the stack check: an
/// empty ST(0) is popped without a fault and ST(i) left alone (measured
/// on the host).
fn fst_sti<const POP: bool, const CHECK: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    begin(x)?;
    mark(x, ins);
    let i = sti(ins, 0);
    if !CHECK && empty(x, 0) {
        set_c1(x, false);
        pop(x);
        return Ok(());
    }
    if empty(x, 0) {
        if stack_fault(x, false) {
            set_st(x, i, INDEFINITE);
            if POP {
                pop(x);
            }
        }
        return Ok(());
    }
    set_c1(x, false);
    let v = st(x, 0);
    set_st(x, i, v);
    if POP {
        pop(x);
    }
    Ok(())
}

/// FXCH — Exchange Register Contents. An empty register reads as the
/// indefinite when the underflow is masked.
fn fxch(x: &mut Exec, ins: &Instruction) -> ExecResult {
    begin(x)?;
    mark(x, ins);
    let i = sti(ins, 1);
    let (mut a, mut b) = (st(x, 0), st(x, i));
    if empty(x, 0) || empty(x, i) {
        if !stack_fault(x, false) {
            return Ok(());
        }
        if empty(x, 0) {
            a = INDEFINITE;
        }
        if empty(x, i) {
            b = INDEFINITE;
        }
    } else {
        set_c1(x, false);
    }
    set_st(x, 0, b);
    set_st(x, i, a);
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use Code::*;
    add_all(
        t,
        &[
            (Fld_m32fp, load::<M32>),
            (Fld_m64fp, load::<M64>),
            (Fld_m80fp, load::<M80>),
            (Fild_m16int, load::<I16>),
            (Fild_m32int, load::<I32>),
            (Fild_m64int, load::<I64>),
            (Fld_sti, fld_sti),
            (Fst_m32fp, store::<M32, false, false>),
            (Fst_m64fp, store::<M64, false, false>),
            (Fstp_m32fp, store::<M32, true, false>),
            (Fstp_m64fp, store::<M64, true, false>),
            (Fstp_m80fp, store::<M80, true, false>),
            (Fist_m16int, store::<I16, false, false>),
            (Fist_m32int, store::<I32, false, false>),
            (Fistp_m16int, store::<I16, true, false>),
            (Fistp_m32int, store::<I32, true, false>),
            (Fistp_m64int, store::<I64, true, false>),
            (Fisttp_m16int, store::<I16, true, true>),
            (Fisttp_m32int, store::<I32, true, true>),
            (Fisttp_m64int, store::<I64, true, true>),
            (Fst_sti, fst_sti::<false, true>),
            (Fstp_sti, fst_sti::<true, true>),
            (Fstp_sti_DFD0, fst_sti::<true, true>),
            (Fstp_sti_DFD8, fst_sti::<true, true>),
            (Fstpnce_sti, fst_sti::<true, false>),
            (Fxch_st0_sti, fxch),
            (Fxch_st0_sti_DDC8, fxch),
            (Fxch_st0_sti_DFC8, fxch),
        ],
    );
}
