//! Near control transfer and conditions: Jcc, JMP, CALL, RET, LOOPcc,
//! JCXZ/JECXZ/JRCXZ, SETcc.

use crate::cpu::flags::mask;
use crate::exception::ExecResult;
use crate::exec::table::{all_codes, TableBuilder};
use crate::exec::Exec;
use iced_x86::{ConditionCode, Instruction, Mnemonic, OpKind};

/// The SETcc mnemonics.
pub const SETCC: [Mnemonic; 16] = [
    Mnemonic::Seto,
    Mnemonic::Setno,
    Mnemonic::Setb,
    Mnemonic::Setae,
    Mnemonic::Sete,
    Mnemonic::Setne,
    Mnemonic::Setbe,
    Mnemonic::Seta,
    Mnemonic::Sets,
    Mnemonic::Setns,
    Mnemonic::Setp,
    Mnemonic::Setnp,
    Mnemonic::Setl,
    Mnemonic::Setge,
    Mnemonic::Setle,
    Mnemonic::Setg,
];

/// The condition-code nibble iced reports for Jcc/SETcc/CMOVcc/LOOPcc.
#[inline]
pub fn cc(ins: &Instruction) -> u8 {
    match ins.condition_code() {
        ConditionCode::None => 0xff,
        c => c as u8 - 1,
    }
}

/// Branch target of a direct near branch, or the value of an indirect one
/// truncated to the operand size.
#[inline]
fn target(x: &mut Exec, ins: &Instruction) -> ExecResult<u64> {
    match ins.op0_kind() {
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
            Ok(ins.near_branch_target())
        }
        _ => {
            let size = x.osize(ins);
            Ok(x.read_op(ins, 0)? & mask(size))
        }
    }
}

/// Jcc — Jump if Condition Is Met
fn jcc(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if x.cpu.flags.cond(cc(ins)) {
        x.jump(ins.near_branch_target())?;
    }
    Ok(())
}

/// JMP — Jump (near, relative or indirect)
fn jmp(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let t = target(x, ins)?;
    x.jump(t)
}

/// CALL — Call Procedure (near). The push size follows the operand size
/// (8 bytes in 64-bit mode).
fn call(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let t = target(x, ins)?;
    let size = (-ins.stack_pointer_increment()) as u8;
    let ret = x.next_rip;
    x.push(ret, size)?;
    x.jump(t)
}

/// RET — Return from Procedure (near, optionally releasing imm16 bytes).
fn ret(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let extra = if ins.op_count() > 0 {
        ins.immediate16() as u64
    } else {
        0
    };
    let size = (ins.stack_pointer_increment() as u64 - extra) as u8;
    let t = x.peek(size, 0)?;
    x.jump(t)?;
    let ss = x.stack_size();
    let sp = x.cpu.gpr[4].wrapping_add(size as u64 + extra) & mask(ss);
    x.set_gpr(4, ss, sp);
    Ok(())
}

/// The counter register width (bytes) of LOOP/JrCXZ, from the Code name.
fn count_size(code: iced_x86::Code) -> u8 {
    let s = format!("{code:?}");
    if s.ends_with("RCX") || code.mnemonic() == Mnemonic::Jrcxz {
        8
    } else if s.ends_with("ECX") || code.mnemonic() == Mnemonic::Jecxz {
        4
    } else {
        2
    }
}

fn loop_n<const N: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let c = x.cpu.gpr[1].wrapping_sub(1) & mask(N);
    x.set_gpr(1, N, c);
    let take = c != 0
        && match ins.mnemonic() {
            Mnemonic::Loope => x.cpu.flags.test(crate::cpu::flags::ZF),
            Mnemonic::Loopne => !x.cpu.flags.test(crate::cpu::flags::ZF),
            _ => true,
        };
    if take {
        x.jump(ins.near_branch_target())?;
    }
    Ok(())
}

/// JCXZ/JECXZ/JRCXZ — Jump if the count register is zero.
fn jrcxz_n<const N: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if x.cpu.gpr[1] & mask(N) == 0 {
        x.jump(ins.near_branch_target())?;
    }
    Ok(())
}

/// SETcc — Set Byte on Condition
fn setcc(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let v = x.cpu.flags.cond(cc(ins)) as u64;
    x.write_op(ins, 0, v)
}

pub(crate) fn register(t: &mut TableBuilder) {
    for code in all_codes() {
        let m = code.mnemonic();
        let name = format!("{m:?}");
        if name.starts_with('J') && m != Mnemonic::Jmp && m != Mnemonic::Jmpe {
            if matches!(m, Mnemonic::Jcxz | Mnemonic::Jecxz | Mnemonic::Jrcxz) {
                let h = match count_size(code) {
                    8 => jrcxz_n::<8>,
                    4 => jrcxz_n::<4>,
                    _ => jrcxz_n::<2>,
                };
                t.add(code, h, 0);
            } else {
                t.add(code, jcc, 0);
            }
        } else if SETCC.contains(&m) && format!("{code:?}").ends_with("_rm8") {
            t.add(code, setcc, 0);
        } else if matches!(m, Mnemonic::Loop | Mnemonic::Loope | Mnemonic::Loopne) {
            let h = match count_size(code) {
                8 => loop_n::<8>,
                4 => loop_n::<4>,
                _ => loop_n::<2>,
            };
            t.add(code, h, 0);
        }
    }
    let near = |c: iced_x86::Code| {
        let s = format!("{c:?}");
        !s.contains("ptr") && !s.contains("_m16")
    };
    t.mnemonic_where(Mnemonic::Jmp, jmp, 0, near);
    t.mnemonic_where(Mnemonic::Call, call, 0, near);
    t.mnemonic(Mnemonic::Ret, ret, 0);
}
