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
use crate::cpu::flags::{mask, parity, sign_bit, Flags, LazyOp, ARITH, CF, OF, SF};
use crate::cpu::state::SegReg;
use crate::exception::{Exception, ExecResult};
use iced_x86::{Code, CodeSize, Instruction, Mnemonic, OpKind, Register};

const ADD: u8 = 0;
const SUB: u8 = 1;
const AND: u8 = 2;
const OR: u8 = 3;
const XOR: u8 = 4;
const CMP: u8 = 5;
const TEST: u8 = 6;

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
#[inline(always)]
fn alu_rr<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    let s = d.r1();
    let m = mask(W);
    let (a, b) = (x.cpu.gpr[dst] & m, x.cpu.gpr[s] & m);
    if let Some(r) = alu::<W, OP>(&mut x.cpu.flags, a, b) {
        x.cpu.gpr[dst] = r;
    }
    Ok(())
}

/// ALU reg, imm (the immediate is sign-extended from 8 or 32 bits).
#[inline(always)]
fn alu_ri<const W: u8, const OP: u8, const IMM8: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = d.r0();
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
#[inline(always)]
fn alu_rm<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    let b = x.load_mem(&d.mem, W as usize)?;
    let a = x.cpu.gpr[dst] & mask(W);
    if let Some(r) = alu::<W, OP>(&mut x.cpu.flags, a, b) {
        x.cpu.gpr[dst] = r;
    }
    Ok(())
}

/// Where the second operand of a memory-destination ALU form comes from.
const SRC_REG: u8 = 0;
const SRC_IMM8: u8 = 1;
const SRC_IMM: u8 = 2;

/// ADD/SUB/AND/OR/XOR [mem], reg or imm (not LOCKed): a read-modify-write
/// that checks write access before reading, as the family handlers do.
#[inline(always)]
fn alu_mr<const W: u8, const OP: u8, const SRC: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let m = mask(W);
    let b = match SRC {
        SRC_REG => x.cpu.gpr[d.r1()],
        SRC_IMM8 => d.ins.immediate8to64() as u64,
        _ => match W {
            1 => u64::from(d.ins.immediate8()),
            2 => u64::from(d.ins.immediate16()),
            _ => d.ins.immediate32to64() as u64,
        },
    } & m;
    let ea = x.ea_of(&d.mem);
    let old = x.rmw_seg(d.mem.seg, ea, W as usize, false, &mut |a| {
        alu::<W, OP>(&mut Flags::default(), a & m, b)
    })?;
    alu::<W, OP>(&mut x.cpu.flags, old & m, b);
    Ok(())
}

/// INC/DEC [mem] (not LOCKed; CF unchanged).
#[inline(always)]
fn incdec_m<const W: u8, const INC: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let m = mask(W);
    let step = |a: u64| {
        if INC {
            a.wrapping_add(1) & m
        } else {
            a.wrapping_sub(1) & m
        }
    };
    let ea = x.ea_of(&d.mem);
    let old = x.rmw_seg(d.mem.seg, ea, W as usize, false, &mut |a| Some(step(a & m)))? & m;
    x.cpu.flags.lazy_incdec(W, old, step(old), INC);
    Ok(())
}

/// CMP/TEST [mem], imm (nothing is written back).
#[inline(always)]
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
#[inline(always)]
fn cmp_mr<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let s = d.r1();
    let a = x.load_mem(&d.mem, W as usize)?;
    let b = x.cpu.gpr[s] & mask(W);
    alu::<W, OP>(&mut x.cpu.flags, a, b);
    Ok(())
}

/// INC/DEC reg (CF unchanged).
#[inline(always)]
fn incdec<const W: u8, const INC: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
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
#[inline(always)]
fn mov_rr<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    let s = d.r1();
    x.cpu.gpr[dst] = x.cpu.gpr[s] & mask(W);
    Ok(())
}

/// MOV reg, imm (imm64, imm32 zero-extended, or imm32 sign-extended to 64).
#[inline(always)]
fn mov_ri<const W: u8, const SEXT: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = d.r0();
    x.cpu.gpr[dst] = match (W, SEXT) {
        (8, true) => ins.immediate32to64() as u64,
        (8, false) => ins.immediate64(),
        _ => u64::from(ins.immediate32()),
    };
    Ok(())
}

/// MOV reg, [mem] (32-bit loads zero-extend).
#[inline(always)]
fn mov_load<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    let v = x.load_mem(&d.mem, W as usize)?;
    x.cpu.gpr[dst] = v;
    Ok(())
}

/// MOV [mem], reg.
#[inline(always)]
fn mov_store<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let s = d.r1();
    let v = x.cpu.gpr[s] & mask(W);
    x.store_mem(&d.mem, W as usize, v)
}

