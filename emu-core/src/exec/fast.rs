//! Specialised handlers for the hottest instruction forms, chosen once at
//! decode time (see `cache.rs`; [`super::step`] uses them too, so the
//! differential tests against the host CPU cover them).
//!
//! Each one does exactly what the family handler of its `Code` does, for
//! one operand shape — registers only, register and immediate, or one
//! memory operand — with the width, the operation and the condition fixed
//! at compile time instead of dispatched on at run time. Forms with a LOCK
//! prefix, 8-bit high registers, or (for branches) anything but 64-bit
//! code with a canonical target keep their family handlers.

use super::decoded::{Decoded, Fast};
use super::mem::is_canonical;
use super::Exec;
use crate::cpu::flags::{mask, parity, sign_bit, Flags, ARITH, CF, OF, SF};
use crate::cpu::state::SegReg;
use crate::exception::{Exception, ExecResult};
use iced_x86::{Code, CodeSize, Instruction, OpKind, Register};

const ADD: u8 = 0;
const SUB: u8 = 1;
const AND: u8 = 2;
const OR: u8 = 3;
const XOR: u8 = 4;
const CMP: u8 = 5;
const TEST: u8 = 6;

/// GPR index of a 64-bit (`W` = 8) or 32-bit (`W` = 4) register.
#[inline(always)]
fn gpr<const W: u8>(r: Register) -> usize {
    if W == 8 {
        (r as usize).wrapping_sub(Register::RAX as usize) & 15
    } else {
        (r as usize).wrapping_sub(Register::EAX as usize) & 15
    }
}

/// GPR index of an 8-bit register other than AH/CH/DH/BH.
#[inline(always)]
fn gpr8(r: Register) -> usize {
    let i = r as usize - Register::AL as usize;
    // AL CL DL BL AH CH DH BH SPL BPL SIL DIL R8L..R15L
    if i >= 8 {
        i - 4
    } else {
        i
    }
}

/// The operation `OP` on `W`-byte operands, recording its flags. `None`
/// for CMP and TEST, which write nothing back.
#[inline(always)]
fn alu<const W: u8, const OP: u8>(f: &mut Flags, a: u64, b: u64) -> Option<u64> {
    let m = mask(W);
    match OP {
        ADD => {
            let r = a.wrapping_add(b) & m;
            f.lazy_add(W, a, b, false, r);
            Some(r)
        }
        SUB | CMP => {
            let r = a.wrapping_sub(b) & m;
            f.lazy_sub(W, a, b, false, r);
            (OP == SUB).then_some(r)
        }
        _ => {
            let r = match OP {
                AND | TEST => a & b,
                OR => a | b,
                _ => a ^ b,
            };
            f.lazy_logic(W, r);
            (OP != TEST).then_some(r)
        }
    }
}

/// ALU reg, reg.
fn alu_rr<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<W>(ins.op0_register());
    let s = gpr::<W>(ins.op1_register());
    let m = mask(W);
    let (a, b) = (x.cpu.gpr[dst] & m, x.cpu.gpr[s] & m);
    if let Some(r) = alu::<W, OP>(&mut x.cpu.flags, a, b) {
        x.cpu.gpr[dst] = r;
    }
    Ok(())
}

/// ALU reg, imm (the immediate is sign-extended from 8 or 32 bits).
fn alu_ri<const W: u8, const OP: u8, const IMM8: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<W>(ins.op0_register());
    let m = mask(W);
    let b = if IMM8 {
        ins.immediate8to64() as u64
    } else {
        ins.immediate32to64() as u64
    } & m;
    let a = x.cpu.gpr[dst] & m;
    if let Some(r) = alu::<W, OP>(&mut x.cpu.flags, a, b) {
        x.cpu.gpr[dst] = r;
    }
    Ok(())
}

