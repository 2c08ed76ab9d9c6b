//! Data movement: MOV, MOVZX, MOVSX, MOVSXD, MOVBE, CMOVcc, XCHG, BSWAP,
//! LEA, XLAT, and the NOP forms.

use crate::cpu::flags::mask;
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Instruction, Mnemonic, OpKind};

/// The CMOVcc mnemonics.
pub const CMOVCC: [Mnemonic; 16] = [
    Mnemonic::Cmovo,
    Mnemonic::Cmovno,
    Mnemonic::Cmovb,
    Mnemonic::Cmovae,
    Mnemonic::Cmove,
    Mnemonic::Cmovne,
    Mnemonic::Cmovbe,
    Mnemonic::Cmova,
    Mnemonic::Cmovs,
    Mnemonic::Cmovns,
    Mnemonic::Cmovp,
    Mnemonic::Cmovnp,
    Mnemonic::Cmovl,
    Mnemonic::Cmovge,
    Mnemonic::Cmovle,
    Mnemonic::Cmovg,
];

/// Sign-extend the low `size` bytes of `v`.
#[inline]
pub fn sext(v: u64, size: u8) -> u64 {
    match size {
        1 => v as u8 as i8 as i64 as u64,
        2 => v as u16 as i16 as i64 as u64,
        4 => v as u32 as i32 as i64 as u64,
        _ => v,
    }
}

/// MOV — Move (general-purpose register, memory and immediate forms).
fn mov(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let v = x.read_src(ins, 1, size)?;
    x.write_op(ins, 0, v)
}

/// MOVZX — Move with Zero-Extend
fn movzx(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let v = x.read_op(ins, 1)?;
    x.write_op(ins, 0, v)
}

/// MOVSX/MOVSXD — Move with Sign-Extension
fn movsx(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let ssize = x.op_size(ins, 1);
    let dsize = x.osize(ins);
    let v = sext(x.read_op(ins, 1)?, ssize) & mask(dsize);
    x.write_op(ins, 0, v)
}

/// MOVBE — Move Data After Swapping Bytes
fn movbe(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let v = x.read_op(ins, 1)?;
    let s = match size {
        2 => (v as u16).swap_bytes() as u64,
        4 => (v as u32).swap_bytes() as u64,
        _ => v.swap_bytes(),
    };
    x.write_op(ins, 0, s)
}

/// CMOVcc — Conditional Move. The source is read even when the condition
/// is false (it can fault), and a 32-bit destination is zero-extended
/// either way.
fn cmov(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let v = x.read_op(ins, 1)?;
    let cc = ins.condition_code() as u8 - 1;
    if x.cpu.flags.cond(cc) {
        x.write_op(ins, 0, v)
    } else {
        let d = x.reg(ins.op0_register());
        x.write_op(ins, 0, d)
    }
}

/// XCHG — Exchange Register/Memory with Register (always locked on memory).
fn xchg(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if ins.op0_kind() == OpKind::Register && ins.op1_kind() == OpKind::Register {
        let (a, b) = (ins.op0_register(), ins.op1_register());
        let (va, vb) = (x.reg(a), x.reg(b));
        x.set_reg(a, vb);
        x.set_reg(b, va);
        return Ok(());
    }
    // Memory form: the memory operand may be operand 0 or 1.
    let (reg, mem_first) = if ins.op0_kind() == OpKind::Register {
        (ins.op0_register(), false)
    } else {
        (ins.op1_register(), true)
    };
    let _ = mem_first;
    let v = x.reg(reg);
    let (s, o) = x.mem_loc(ins);
    let size = ins.memory_size().size();
    let old = x.rmw_seg(s, o, size, true, &mut |_| Some(v))?;
    x.set_reg(reg, old);
    Ok(())
}

/// BSWAP — Byte Swap (16-bit form is undefined; softvm zeroes the low word
/// as current Intel and AMD processors do).
fn bswap(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let r = ins.op0_register();
    let v = x.reg(r);
    let s = match r.size() {
        2 => 0,
        4 => (v as u32).swap_bytes() as u64,
        _ => v.swap_bytes(),
    };
    x.set_reg(r, s);
    Ok(())
}

/// LEA — Load Effective Address (the offset, truncated to the operand size).
fn lea(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if ins.op1_kind() != OpKind::Memory {
        return Err(Exception::ud().into());
    }
    let ea = x.ea(ins);
    x.set_reg(ins.op0_register(), ea);
    Ok(())
}

/// XLAT — Table Look-up Translation
fn xlat(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let v = x.read_op(ins, 0)?;
    x.set_gpr(0, 1, v);
    Ok(())
}

/// NOP and multi-byte NOP (PAUSE is a hint: `ops::hint`).
fn nop(_x: &mut Exec, _ins: &Instruction) -> ExecResult {
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    // MOV to/from control, debug and segment registers is system work.
    t.mnemonic_where(Mnemonic::Mov, mov, 0, |c| {
        let s = format!("{c:?}");
        !(s.contains("cr") || s.contains("dr") || s.contains("tr") || s.contains("Sreg"))
    });
    t.mnemonic(Mnemonic::Movzx, movzx, 0);
    t.mnemonic(Mnemonic::Movsx, movsx, 0);
    t.mnemonic(Mnemonic::Movsxd, movsx, 0);
    t.mnemonic(Mnemonic::Movbe, movbe, 0);
    for m in CMOVCC {
        t.mnemonic(m, cmov, 0);
    }
    t.mnemonic(Mnemonic::Xchg, xchg, 0);
    t.mnemonic(Mnemonic::Bswap, bswap, 0);
    t.mnemonic(Mnemonic::Lea, lea, 0);
    t.mnemonic(Mnemonic::Xlatb, xlat, 0);
    t.mnemonic(Mnemonic::Nop, nop, 0);
}