/// MOV [mem], imm.
#[inline(always)]
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

/// MOVZX/MOVSX/MOVSXD into a 32- or 64-bit register from an `S`-byte
/// register (not AH..BH) or memory operand (32-bit results zero-extend).
#[inline(always)]
fn extend<const W: u8, const S: u8, const SIGNED: bool, const MEM: bool>(
    x: &mut Exec,
    d: &Decoded,
) -> ExecResult {
    let v = if MEM {
        x.load_mem(&d.mem, S as usize)?
    } else {
        x.cpu.gpr[d.r1()] & mask(S)
    };
    let v = if SIGNED {
        crate::ops::mov::sext(v, S) & mask(W)
    } else {
        v
    };
    x.cpu.gpr[d.r0()] = v;
    Ok(())
}

/// CMOVcc r32/r64, r/m: the source is read whatever the condition (a
/// memory source may fault), and a 32-bit destination is zero-extended
/// even when nothing moves.
#[inline(always)]
fn cmov<const W: u8, const MEM: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let v = if MEM {
        x.load_mem(&d.mem, W as usize)?
    } else {
        x.cpu.gpr[d.r1()]
    };
    let dst = d.r0();
    let new = if x.cpu.flags.cond(d.cc) {
        v
    } else {
        x.cpu.gpr[dst]
    };
    x.cpu.gpr[dst] = new & mask(W);
    Ok(())
}

/// SETcc r8 (not AH..BH) or byte [mem].
#[inline(always)]
fn setcc<const MEM: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let v = u64::from(x.cpu.flags.cond(d.cc));
    if MEM {
        return x.store_mem(&d.mem, 1, v);
    }
    let g = &mut x.cpu.gpr[d.r0()];
    *g = (*g & !0xff) | v;
    Ok(())
}

/// Jcc rel outside 64-bit code (the target is checked against the CS
/// limit when taken).
#[inline(always)]
fn jcc_checked(x: &mut Exec, d: &Decoded) -> ExecResult {
    if x.cpu.flags.cond(d.cc) {
        x.jump(d.target)?;
    }
    Ok(())
}

/// JMP rel outside 64-bit code.
#[inline(always)]
fn jmp_checked(x: &mut Exec, d: &Decoded) -> ExecResult {
    x.jump(d.target)
}

/// LEA reg, m (the address truncated to the operand size).
#[inline(always)]
fn lea<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    x.cpu.gpr[dst] = x.ea_of(&d.mem) & mask(W);
    Ok(())
}

/// SHL/SHR/SAR reg, imm8 with a non-zero masked count (checked at
/// selection), flags recorded lazily as `ops::shift` computes them.
#[inline(always)]
fn shift_ri<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = d.r0();
    let bits = u32::from(W) * 8;
    let m = mask(W);
    let c = u32::from(ins.immediate8()) & (bits - 1);
    let v = x.cpu.gpr[dst] & m;
    let (r, op) = match OP {
        0 => ((v << c) & m, LazyOp::Shl),
        1 => (v >> c, LazyOp::Shr),
        _ => {
            let s = ((v << (64 - bits)) as i64) >> (64 - bits);
            ((s >> c) as u64 & m, LazyOp::Sar)
        }
    };
    x.cpu.flags.lazy_shift(op, W, v, c, r);
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
#[inline(always)]
fn imul64<const IMM: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let ins = &d.ins;
    let dst = d.r0();
    let (a, b) = match IMM {
        0 => (x.cpu.gpr[dst], x.cpu.gpr[d.r1()]),
        8 => (x.cpu.gpr[d.r1()], ins.immediate8to64() as u64),
        _ => (x.cpu.gpr[d.r1()], ins.immediate32to64() as u64),
    };
    let p = i128::from(a as i64) * i128::from(b as i64);
    let lo = p as u64;
    let ovf = p != i128::from(lo as i64);
    x.cpu.gpr[dst] = lo;
    x.cpu.flags.set_arith(ARITH, mul_flags(8, lo, ovf));
    Ok(())
}

/// MUL r64: RDX:RAX = RAX * r64.
#[inline(always)]
fn mul64(x: &mut Exec, d: &Decoded) -> ExecResult {
    let s = d.r0();
    let p = u128::from(x.cpu.gpr[0]) * u128::from(x.cpu.gpr[s]);
    let (lo, hi) = (p as u64, (p >> 64) as u64);
    x.cpu.gpr[0] = lo;
    x.cpu.gpr[2] = hi;
    x.cpu.flags.set_arith(ARITH, mul_flags(8, lo, hi != 0));
    Ok(())
}

/// Jcc rel (64-bit code, canonical target).
#[inline(always)]
fn jcc<const CC: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    if x.cpu.flags.cond(CC) {
        x.next_rip = d.target;
    }
    Ok(())
}