/// ALU reg, [mem].
fn alu_rm<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<W>(ins.op0_register());
    let b = x.load_mem(&d.mem, W as usize)?;
    let a = x.cpu.gpr[dst] & mask(W);
    if let Some(r) = alu::<W, OP>(&mut x.cpu.flags, a, b) {
        x.cpu.gpr[dst] = r;
    }
    Ok(())
}

/// CMP/TEST [mem], imm (nothing is written back).
fn cmp_mi<const W: u8, const OP: u8, const IMM8: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let m = mask(W);
    let b = if IMM8 {
        ins.immediate8to64() as u64
    } else {
        ins.immediate32to64() as u64
    } & m;
    let a = x.load_mem(&d.mem, W as usize)?;
    alu::<W, OP>(&mut x.cpu.flags, a, b);
    Ok(())
}

/// CMP/TEST [mem], reg.
fn cmp_mr<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let s = gpr::<W>(ins.op1_register());
    let a = x.load_mem(&d.mem, W as usize)?;
    let b = x.cpu.gpr[s] & mask(W);
    alu::<W, OP>(&mut x.cpu.flags, a, b);
    Ok(())
}

/// INC/DEC reg (CF unchanged).
fn incdec<const W: u8, const INC: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<W>(ins.op0_register());
    let m = mask(W);
    let a = x.cpu.gpr[dst] & m;
    let r = if INC {
        a.wrapping_add(1)
    } else {
        a.wrapping_sub(1)
    } & m;
    x.cpu.flags.lazy_incdec(W, a, r, INC);
    x.cpu.gpr[dst] = r;
    Ok(())
}

/// MOV reg, reg.
fn mov_rr<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<W>(ins.op0_register());
    let s = gpr::<W>(ins.op1_register());
    x.cpu.gpr[dst] = x.cpu.gpr[s] & mask(W);
    Ok(())
}

/// MOV reg, imm (imm64, imm32 zero-extended, or imm32 sign-extended to 64).
fn mov_ri<const W: u8, const SEXT: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<W>(ins.op0_register());
    x.cpu.gpr[dst] = match (W, SEXT) {
        (8, true) => ins.immediate32to64() as u64,
        (8, false) => ins.immediate64(),
        _ => u64::from(ins.immediate32()),
    };
    Ok(())
}

/// MOV reg, [mem] (32-bit loads zero-extend).
fn mov_load<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<W>(ins.op0_register());
    let v = x.load_mem(&d.mem, W as usize)?;
    x.cpu.gpr[dst] = v;
    Ok(())
}

/// MOV [mem], reg.
fn mov_store<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let s = if W == 1 {
        gpr8(ins.op1_register())
    } else {
        gpr::<W>(ins.op1_register())
    };
    let v = x.cpu.gpr[s] & mask(W);
    x.store_mem(&d.mem, W as usize, v)
}

/// MOV [mem], imm.
fn mov_store_imm<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let v = match W {
        1 => u64::from(ins.immediate8()),
        2 => u64::from(ins.immediate16()),
        4 => u64::from(ins.immediate32()),
        _ => ins.immediate32to64() as u64,
    };
    x.store_mem(&d.mem, W as usize, v)
}

/// MOVZX r32, byte [mem].
fn movzx_load8(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<4>(ins.op0_register());
    let v = x.load_mem(&d.mem, 1)?;
    x.cpu.gpr[dst] = v;
    Ok(())
}

/// LEA reg, m (the address truncated to the operand size).
fn lea<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<W>(ins.op0_register());
    x.cpu.gpr[dst] = x.ea_of(&d.mem) & mask(W);
    Ok(())
}

