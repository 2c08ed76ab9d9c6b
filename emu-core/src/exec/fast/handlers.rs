//! The fast handlers themselves, one generic function per operand shape
//! (see the parent module).

use super::{ADD, AND, CMP, OR, SUB, TEST};
use crate::cpu::flags::{mask, Flags, LazyOp, ARITH};
use crate::cpu::model::Vendor;
use crate::cpu::state::SegReg;
use crate::exception::{Exception, ExecResult};
use crate::exec::decoded::Decoded;
use crate::exec::mem::is_canonical;
use crate::exec::Exec;
use crate::ops::{muldiv, shift};

/// The operation `OP` on `W`-byte operands, recording its flags. `None`
/// for CMP and TEST, which write nothing back.
#[inline(always)]
pub(super) fn alu<const W: u8, const OP: u8>(f: &mut Flags, a: u64, b: u64) -> Option<u64> {
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
pub(super) fn alu_rr<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    let s = d.r1();
    let m = mask(W);
    let (a, b) = (x.cpu.gpr[dst] & m, x.cpu.gpr[s] & m);
    if let Some(r) = alu::<W, OP>(&mut x.cpu.flags, a, b) {
        x.cpu.gpr[dst] = r;
    }
    Ok(())
}

/// The immediate of `ins`, sign-extended from 8 bits (`IMM8`) or 32.
#[inline(always)]
fn simm<const IMM8: bool>(ins: &iced_x86::Instruction) -> u64 {
    if IMM8 {
        ins.immediate8to64() as u64
    } else {
        ins.immediate32to64() as u64
    }
}

/// ALU reg, imm (the immediate is sign-extended from 8 or 32 bits).
#[inline(always)]
pub(super) fn alu_ri<const W: u8, const OP: u8, const IMM8: bool>(
    x: &mut Exec,
    d: &Decoded,
) -> ExecResult {
    let ins = &d.ins;
    let dst = d.r0();
    let m = mask(W);
    let b = simm::<IMM8>(ins) & m;
    let a = x.cpu.gpr[dst] & m;
    if let Some(r) = alu::<W, OP>(&mut x.cpu.flags, a, b) {
        x.cpu.gpr[dst] = r;
    }
    Ok(())
}

/// ALU reg, [mem].
#[inline(always)]
pub(super) fn alu_rm<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    let b = x.load_mem(&d.mem, W as usize)?;
    let a = x.cpu.gpr[dst] & mask(W);
    if let Some(r) = alu::<W, OP>(&mut x.cpu.flags, a, b) {
        x.cpu.gpr[dst] = r;
    }
    Ok(())
}

/// Where the second operand of a memory-destination ALU form comes from.
pub(super) const SRC_REG: u8 = 0;
pub(super) const SRC_IMM8: u8 = 1;
pub(super) const SRC_IMM: u8 = 2;

/// ADD/SUB/AND/OR/XOR [mem], reg or imm (not LOCKed): a read-modify-write
/// that checks write access before reading, as the family handlers do.
#[inline(always)]
pub(super) fn alu_mr<const W: u8, const OP: u8, const SRC: u8>(
    x: &mut Exec,
    d: &Decoded,
) -> ExecResult {
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
pub(super) fn incdec_m<const W: u8, const INC: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
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
pub(super) fn cmp_mi<const W: u8, const OP: u8, const IMM8: bool>(
    x: &mut Exec,
    d: &Decoded,
) -> ExecResult {
    let ins = &d.ins;
    let m = mask(W);
    let b = simm::<IMM8>(ins) & m;
    let a = x.load_mem(&d.mem, W as usize)?;
    alu::<W, OP>(&mut x.cpu.flags, a, b);
    Ok(())
}

/// CMP/TEST [mem], reg.
#[inline(always)]
pub(super) fn cmp_mr<const W: u8, const OP: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let s = d.r1();
    let a = x.load_mem(&d.mem, W as usize)?;
    let b = x.cpu.gpr[s] & mask(W);
    alu::<W, OP>(&mut x.cpu.flags, a, b);
    Ok(())
}

/// INC/DEC reg (CF unchanged).
#[inline(always)]
pub(super) fn incdec<const W: u8, const INC: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
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
pub(super) fn mov_rr<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    let s = d.r1();
    x.cpu.gpr[dst] = x.cpu.gpr[s] & mask(W);
    Ok(())
}

/// MOV reg, imm (imm64, imm32 zero-extended, or imm32 sign-extended to 64).
#[inline(always)]
pub(super) fn mov_ri<const W: u8, const SEXT: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
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
pub(super) fn mov_load<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    let v = x.load_mem(&d.mem, W as usize)?;
    x.cpu.gpr[dst] = v;
    Ok(())
}