/// JMP rel (64-bit code, canonical target).
#[inline(always)]
fn jmp_rel(x: &mut Exec, d: &Decoded) -> ExecResult {
    x.next_rip = d.target;
    Ok(())
}

/// CALL rel32 (64-bit code, canonical target).
#[inline(always)]
fn call_rel(x: &mut Exec, d: &Decoded) -> ExecResult {
    // Not `x.next_rip`: a block that follows the call holds the target
    // there (see `follows`).
    let ret = d.ins.next_ip();
    push_q(x, ret)?;
    x.next_rip = d.target;
    Ok(())
}

/// RET (64-bit code, no immediate).
#[inline(always)]
fn ret64(x: &mut Exec, _d: &Decoded) -> ExecResult {
    let t = x.load_flat64(SegReg::Ss, x.cpu.gpr[4], 8)?;
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
    x.store_flat64(SegReg::Ss, sp, 8, v)?;
    x.cpu.gpr[4] = sp;
    Ok(())
}

/// PUSH r64.
#[inline(always)]
fn push64(x: &mut Exec, d: &Decoded) -> ExecResult {
    let v = x.cpu.gpr[d.r0()];
    push_q(x, v)
}

/// POP r64 (not RSP).
#[inline(always)]
fn pop64(x: &mut Exec, d: &Decoded) -> ExecResult {
    let v = x.load_flat64(SegReg::Ss, x.cpu.gpr[4], 8)?;
    x.cpu.gpr[4] = x.cpu.gpr[4].wrapping_add(8);
    x.cpu.gpr[d.r0()] = v;
    Ok(())
}

/// Declares the fast forms: [`FastOp`] names each one, and [`run`] matches
/// on it so that the block loop runs the handler inline rather than
/// through a function pointer (no call, no spilled registers, no result
/// through memory). [`FastOp::handler`] gives the same handler as a
/// pointer for [`super::step`].
macro_rules! fast_ops {
    ($($name:ident => $h:expr,)*) => {
        /// A fast form (see the macro above), or none.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum FastOp {
            /// No fast form: the family handler of the `Code`.
            Family,
            $($name,)*
        }

        impl FastOp {
            /// A form that neither reads nor changes the next RIP: the
            /// block loop runs it without setting up or checking a branch.
            pub fn is_plain(self) -> bool {
                !matches!(
                    self,
                    FastOp::Family
                        | FastOp::JccChecked
                        | FastOp::JmpChecked
                        | FastOp::JmpRel
                        | FastOp::CallRel
                        | FastOp::Ret64
                        | FastOp::Jcc0
                        | FastOp::Jcc1
                        | FastOp::Jcc2
                        | FastOp::Jcc3
                        | FastOp::Jcc4
                        | FastOp::Jcc5
                        | FastOp::Jcc6
                        | FastOp::Jcc7
                        | FastOp::Jcc8
                        | FastOp::Jcc9
                        | FastOp::Jcc10
                        | FastOp::Jcc11
                        | FastOp::Jcc12
                        | FastOp::Jcc13
                        | FastOp::Jcc14
                        | FastOp::Jcc15
                )
            }

            /// The handler of this form, `None` for [`FastOp::Family`].
            pub fn handler(self) -> Option<Fast> {
                match self {
                    FastOp::Family => None,
                    $(FastOp::$name => Some($h as Fast),)*
                }
            }
        }

        /// Run one decoded instruction: its fast form inline, else its
        /// handler through [`Decoded::run`].
        #[inline(always)]
        pub fn run(x: &mut Exec, d: &Decoded) -> ExecResult {
            match d.op {
                FastOp::Family => {
                    // Family handlers may read RIP, which the block loop
                    // otherwise writes back only when the block stops.
                    x.cpu.rip = d.rip;
                    (d.run)(x, d)
                }
                $(FastOp::$name => $h(x, d),)*
            }
        }
    };
}