/// SHL/SHR/SAR reg, imm8 with a non-zero masked count (checked at
/// selection), flags as `ops::shift` computes them (AF = 0).
fn shift_ri<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<W>(ins.op0_register());
    let bits = u32::from(W) * 8;
    let m = mask(W);
    let c = u32::from(ins.immediate8()) & (bits - 1);
    let v = x.cpu.gpr[dst] & m;
    let msb = (v >> (bits - 1)) & 1;
    let (r, cf, of) = match OP {
        // SHL
        0 => (
            (v << c) & m,
            ((v as u128) << c >> bits) as u64 & 1,
            msb ^ ((v >> (bits - 2)) & 1),
        ),
        // SHR
        1 => (v >> c, (v >> (c - 1)) & 1, msb),
        // SAR
        _ => {
            let s = ((v << (64 - bits)) as i64) >> (64 - bits);
            ((s >> c) as u64 & m, (s >> (c - 1)) as u64 & 1, 0)
        }
    };
    let f = cf | if of != 0 { OF } else { 0 } | crate::cpu::flags::szp(W, r);
    x.cpu.flags.set_arith(ARITH, f);
    x.cpu.gpr[dst] = r;
    Ok(())
}

/// Status flags after MUL/IMUL (as `ops::muldiv`).
#[inline(always)]
fn mul_flags(size: u8, lo: u64, ovf: bool) -> u64 {
    let sf = if lo & sign_bit(size) != 0 { SF } else { 0 };
    let cf_of = if ovf { CF | OF } else { 0 };
    parity(lo) | sf | cf_of
}

/// IMUL r64, r64 (and with an immediate: r64, r64, imm).
fn imul64<const IMM: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = gpr::<8>(ins.op0_register());
    let (a, b) = match IMM {
        0 => (x.cpu.gpr[dst], x.cpu.gpr[gpr::<8>(ins.op1_register())]),
        8 => (
            x.cpu.gpr[gpr::<8>(ins.op1_register())],
            ins.immediate8to64() as u64,
        ),
        _ => (
            x.cpu.gpr[gpr::<8>(ins.op1_register())],
            ins.immediate32to64() as u64,
        ),
    };
    let p = i128::from(a as i64) * i128::from(b as i64);
    let lo = p as u64;
    let ovf = p != i128::from(lo as i64);
    x.cpu.gpr[dst] = lo;
    x.cpu.flags.set_arith(ARITH, mul_flags(8, lo, ovf));
    Ok(())
}

/// MUL r64: RDX:RAX = RAX * r64.
fn mul64(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let s = gpr::<8>(ins.op0_register());
    let p = u128::from(x.cpu.gpr[0]) * u128::from(x.cpu.gpr[s]);
    let (lo, hi) = (p as u64, (p >> 64) as u64);
    x.cpu.gpr[0] = lo;
    x.cpu.gpr[2] = hi;
    x.cpu.flags.set_arith(ARITH, mul_flags(8, lo, hi != 0));
    Ok(())
}

/// Jcc rel (64-bit code, canonical target).
fn jcc<const CC: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    if x.cpu.flags.cond(CC) {
        x.next_rip = d.target;
    }
    Ok(())
}

/// JMP rel (64-bit code, canonical target).
fn jmp_rel(x: &mut Exec, d: &Decoded) -> ExecResult {
    x.next_rip = d.target;
    Ok(())
}

/// CALL rel32 (64-bit code, canonical target).
fn call_rel(x: &mut Exec, d: &Decoded) -> ExecResult {
    // Not `x.next_rip`: a block that follows the call holds the target
    // there (see `follows`).
    let ret = d.ins.next_ip();
    push_q(x, ret)?;
    x.next_rip = d.target;
    Ok(())
}

/// RET (64-bit code, no immediate).
fn ret64(x: &mut Exec, _d: &Decoded) -> ExecResult {
    let t = x.read_seg(SegReg::Ss, x.cpu.gpr[4], 8)?;
    if !is_canonical(t) {
        return Err(Exception::gp(0).into());
    }
    x.next_rip = t;
    x.cpu.gpr[4] = x.cpu.gpr[4].wrapping_add(8);
    Ok(())
}

