//! Integer add/subtract and logic: ADD, ADC, SUB, SBB, CMP, NEG, INC, DEC,
//! AND, OR, XOR, TEST, NOT.
//!
//! Flags are recorded lazily (see `cpu::flags`). With LOCK the memory
//! update is a host atomic; the closure may run more than once, and the
//! flags of its last run are the ones that stand.

use crate::cpu::flags::{mask, AF};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Instruction, Mnemonic};

#[derive(Clone, Copy)]
enum Alu {
    Add,
    Adc,
    Sub,
    Sbb,
    And,
    Or,
    Xor,
}

macro_rules! rmw_alu {
    ($name:ident, $op:expr) => {
        fn $name(x: &mut Exec, ins: &Instruction) -> ExecResult {
            let size = x.osize(ins);
            let b = x.read_src(ins, 1, size)?;
            let carry = x.cpu.flags.cf();
            let mut flags = x.cpu.flags;
            x.rmw_op0_with_flags(ins, &mut flags, &mut |fl, a| {
                Some(alu_flags(fl, $op, size, a, b, carry))
            })?;
            x.cpu.flags = flags;
            Ok(())
        }
    };
}

/// [`alu`] on a bare flags value (for use inside atomic closures).
#[inline]
fn alu_flags(f: &mut crate::cpu::Flags, op: Alu, size: u8, a: u64, b: u64, carry: bool) -> u64 {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    match op {
        Alu::Add | Alu::Adc => {
            let c = matches!(op, Alu::Adc) && carry;
            let r = a.wrapping_add(b).wrapping_add(c as u64) & m;
            f.lazy_add(size, a, b, c, r);
            r
        }
        Alu::Sub | Alu::Sbb => {
            let c = matches!(op, Alu::Sbb) && carry;
            let r = a.wrapping_sub(b).wrapping_sub(c as u64) & m;
            f.lazy_sub(size, a, b, c, r);
            r
        }
        Alu::And | Alu::Or | Alu::Xor => {
            let r = match op {
                Alu::And => a & b,
                Alu::Or => a | b,
                _ => a ^ b,
            } & m;
            f.lazy_logic(size, r);
            r
        }
    }
}

rmw_alu!(add, Alu::Add);
rmw_alu!(adc, Alu::Adc);
rmw_alu!(sub, Alu::Sub);
rmw_alu!(sbb, Alu::Sbb);
rmw_alu!(and, Alu::And);
rmw_alu!(or, Alu::Or);
rmw_alu!(xor, Alu::Xor);

/// CMP — Compare Two Operands
fn cmp(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let a = x.read_src(ins, 0, size)?;
    let b = x.read_src(ins, 1, size)?;
    alu_flags(&mut x.cpu.flags, Alu::Sub, size, a, b, false);
    Ok(())
}

/// TEST — Logical Compare
fn test(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let a = x.read_src(ins, 0, size)?;
    let b = x.read_src(ins, 1, size)?;
    alu_flags(&mut x.cpu.flags, Alu::And, size, a, b, false);
    Ok(())
}

/// NEG — Two's Complement Negation (CF = operand != 0).
fn neg(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let mut flags = x.cpu.flags;
    x.rmw_op0_with_flags(ins, &mut flags, &mut |f, a| {
        Some(alu_flags(f, Alu::Sub, size, 0, a, false))
    })?;
    x.cpu.flags = flags;
    Ok(())
}

/// NOT — One's Complement Negation (no flags).
fn not(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let m = mask(x.osize(ins));
    x.rmw_op0(ins, &mut |a| Some(!a & m))?;
    Ok(())
}

fn incdec(x: &mut Exec, ins: &Instruction, inc: bool) -> ExecResult {
    let size = x.osize(ins);
    let m = mask(size);
    let mut flags = x.cpu.flags;
    x.rmw_op0_with_flags(ins, &mut flags, &mut |f, a| {
        let r = if inc {
            a.wrapping_add(1)
        } else {
            a.wrapping_sub(1)
        } & m;
        f.lazy_incdec(size, a & m, r, inc);
        Some(r)
    })?;
    x.cpu.flags = flags;
    Ok(())
}

/// INC — Increment by 1 (CF unchanged)
fn inc(x: &mut Exec, ins: &Instruction) -> ExecResult {
    incdec(x, ins, true)
}

/// DEC — Decrement by 1 (CF unchanged)
fn dec(x: &mut Exec, ins: &Instruction) -> ExecResult {
    incdec(x, ins, false)
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.mnemonic(Mnemonic::Add, add, 0);
    t.mnemonic(Mnemonic::Adc, adc, 0);
    t.mnemonic(Mnemonic::Sub, sub, 0);
    t.mnemonic(Mnemonic::Sbb, sbb, 0);
    t.mnemonic(Mnemonic::Cmp, cmp, 0);
    t.mnemonic(Mnemonic::And, and, AF);
    t.mnemonic(Mnemonic::Or, or, AF);
    t.mnemonic(Mnemonic::Xor, xor, AF);
    t.mnemonic(Mnemonic::Test, test, AF);
    t.mnemonic(Mnemonic::Neg, neg, 0);
    t.mnemonic(Mnemonic::Not, not, 0);
    t.mnemonic(Mnemonic::Inc, inc, 0);
    t.mnemonic(Mnemonic::Dec, dec, 0);
}