/// MOV [mem], reg.
#[inline(always)]
pub(super) fn mov_store<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let s = d.r1();
    let v = x.cpu.gpr[s] & mask(W);
    x.store_mem(&d.mem, W as usize, v)
}

/// MOV [mem], imm.
#[inline(always)]
pub(super) fn mov_store_imm<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
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
pub(super) fn extend<const W: u8, const S: u8, const SIGNED: bool, const MEM: bool>(
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
pub(super) fn cmov<const W: u8, const MEM: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
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
pub(super) fn setcc<const MEM: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
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
pub(super) fn jcc_checked(x: &mut Exec, d: &Decoded) -> ExecResult {
    if x.cpu.flags.cond(d.cc) {
        x.jump(d.target)?;
    }
    Ok(())
}

/// JMP rel outside 64-bit code.
#[inline(always)]
pub(super) fn jmp_checked(x: &mut Exec, d: &Decoded) -> ExecResult {
    x.jump(d.target)
}

/// LEA reg, m (the address truncated to the operand size).
#[inline(always)]
pub(super) fn lea<const W: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let dst = d.r0();
    x.cpu.gpr[dst] = x.ea_of(&d.mem) & mask(W);
    Ok(())
}

/// SHL/SHR/SAR reg, imm8 with a non-zero masked count (checked at
/// selection), flags recorded lazily as `ops::shift` computes them for
/// Intel processors; with `AMD`, written at once by `ops::shift`'s kernel
/// for AMD processors (the lazy flags know Intel's values only).
#[inline(always)]
pub(super) fn shift_ri<const W: u8, const OP: u8, const AMD: bool>(
    x: &mut Exec,
    d: &Decoded,
) -> ExecResult {
    let ins = &d.ins;
    let dst = d.r0();
    let bits = u32::from(W) * 8;
    let m = mask(W);
    let c = u32::from(ins.immediate8()) & (bits - 1);
    let v = x.cpu.gpr[dst] & m;
    if AMD {
        let op = match OP {
            0 => shift::Op::Shl,
            1 => shift::Op::Shr,
            _ => shift::Op::Sar,
        };
        // A non-zero count replaces all six flags: the old ones are not
        // needed.
        let (r, f) = shift::shift(op, W, v, u64::from(c), 0, Vendor::Amd);
        x.cpu.flags.set_arith(ARITH, f);
        x.cpu.gpr[dst] = r;
        return Ok(());
    }
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

/// IMUL r64, r64 (and with an immediate: r64, r64, imm); with `AMD`, the
/// flags AMD processors leave (see [`mul_flags`]).
#[inline(always)]
pub(super) fn imul64<const IMM: u8, const AMD: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
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
    mul_flags::<AMD>(x, lo, ovf);
    Ok(())
}

/// MUL r64: RDX:RAX = RAX * r64; with `AMD`, the flags AMD processors
/// leave (see [`mul_flags`]).
#[inline(always)]
pub(super) fn mul64<const AMD: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    let s = d.r0();
    let p = u128::from(x.cpu.gpr[0]) * u128::from(x.cpu.gpr[s]);
    let (lo, hi) = (p as u64, (p >> 64) as u64);
    x.cpu.gpr[0] = lo;
    x.cpu.gpr[2] = hi;
    mul_flags::<AMD>(x, lo, hi != 0);
    Ok(())
}

/// The flags of a 64-bit MUL/IMUL: recorded lazily (Intel's values), or
/// with `AMD` as `ops::muldiv` leaves them for AMD processors.
#[inline(always)]
fn mul_flags<const AMD: bool>(x: &mut Exec, lo: u64, ovf: bool) {
    if AMD {
        muldiv::set_mul_flags(&mut x.cpu.flags, Vendor::Amd, 8, lo, ovf);
    } else {
        x.cpu.flags.lazy_mul(8, lo, ovf);
    }
}

/// Jcc rel (64-bit code, canonical target). Both ways are written: a
/// block that unrolls a loop holds the target in `d.next` (see
/// `FastOp::is_jcc64`).
#[inline(always)]
pub(super) fn jcc<const CC: u8>(x: &mut Exec, d: &Decoded) -> ExecResult {
    x.next_rip = if x.cpu.flags.cond(CC) {
        d.target
    } else {
        d.ins.next_ip()
    };
    Ok(())
}