/// Push a qword in 64-bit code (where the stack is always 8 bytes wide).
#[inline(always)]
fn push_q(x: &mut Exec, v: u64) -> ExecResult {
    let sp = x.cpu.gpr[4].wrapping_sub(8);
    x.write_seg(SegReg::Ss, sp, 8, v)?;
    x.cpu.gpr[4] = sp;
    Ok(())
}

/// PUSH r64.
fn push64(x: &mut Exec, d: &Decoded) -> ExecResult {
    let v = x.cpu.gpr[gpr::<8>(d.ins.op0_register())];
    push_q(x, v)
}

/// POP r64 (not RSP).
fn pop64(x: &mut Exec, d: &Decoded) -> ExecResult {
    let v = x.read_seg(SegReg::Ss, x.cpu.gpr[4], 8)?;
    x.cpu.gpr[4] = x.cpu.gpr[4].wrapping_add(8);
    x.cpu.gpr[gpr::<8>(d.ins.op0_register())] = v;
    Ok(())
}

/// Whether `ins` is a direct JMP or CALL with a fast handler, whose
/// target the decoded-block cache may continue decoding at: those
/// handlers take nothing from `Decoded::next`, which then holds the target.
pub fn follows(ins: &Instruction) -> bool {
    use Code::*;
    matches!(ins.code(), Jmp_rel8_64 | Jmp_rel32_64 | Call_rel32_64) && select(ins).is_some()
}