fast_ops! {
    AddRr64 => alu_rr::<8, ADD>,
    AddRr32 => alu_rr::<4, ADD>,
    AddRi64b => alu_ri::<8, ADD, true>,
    AddRi64d => alu_ri::<8, ADD, false>,
    AddRi32b => alu_ri::<4, ADD, true>,
    AddRi32d => alu_ri::<4, ADD, false>,
    AddRm64 => alu_rm::<8, ADD>,
    AddRm32 => alu_rm::<4, ADD>,
    SubRr64 => alu_rr::<8, SUB>,
    SubRr32 => alu_rr::<4, SUB>,
    SubRi64b => alu_ri::<8, SUB, true>,
    SubRi64d => alu_ri::<8, SUB, false>,
    SubRi32b => alu_ri::<4, SUB, true>,
    SubRi32d => alu_ri::<4, SUB, false>,
    SubRm64 => alu_rm::<8, SUB>,
    SubRm32 => alu_rm::<4, SUB>,
    AndRr64 => alu_rr::<8, AND>,
    AndRr32 => alu_rr::<4, AND>,
    AndRi64b => alu_ri::<8, AND, true>,
    AndRi64d => alu_ri::<8, AND, false>,
    AndRi32b => alu_ri::<4, AND, true>,
    AndRi32d => alu_ri::<4, AND, false>,
    AndRm64 => alu_rm::<8, AND>,
    AndRm32 => alu_rm::<4, AND>,
    OrRr64 => alu_rr::<8, OR>,
    OrRr32 => alu_rr::<4, OR>,
    OrRi64b => alu_ri::<8, OR, true>,
    OrRi64d => alu_ri::<8, OR, false>,
    OrRi32b => alu_ri::<4, OR, true>,
    OrRi32d => alu_ri::<4, OR, false>,
    OrRm64 => alu_rm::<8, OR>,
    OrRm32 => alu_rm::<4, OR>,
    XorRr64 => alu_rr::<8, XOR>,
    XorRr32 => alu_rr::<4, XOR>,
    XorRi64b => alu_ri::<8, XOR, true>,
    XorRi64d => alu_ri::<8, XOR, false>,
    XorRi32b => alu_ri::<4, XOR, true>,
    XorRi32d => alu_ri::<4, XOR, false>,
    XorRm64 => alu_rm::<8, XOR>,
    XorRm32 => alu_rm::<4, XOR>,
    CmpRr64 => alu_rr::<8, CMP>,
    CmpRr32 => alu_rr::<4, CMP>,
    CmpRi64b => alu_ri::<8, CMP, true>,
    CmpRi64d => alu_ri::<8, CMP, false>,
    CmpRi32b => alu_ri::<4, CMP, true>,
    CmpRi32d => alu_ri::<4, CMP, false>,
    CmpRm64 => alu_rm::<8, CMP>,
    CmpRm32 => alu_rm::<4, CMP>,
    TestRr64 => alu_rr::<8, TEST>,
    TestRr32 => alu_rr::<4, TEST>,
    TestRi64b => alu_ri::<8, TEST, true>,
    TestRi64d => alu_ri::<8, TEST, false>,
    TestRi32b => alu_ri::<4, TEST, true>,
    TestRi32d => alu_ri::<4, TEST, false>,
    TestRm64 => alu_rm::<8, TEST>,
    TestRm32 => alu_rm::<4, TEST>,
    CmpMi8b => cmp_mi::<1, CMP, true>,
    CmpMi32b => cmp_mi::<4, CMP, true>,
    CmpMi64b => cmp_mi::<8, CMP, true>,
    CmpMi32d => cmp_mi::<4, CMP, false>,
    CmpMi64d => cmp_mi::<8, CMP, false>,
    CmpMr64 => cmp_mr::<8, CMP>,
    CmpMr32 => cmp_mr::<4, CMP>,
    Inc64 => incdec::<8, true>,
    Dec64 => incdec::<8, false>,
    Inc32 => incdec::<4, true>,
    Dec32 => incdec::<4, false>,
    MovRr64 => mov_rr::<8>,
    MovRr32 => mov_rr::<4>,
    MovRi64 => mov_ri::<8, false>,
    MovRi64s => mov_ri::<8, true>,
    MovRi32 => mov_ri::<4, false>,
    MovLoad64 => mov_load::<8>,
    MovLoad32 => mov_load::<4>,
    MovStore64 => mov_store::<8>,
    MovStore32 => mov_store::<4>,
    MovStore8 => mov_store::<1>,
    MovStoreImm64 => mov_store_imm::<8>,
    MovStoreImm32 => mov_store_imm::<4>,
    MovStoreImm16 => mov_store_imm::<2>,
    MovStoreImm8 => mov_store_imm::<1>,
    Movzx32m8 => extend::<4, 1, false, true>,
    Movzx32r8 => extend::<4, 1, false, false>,
    Movzx64m8 => extend::<8, 1, false, true>,
    Movzx64r8 => extend::<8, 1, false, false>,
    Movzx32m16 => extend::<4, 2, false, true>,
    Movzx32r16 => extend::<4, 2, false, false>,
    Movzx64m16 => extend::<8, 2, false, true>,
    Movzx64r16 => extend::<8, 2, false, false>,
    Movsx32m8 => extend::<4, 1, true, true>,
    Movsx32r8 => extend::<4, 1, true, false>,
    Movsx64m8 => extend::<8, 1, true, true>,
    Movsx64r8 => extend::<8, 1, true, false>,
    Movsx32m16 => extend::<4, 2, true, true>,
    Movsx32r16 => extend::<4, 2, true, false>,
    Movsx64m16 => extend::<8, 2, true, true>,
    Movsx64r16 => extend::<8, 2, true, false>,
    Movsxd64m32 => extend::<8, 4, true, true>,
    Movsxd64r32 => extend::<8, 4, true, false>,
    Cmov32r => cmov::<4, false>,
    Cmov32m => cmov::<4, true>,
    Cmov64r => cmov::<8, false>,
    Cmov64m => cmov::<8, true>,
    SetccR => setcc::<false>,
    SetccM => setcc::<true>,
    JccChecked => jcc_checked,
    AddM64r => alu_mr::<8, ADD, SRC_REG>,
    AddM32r => alu_mr::<4, ADD, SRC_REG>,
    AddM8r => alu_mr::<1, ADD, SRC_REG>,
    AddM64i8 => alu_mr::<8, ADD, SRC_IMM8>,
    AddM64i => alu_mr::<8, ADD, SRC_IMM>,
    AddM32i8 => alu_mr::<4, ADD, SRC_IMM8>,
    AddM32i => alu_mr::<4, ADD, SRC_IMM>,
    AddM8i => alu_mr::<1, ADD, SRC_IMM>,
    SubM64r => alu_mr::<8, SUB, SRC_REG>,
    SubM32r => alu_mr::<4, SUB, SRC_REG>,
    SubM8r => alu_mr::<1, SUB, SRC_REG>,
    SubM64i8 => alu_mr::<8, SUB, SRC_IMM8>,
    SubM64i => alu_mr::<8, SUB, SRC_IMM>,
    SubM32i8 => alu_mr::<4, SUB, SRC_IMM8>,
    SubM32i => alu_mr::<4, SUB, SRC_IMM>,
    SubM8i => alu_mr::<1, SUB, SRC_IMM>,
    AndM64r => alu_mr::<8, AND, SRC_REG>,
    AndM32r => alu_mr::<4, AND, SRC_REG>,
    AndM8r => alu_mr::<1, AND, SRC_REG>,
    AndM64i8 => alu_mr::<8, AND, SRC_IMM8>,
    AndM64i => alu_mr::<8, AND, SRC_IMM>,
    AndM32i8 => alu_mr::<4, AND, SRC_IMM8>,
    AndM32i => alu_mr::<4, AND, SRC_IMM>,
    AndM8i => alu_mr::<1, AND, SRC_IMM>,
    OrM64r => alu_mr::<8, OR, SRC_REG>,
    OrM32r => alu_mr::<4, OR, SRC_REG>,
    OrM8r => alu_mr::<1, OR, SRC_REG>,
    OrM64i8 => alu_mr::<8, OR, SRC_IMM8>,
    OrM64i => alu_mr::<8, OR, SRC_IMM>,
    OrM32i8 => alu_mr::<4, OR, SRC_IMM8>,
    OrM32i => alu_mr::<4, OR, SRC_IMM>,
    OrM8i => alu_mr::<1, OR, SRC_IMM>,
    XorM64r => alu_mr::<8, XOR, SRC_REG>,
    XorM32r => alu_mr::<4, XOR, SRC_REG>,
    XorM8r => alu_mr::<1, XOR, SRC_REG>,
    XorM64i8 => alu_mr::<8, XOR, SRC_IMM8>,
    XorM64i => alu_mr::<8, XOR, SRC_IMM>,
    XorM32i8 => alu_mr::<4, XOR, SRC_IMM8>,
    XorM32i => alu_mr::<4, XOR, SRC_IMM>,
    XorM8i => alu_mr::<1, XOR, SRC_IMM>,
    IncM64 => incdec_m::<8, true>,
    DecM64 => incdec_m::<8, false>,
    IncM32 => incdec_m::<4, true>,
    DecM32 => incdec_m::<4, false>,
    IncM8 => incdec_m::<1, true>,
    DecM8 => incdec_m::<1, false>,
    JmpChecked => jmp_checked,
    Lea64 => lea::<8>,
    Lea32 => lea::<4>,
    Shl64 => shift_ri::<8, 0>,
    Shr64 => shift_ri::<8, 1>,
    Sar64 => shift_ri::<8, 2>,
    Shl32 => shift_ri::<4, 0>,
    Shr32 => shift_ri::<4, 1>,
    Sar32 => shift_ri::<4, 2>,
    Imul64 => imul64::<0>,
    Imul64i8 => imul64::<8>,
    Imul64i32 => imul64::<32>,
    Mul64 => mul64,
    Push64 => push64,
    Pop64 => pop64,
    JmpRel => jmp_rel,
    CallRel => call_rel,
    Ret64 => ret64,
    Jcc0 => jcc::<0>,
    Jcc1 => jcc::<1>,
    Jcc2 => jcc::<2>,
    Jcc3 => jcc::<3>,
    Jcc4 => jcc::<4>,
    Jcc5 => jcc::<5>,
    Jcc6 => jcc::<6>,
    Jcc7 => jcc::<7>,
    Jcc8 => jcc::<8>,
    Jcc9 => jcc::<9>,
    Jcc10 => jcc::<10>,
    Jcc11 => jcc::<11>,
    Jcc12 => jcc::<12>,
    Jcc13 => jcc::<13>,
    Jcc14 => jcc::<14>,
    Jcc15 => jcc::<15>,
}