/// JMP rel (64-bit code, canonical target).
#[inline(always)]
pub(super) fn jmp_rel(x: &mut Exec, d: &Decoded) -> ExecResult {
    x.next_rip = d.target;
    Ok(())
}

/// CALL rel32 (64-bit code, canonical target).
#[inline(always)]
pub(super) fn call_rel(x: &mut Exec, d: &Decoded) -> ExecResult {
    // Not `x.next_rip`: a block that follows the call holds the target
    // there (see `follows`).
    let ret = d.ins.next_ip();
    push_q(x, ret)?;
    x.next_rip = d.target;
    Ok(())
}

/// RET (64-bit code, no immediate).
#[inline(always)]
pub(super) fn ret64(x: &mut Exec, _d: &Decoded) -> ExecResult {
    let t = x.load_stack64(x.cpu.gpr[4])?;
    if !is_canonical(t) {
        return Err(Exception::gp(0).into());
    }
    x.next_rip = t;
    x.cpu.gpr[4] = x.cpu.gpr[4].wrapping_add(8);
    Ok(())
}

/// Push a qword in 64-bit code (where the stack is always 8 bytes wide).
#[inline(always)]
pub(super) fn push_q(x: &mut Exec, v: u64) -> ExecResult {
    let sp = x.cpu.gpr[4].wrapping_sub(8);
    x.store_stack64(sp, v)?;
    x.cpu.gpr[4] = sp;
    Ok(())
}

/// PUSH r64.
#[inline(always)]
pub(super) fn push64(x: &mut Exec, d: &Decoded) -> ExecResult {
    let v = x.cpu.gpr[d.r0()];
    push_q(x, v)
}

/// POP r64 (not RSP).
#[inline(always)]
pub(super) fn pop64(x: &mut Exec, d: &Decoded) -> ExecResult {
    let v = x.load_stack64(x.cpu.gpr[4])?;
    x.cpu.gpr[4] = x.cpu.gpr[4].wrapping_add(8);
    x.cpu.gpr[d.r0()] = v;
    Ok(())
}

/// Whether the stack is 32 bits wide (SS.B) outside 64-bit code; the
/// 32-bit stack forms below leave 16-bit stacks to the family handlers.
#[inline(always)]
fn stack32(x: &Exec) -> bool {
    x.cpu.sreg(SegReg::Ss).db != 0
}

/// Push a dword on a 32-bit stack.
#[inline(always)]
fn push_d(x: &mut Exec, v: u64) -> ExecResult {
    let sp = x.cpu.gpr[4].wrapping_sub(4) & 0xffff_ffff;
    x.write_seg(SegReg::Ss, sp, 4, v & 0xffff_ffff)?;
    x.cpu.gpr[4] = sp;
    Ok(())
}

/// The dword at the top of a 32-bit stack and ESP after popping it (not
/// yet written: RET checks its target first).
#[inline(always)]
fn top_d(x: &mut Exec) -> ExecResult<(u64, u64)> {
    let sp = x.cpu.gpr[4] & 0xffff_ffff;
    let v = x.read_seg(SegReg::Ss, sp, 4)?;
    Ok((v, sp.wrapping_add(4) & 0xffff_ffff))
}

/// PUSH r32 outside 64-bit code.
#[inline(always)]
pub(super) fn push32(x: &mut Exec, d: &Decoded) -> ExecResult {
    if !stack32(x) {
        return (d.family)(x, &d.ins);
    }
    push_d(x, x.cpu.gpr[d.r0()])
}

/// POP r32 outside 64-bit code (POP ESP loads the popped value).
#[inline(always)]
pub(super) fn pop32(x: &mut Exec, d: &Decoded) -> ExecResult {
    if !stack32(x) {
        return (d.family)(x, &d.ins);
    }
    let (v, sp) = top_d(x)?;
    x.cpu.gpr[4] = sp;
    x.cpu.gpr[d.r0()] = v;
    Ok(())
}

/// CALL rel32 in 32-bit code.
#[inline(always)]
pub(super) fn call32(x: &mut Exec, d: &Decoded) -> ExecResult {
    if !stack32(x) {
        return (d.family)(x, &d.ins);
    }
    push_d(x, x.next_rip)?;
    x.jump(d.target)
}

/// RET (no immediate) in 32-bit code.
#[inline(always)]
pub(super) fn ret32(x: &mut Exec, d: &Decoded) -> ExecResult {
    if !stack32(x) {
        return (d.family)(x, &d.ins);
    }
    let (t, sp) = top_d(x)?;
    x.jump(t)?;
    x.cpu.gpr[4] = sp;
    Ok(())
}