/// A fast handler for `ins`, if its form has one.
pub fn select(ins: &Instruction) -> Option<Fast> {
    use Code::*;
    if ins.has_lock_prefix() || ins.has_rep_prefix() || ins.has_repne_prefix() {
        return None;
    }
    let reg = |n: u32| ins.op_kind(n) == OpKind::Register;
    let mem = |n: u32| ins.op_kind(n) == OpKind::Memory;
    let rr = ins.op_count() == 2 && reg(0) && reg(1);
    let r0 = ins.op_count() >= 1 && reg(0);
    let low8 = |r: Register| {
        r.size() == 1 && !matches!(r, Register::AH | Register::CH | Register::DH | Register::BH)
    };
    let long = ins.code_size() == CodeSize::Code64;
    let branch_ok = long && is_canonical(ins.near_branch_target());
    macro_rules! alu_forms {
        ($op:expr) => {
            match ins.code() {
                c if rr && is_form(c, $op, Form::Rm64R64) => Some(alu_rr::<8, $op> as Fast),
                c if rr && is_form(c, $op, Form::Rm32R32) => Some(alu_rr::<4, $op> as Fast),
                c if r0 && is_form(c, $op, Form::Rm64Imm8) => Some(alu_ri::<8, $op, true> as Fast),
                c if r0 && is_form(c, $op, Form::Rm64Imm32) => {
                    Some(alu_ri::<8, $op, false> as Fast)
                }
                c if r0 && is_form(c, $op, Form::Rm32Imm8) => Some(alu_ri::<4, $op, true> as Fast),
                c if r0 && is_form(c, $op, Form::Rm32Imm32) => {
                    Some(alu_ri::<4, $op, false> as Fast)
                }
                c if mem(1) && is_form(c, $op, Form::R64Rm64) => Some(alu_rm::<8, $op> as Fast),
                c if mem(1) && is_form(c, $op, Form::R32Rm32) => Some(alu_rm::<4, $op> as Fast),
                _ => None,
            }
        };
    }
    for op in [ADD, SUB, AND, OR, XOR, CMP, TEST] {
        let h = match op {
            ADD => alu_forms!(ADD),
            SUB => alu_forms!(SUB),
            AND => alu_forms!(AND),
            OR => alu_forms!(OR),
            XOR => alu_forms!(XOR),
            CMP => alu_forms!(CMP),
            _ => alu_forms!(TEST),
        };
        if h.is_some() {
            return h;
        }
    }
    Some(match ins.code() {
        Cmp_rm8_imm8 if mem(0) => cmp_mi::<1, CMP, true>,
        Cmp_rm32_imm8 if mem(0) => cmp_mi::<4, CMP, true>,
        Cmp_rm64_imm8 if mem(0) => cmp_mi::<8, CMP, true>,
        Cmp_rm32_imm32 if mem(0) => cmp_mi::<4, CMP, false>,
        Cmp_rm64_imm32 if mem(0) => cmp_mi::<8, CMP, false>,
        Cmp_rm64_r64 if mem(0) => cmp_mr::<8, CMP>,
        Cmp_rm32_r32 if mem(0) => cmp_mr::<4, CMP>,
        Inc_rm64 if r0 => incdec::<8, true>,
        Dec_rm64 if r0 => incdec::<8, false>,
        Inc_rm32 if r0 => incdec::<4, true>,
        Dec_rm32 if r0 => incdec::<4, false>,
        Mov_rm64_r64 | Mov_r64_rm64 if rr => mov_rr::<8>,
        Mov_rm32_r32 | Mov_r32_rm32 if rr => mov_rr::<4>,
        Mov_r64_imm64 => mov_ri::<8, false>,
        Mov_rm64_imm32 if r0 => mov_ri::<8, true>,
        Mov_r32_imm32 => mov_ri::<4, false>,
        Mov_rm32_imm32 if r0 => mov_ri::<4, false>,
        Mov_r64_rm64 if mem(1) => mov_load::<8>,
        Mov_r32_rm32 if mem(1) => mov_load::<4>,
        Mov_rm64_r64 if mem(0) => mov_store::<8>,
        Mov_rm32_r32 if mem(0) => mov_store::<4>,
        Mov_rm8_r8 if mem(0) && low8(ins.op1_register()) => mov_store::<1>,
        Mov_rm64_imm32 if mem(0) => mov_store_imm::<8>,
        Mov_rm32_imm32 if mem(0) => mov_store_imm::<4>,
        Mov_rm16_imm16 if mem(0) => mov_store_imm::<2>,
        Mov_rm8_imm8 if mem(0) => mov_store_imm::<1>,
        Movzx_r32_rm8 if mem(1) => movzx_load8,
        Lea_r64_m => lea::<8>,
        Lea_r32_m => lea::<4>,
        Shl_rm64_imm8 if r0 && ins.immediate8() & 63 != 0 => shift_ri::<8, 0>,
        Shr_rm64_imm8 if r0 && ins.immediate8() & 63 != 0 => shift_ri::<8, 1>,
        Sar_rm64_imm8 if r0 && ins.immediate8() & 63 != 0 => shift_ri::<8, 2>,
        Shl_rm32_imm8 if r0 && ins.immediate8() & 31 != 0 => shift_ri::<4, 0>,
        Shr_rm32_imm8 if r0 && ins.immediate8() & 31 != 0 => shift_ri::<4, 1>,
        Sar_rm32_imm8 if r0 && ins.immediate8() & 31 != 0 => shift_ri::<4, 2>,
        Imul_r64_rm64 if rr => imul64::<0>,
        Imul_r64_rm64_imm8 if reg(1) => imul64::<8>,
        Imul_r64_rm64_imm32 if reg(1) => imul64::<32>,
        Mul_rm64 if r0 => mul64,
        Push_r64 => push64,
        Pop_r64 if ins.op0_register() != Register::RSP => pop64,
        Jmp_rel8_64 | Jmp_rel32_64 if branch_ok => jmp_rel,
        Call_rel32_64 if branch_ok => call_rel,
        Retnq if long => ret64,
        c if c.is_jcc_short_or_near() && branch_ok => match super::super::ops::control::cc(ins) {
            0 => jcc::<0>,
            1 => jcc::<1>,
            2 => jcc::<2>,
            3 => jcc::<3>,
            4 => jcc::<4>,
            5 => jcc::<5>,
            6 => jcc::<6>,
            7 => jcc::<7>,
            8 => jcc::<8>,
            9 => jcc::<9>,
            10 => jcc::<10>,
            11 => jcc::<11>,
            12 => jcc::<12>,
            13 => jcc::<13>,
            14 => jcc::<14>,
            15 => jcc::<15>,
            _ => return None,
        },
        _ => return None,
    })
}