/// The ALU forms by operation (ADD, SUB, AND, OR, XOR, CMP, TEST) and
/// shape ([`Form`] order).
const ALU: [[FastOp; 8]; 7] = [
    [
        FastOp::AddRr64,
        FastOp::AddRr32,
        FastOp::AddRi64b,
        FastOp::AddRi64d,
        FastOp::AddRi32b,
        FastOp::AddRi32d,
        FastOp::AddRm64,
        FastOp::AddRm32,
    ],
    [
        FastOp::SubRr64,
        FastOp::SubRr32,
        FastOp::SubRi64b,
        FastOp::SubRi64d,
        FastOp::SubRi32b,
        FastOp::SubRi32d,
        FastOp::SubRm64,
        FastOp::SubRm32,
    ],
    [
        FastOp::AndRr64,
        FastOp::AndRr32,
        FastOp::AndRi64b,
        FastOp::AndRi64d,
        FastOp::AndRi32b,
        FastOp::AndRi32d,
        FastOp::AndRm64,
        FastOp::AndRm32,
    ],
    [
        FastOp::OrRr64,
        FastOp::OrRr32,
        FastOp::OrRi64b,
        FastOp::OrRi64d,
        FastOp::OrRi32b,
        FastOp::OrRi32d,
        FastOp::OrRm64,
        FastOp::OrRm32,
    ],
    [
        FastOp::XorRr64,
        FastOp::XorRr32,
        FastOp::XorRi64b,
        FastOp::XorRi64d,
        FastOp::XorRi32b,
        FastOp::XorRi32d,
        FastOp::XorRm64,
        FastOp::XorRm32,
    ],
    [
        FastOp::CmpRr64,
        FastOp::CmpRr32,
        FastOp::CmpRi64b,
        FastOp::CmpRi64d,
        FastOp::CmpRi32b,
        FastOp::CmpRi32d,
        FastOp::CmpRm64,
        FastOp::CmpRm32,
    ],
    [
        FastOp::TestRr64,
        FastOp::TestRr32,
        FastOp::TestRi64b,
        FastOp::TestRi64d,
        FastOp::TestRi32b,
        FastOp::TestRi32d,
        FastOp::TestRm64,
        FastOp::TestRm32,
    ],
];