/// Operand shapes of the ALU codes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Rm64R64,
    Rm32R32,
    Rm64Imm8,
    Rm64Imm32,
    Rm32Imm8,
    Rm32Imm32,
    R64Rm64,
    R32Rm32,
}

/// Whether `c` is ALU operation `op` in shape `form` (register-register
/// shapes accept both directions of the encoding).
fn is_form(c: Code, op: u8, form: Form) -> bool {
    use Code::*;
    let codes: &[Code] = match (op, form) {
        (ADD, Form::Rm64R64) => &[Add_rm64_r64, Add_r64_rm64],
        (ADD, Form::Rm32R32) => &[Add_rm32_r32, Add_r32_rm32],
        (ADD, Form::Rm64Imm8) => &[Add_rm64_imm8],
        (ADD, Form::Rm64Imm32) => &[Add_rm64_imm32, Add_RAX_imm32],
        (ADD, Form::Rm32Imm8) => &[Add_rm32_imm8],
        (ADD, Form::Rm32Imm32) => &[Add_rm32_imm32, Add_EAX_imm32],
        (ADD, Form::R64Rm64) => &[Add_r64_rm64],
        (ADD, Form::R32Rm32) => &[Add_r32_rm32],
        (SUB, Form::Rm64R64) => &[Sub_rm64_r64, Sub_r64_rm64],
        (SUB, Form::Rm32R32) => &[Sub_rm32_r32, Sub_r32_rm32],
        (SUB, Form::Rm64Imm8) => &[Sub_rm64_imm8],
        (SUB, Form::Rm64Imm32) => &[Sub_rm64_imm32, Sub_RAX_imm32],
        (SUB, Form::Rm32Imm8) => &[Sub_rm32_imm8],
        (SUB, Form::Rm32Imm32) => &[Sub_rm32_imm32, Sub_EAX_imm32],
        (SUB, Form::R64Rm64) => &[Sub_r64_rm64],
        (SUB, Form::R32Rm32) => &[Sub_r32_rm32],
        (AND, Form::Rm64R64) => &[And_rm64_r64, And_r64_rm64],
        (AND, Form::Rm32R32) => &[And_rm32_r32, And_r32_rm32],
        (AND, Form::Rm64Imm8) => &[And_rm64_imm8],
        (AND, Form::Rm64Imm32) => &[And_rm64_imm32, And_RAX_imm32],
        (AND, Form::Rm32Imm8) => &[And_rm32_imm8],
        (AND, Form::Rm32Imm32) => &[And_rm32_imm32, And_EAX_imm32],
        (AND, Form::R64Rm64) => &[And_r64_rm64],
        (AND, Form::R32Rm32) => &[And_r32_rm32],
        (OR, Form::Rm64R64) => &[Or_rm64_r64, Or_r64_rm64],
        (OR, Form::Rm32R32) => &[Or_rm32_r32, Or_r32_rm32],
        (OR, Form::Rm64Imm8) => &[Or_rm64_imm8],
        (OR, Form::Rm64Imm32) => &[Or_rm64_imm32, Or_RAX_imm32],
        (OR, Form::Rm32Imm8) => &[Or_rm32_imm8],
        (OR, Form::Rm32Imm32) => &[Or_rm32_imm32, Or_EAX_imm32],
        (OR, Form::R64Rm64) => &[Or_r64_rm64],
        (OR, Form::R32Rm32) => &[Or_r32_rm32],
        (XOR, Form::Rm64R64) => &[Xor_rm64_r64, Xor_r64_rm64],
        (XOR, Form::Rm32R32) => &[Xor_rm32_r32, Xor_r32_rm32],
        (XOR, Form::Rm64Imm8) => &[Xor_rm64_imm8],
        (XOR, Form::Rm64Imm32) => &[Xor_rm64_imm32, Xor_RAX_imm32],
        (XOR, Form::Rm32Imm8) => &[Xor_rm32_imm8],
        (XOR, Form::Rm32Imm32) => &[Xor_rm32_imm32, Xor_EAX_imm32],
        (XOR, Form::R64Rm64) => &[Xor_r64_rm64],
        (XOR, Form::R32Rm32) => &[Xor_r32_rm32],
        (CMP, Form::Rm64R64) => &[Cmp_rm64_r64, Cmp_r64_rm64],
        (CMP, Form::Rm32R32) => &[Cmp_rm32_r32, Cmp_r32_rm32],
        (CMP, Form::Rm64Imm8) => &[Cmp_rm64_imm8],
        (CMP, Form::Rm64Imm32) => &[Cmp_rm64_imm32, Cmp_RAX_imm32],
        (CMP, Form::Rm32Imm8) => &[Cmp_rm32_imm8],
        (CMP, Form::Rm32Imm32) => &[Cmp_rm32_imm32, Cmp_EAX_imm32],
        (CMP, Form::R64Rm64) => &[Cmp_r64_rm64],
        (CMP, Form::R32Rm32) => &[Cmp_r32_rm32],
        (TEST, Form::Rm64R64) => &[Test_rm64_r64],
        (TEST, Form::Rm32R32) => &[Test_rm32_r32],
        (TEST, Form::Rm64Imm32) => &[Test_rm64_imm32, Test_RAX_imm32],
        (TEST, Form::Rm32Imm32) => &[Test_rm32_imm32, Test_EAX_imm32],
        _ => &[],
    };
    codes.contains(&c)
}

#[cfg(test)]
mod tests {
    use crate::cpu::flags::{Flags, CF, OF, PF, SF, ZF};

    /// The condition from the full RFLAGS value, as the manuals define it.
    fn reference(f: &Flags, cc: u8) -> bool {
        let v = f.get();
        let t = |b: u64| v & b != 0;
        let r = match cc >> 1 {
            0 => t(OF),
            1 => t(CF),
            2 => t(ZF),
            3 => t(CF) || t(ZF),
            4 => t(SF),
            5 => t(PF),
            6 => t(SF) != t(OF),
            _ => t(ZF) || (t(SF) != t(OF)),
        };
        r ^ (cc & 1 != 0)
    }

    #[test]
    fn fast_conditions_match_the_flags() {
        let vals = [
            0u64,
            1,
            2,
            0x7f,
            0x80,
            0xff,
            0x7fff_ffff,
            0x8000_0000,
            u64::MAX,
            5,
        ];
        for size in [1u8, 2, 4, 8] {
            let m = crate::cpu::flags::mask(size);
            for &a in &vals {
                for &b in &vals {
                    let (a, b) = (a & m, b & m);
                    let mut fs = Vec::new();
                    let mut f = Flags::default();
                    f.lazy_sub(size, a, b, false, a.wrapping_sub(b) & m);
                    fs.push(f);
                    f.lazy_add(size, a, b, false, a.wrapping_add(b) & m);
                    fs.push(f);
                    f.lazy_logic(size, a & b);
                    fs.push(f);
                    f.lazy_incdec(size, a, a.wrapping_sub(1) & m, false);
                    fs.push(f);
                    f.lazy_sub(size, a, b, true, a.wrapping_sub(b).wrapping_sub(1) & m);
                    fs.push(f);
                    for f in &fs {
                        for cc in 0..16 {
                            assert_eq!(
                                f.cond(cc),
                                reference(f, cc),
                                "size {size} a {a:#x} b {b:#x} cc {cc}"
                            );
                        }
                    }
                }
            }
        }
    }
}