/// Whether `ins` is a direct JMP or CALL with a fast handler, whose
/// target the decoded-block cache may continue decoding at: those
/// handlers take nothing from `Decoded::next`, which then holds the target.
pub fn follows(ins: &Instruction) -> bool {
    matches!(select(ins), Some(FastOp::JmpRel | FastOp::CallRel))
}

/// The fast form of `ins`, if it has one.
pub fn select(ins: &Instruction) -> Option<FastOp> {
    use Code::*;
    use FastOp::*;
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
    let shapes = [
        (Form::Rm64R64, rr),
        (Form::Rm32R32, rr),
        (Form::Rm64Imm8, r0),
        (Form::Rm64Imm32, r0),
        (Form::Rm32Imm8, r0),
        (Form::Rm32Imm32, r0),
        (Form::R64Rm64, mem(1)),
        (Form::R32Rm32, mem(1)),
    ];
    let alu_op = match ins.mnemonic() {
        Mnemonic::Add => Some(ADD),
        Mnemonic::Sub => Some(SUB),
        Mnemonic::And => Some(AND),
        Mnemonic::Or => Some(OR),
        Mnemonic::Xor => Some(XOR),
        Mnemonic::Cmp => Some(CMP),
        Mnemonic::Test => Some(TEST),
        _ => None,
    };
    if let Some(op) = alu_op {
        for (k, &(form, ok)) in shapes.iter().enumerate() {
            if ok && is_form(ins.code(), op, form) {
                return Some(ALU[usize::from(op)][k]);
            }
        }
    }
    Some(match ins.code() {
        Add_rm64_r64 if mem(0) => AddM64r,
        Add_rm32_r32 if mem(0) => AddM32r,
        Add_rm8_r8 if mem(0) && low8(ins.op1_register()) => AddM8r,
        Add_rm64_imm8 if mem(0) => AddM64i8,
        Add_rm64_imm32 if mem(0) => AddM64i,
        Add_rm32_imm8 if mem(0) => AddM32i8,
        Add_rm32_imm32 if mem(0) => AddM32i,
        Add_rm8_imm8 if mem(0) => AddM8i,
        Sub_rm64_r64 if mem(0) => SubM64r,
        Sub_rm32_r32 if mem(0) => SubM32r,
        Sub_rm8_r8 if mem(0) && low8(ins.op1_register()) => SubM8r,
        Sub_rm64_imm8 if mem(0) => SubM64i8,
        Sub_rm64_imm32 if mem(0) => SubM64i,
        Sub_rm32_imm8 if mem(0) => SubM32i8,
        Sub_rm32_imm32 if mem(0) => SubM32i,
        Sub_rm8_imm8 if mem(0) => SubM8i,
        And_rm64_r64 if mem(0) => AndM64r,
        And_rm32_r32 if mem(0) => AndM32r,
        And_rm8_r8 if mem(0) && low8(ins.op1_register()) => AndM8r,
        And_rm64_imm8 if mem(0) => AndM64i8,
        And_rm64_imm32 if mem(0) => AndM64i,
        And_rm32_imm8 if mem(0) => AndM32i8,
        And_rm32_imm32 if mem(0) => AndM32i,
        And_rm8_imm8 if mem(0) => AndM8i,
        Or_rm64_r64 if mem(0) => OrM64r,
        Or_rm32_r32 if mem(0) => OrM32r,
        Or_rm8_r8 if mem(0) && low8(ins.op1_register()) => OrM8r,
        Or_rm64_imm8 if mem(0) => OrM64i8,
        Or_rm64_imm32 if mem(0) => OrM64i,
        Or_rm32_imm8 if mem(0) => OrM32i8,
        Or_rm32_imm32 if mem(0) => OrM32i,
        Or_rm8_imm8 if mem(0) => OrM8i,
        Xor_rm64_r64 if mem(0) => XorM64r,
        Xor_rm32_r32 if mem(0) => XorM32r,
        Xor_rm8_r8 if mem(0) && low8(ins.op1_register()) => XorM8r,
        Xor_rm64_imm8 if mem(0) => XorM64i8,
        Xor_rm64_imm32 if mem(0) => XorM64i,
        Xor_rm32_imm8 if mem(0) => XorM32i8,
        Xor_rm32_imm32 if mem(0) => XorM32i,
        Xor_rm8_imm8 if mem(0) => XorM8i,
        Inc_rm64 if mem(0) => IncM64,
        Dec_rm64 if mem(0) => DecM64,
        Inc_rm32 if mem(0) => IncM32,
        Dec_rm32 if mem(0) => DecM32,
        Inc_rm8 if mem(0) => IncM8,
        Dec_rm8 if mem(0) => DecM8,
        Cmp_rm8_imm8 if mem(0) => CmpMi8b,
        Cmp_rm32_imm8 if mem(0) => CmpMi32b,
        Cmp_rm64_imm8 if mem(0) => CmpMi64b,
        Cmp_rm32_imm32 if mem(0) => CmpMi32d,
        Cmp_rm64_imm32 if mem(0) => CmpMi64d,
        Cmp_rm64_r64 if mem(0) => CmpMr64,
        Cmp_rm32_r32 if mem(0) => CmpMr32,
        Inc_rm64 if r0 => Inc64,
        Dec_rm64 if r0 => Dec64,
        Inc_rm32 if r0 => Inc32,
        Dec_rm32 if r0 => Dec32,
        Mov_rm64_r64 | Mov_r64_rm64 if rr => MovRr64,
        Mov_rm32_r32 | Mov_r32_rm32 if rr => MovRr32,
        Mov_r64_imm64 => MovRi64,
        Mov_rm64_imm32 if r0 => MovRi64s,
        Mov_r32_imm32 => MovRi32,
        Mov_rm32_imm32 if r0 => MovRi32,
        Mov_r64_rm64 if mem(1) => MovLoad64,
        Mov_r32_rm32 if mem(1) => MovLoad32,
        Mov_rm64_r64 if mem(0) => MovStore64,
        Mov_rm32_r32 if mem(0) => MovStore32,
        Mov_rm8_r8 if mem(0) && low8(ins.op1_register()) => MovStore8,
        Mov_rm64_imm32 if mem(0) => MovStoreImm64,
        Mov_rm32_imm32 if mem(0) => MovStoreImm32,
        Mov_rm16_imm16 if mem(0) => MovStoreImm16,
        Mov_rm8_imm8 if mem(0) => MovStoreImm8,
        Movzx_r32_rm8 if mem(1) => Movzx32m8,
        Movzx_r64_rm8 if mem(1) => Movzx64m8,
        Movzx_r32_rm16 if mem(1) => Movzx32m16,
        Movzx_r64_rm16 if mem(1) => Movzx64m16,
        Movsx_r32_rm8 if mem(1) => Movsx32m8,
        Movsx_r64_rm8 if mem(1) => Movsx64m8,
        Movsx_r32_rm16 if mem(1) => Movsx32m16,
        Movsx_r64_rm16 if mem(1) => Movsx64m16,
        Movsxd_r64_rm32 if mem(1) => Movsxd64m32,
        Movzx_r32_rm8 if rr && low8(ins.op1_register()) => Movzx32r8,
        Movzx_r64_rm8 if rr && low8(ins.op1_register()) => Movzx64r8,
        Movsx_r32_rm8 if rr && low8(ins.op1_register()) => Movsx32r8,
        Movsx_r64_rm8 if rr && low8(ins.op1_register()) => Movsx64r8,
        Movzx_r32_rm16 if rr => Movzx32r16,
        Movzx_r64_rm16 if rr => Movzx64r16,
        Movsx_r32_rm16 if rr => Movsx32r16,
        Movsx_r64_rm16 if rr => Movsx64r16,
        Movsxd_r64_rm32 if rr => Movsxd64r32,
        _ if is_cmov(ins.mnemonic()) && ins.op0_register().size() >= 4 => {
            match (ins.op0_register().size(), rr) {
                (4, true) => Cmov32r,
                (4, false) => Cmov32m,
                (_, true) => Cmov64r,
                (_, false) => Cmov64m,
            }
        }
        _ if is_setcc(ins.mnemonic()) && mem(0) => SetccM,
        _ if is_setcc(ins.mnemonic()) && r0 && low8(ins.op0_register()) => SetccR,
        Lea_r64_m => Lea64,
        Lea_r32_m => Lea32,
        Shl_rm64_imm8 if r0 && ins.immediate8() & 63 != 0 => Shl64,
        Shr_rm64_imm8 if r0 && ins.immediate8() & 63 != 0 => Shr64,
        Sar_rm64_imm8 if r0 && ins.immediate8() & 63 != 0 => Sar64,
        Shl_rm32_imm8 if r0 && ins.immediate8() & 31 != 0 => Shl32,
        Shr_rm32_imm8 if r0 && ins.immediate8() & 31 != 0 => Shr32,
        Sar_rm32_imm8 if r0 && ins.immediate8() & 31 != 0 => Sar32,
        Imul_r64_rm64 if rr => Imul64,
        Imul_r64_rm64_imm8 if reg(1) => Imul64i8,
        Imul_r64_rm64_imm32 if reg(1) => Imul64i32,
        Mul_rm64 if r0 => Mul64,
        Push_r64 => Push64,
        Pop_r64 if ins.op0_register() != Register::RSP => Pop64,
        Jmp_rel8_64 | Jmp_rel32_64 if branch_ok => JmpRel,
        Call_rel32_64 if branch_ok => CallRel,
        Retnq if long => Ret64,
        Jmp_rel8_16 | Jmp_rel16 | Jmp_rel8_32 | Jmp_rel32_32 if !long => JmpChecked,
        c if c.is_jcc_short_or_near() && !long => JccChecked,
        c if c.is_jcc_short_or_near() && branch_ok => {
            const JCC: [FastOp; 16] = [
                Jcc0, Jcc1, Jcc2, Jcc3, Jcc4, Jcc5, Jcc6, Jcc7, Jcc8, Jcc9, Jcc10, Jcc11, Jcc12,
                Jcc13, Jcc14, Jcc15,
            ];
            *JCC.get(usize::from(super::super::ops::control::cc(ins)))?
        }
        _ => return None,
    })
}

/// Whether `m` is a CMOVcc.
fn is_cmov(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Cmovo
            | Cmovno
            | Cmovb
            | Cmovae
            | Cmove
            | Cmovne
            | Cmovbe
            | Cmova
            | Cmovs
            | Cmovns
            | Cmovp
            | Cmovnp
            | Cmovl
            | Cmovge
            | Cmovle
            | Cmovg
    )
}

/// Whether `m` is a SETcc.
fn is_setcc(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Seto | Setno
            | Setb
            | Setae
            | Sete
            | Setne
            | Setbe
            | Seta
            | Sets
            | Setns
            | Setp
            | Setnp
            | Setl
            | Setge
            | Setle
            | Setg
    )
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
    use crate::cpu::flags::{Flags, LazyOp, CF, OF, PF, SF, ZF};

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
                    let c = (b as u32 % (u32::from(size) * 8 - 1)) + 1;
                    f.lazy_shift(LazyOp::Shl, size, a, c, (a << c) & m);
                    fs.push(f);
                    f.lazy_shift(LazyOp::Shr, size, a, c, a >> c);
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
