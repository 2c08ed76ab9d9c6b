//! Stack and flag-register instructions: PUSH, POP, PUSHF, POPF, ENTER,
//! LEAVE, LAHF, SAHF, CLC, STC, CMC, CLD, STD, and the sign extensions
//! CBW/CWDE/CDQE/CWD/CDQ/CQO.

use crate::cpu::flags::{self, mask, ARITH};
use crate::cpu::Mode;
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::ops::mov::sext;
use iced_x86::{Code, Instruction, Mnemonic};

/// The bytes a push or pop of this instruction moves.
#[inline]
fn slot(ins: &Instruction) -> u8 {
    ins.stack_pointer_increment().unsigned_abs() as u8
}

/// PUSH — Push Word, Doubleword or Quadword Onto the Stack. Pushing RSP
/// stores its value from before the push.
fn push(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = slot(ins);
    let v = x.read_op(ins, 0)? & mask(size);
    x.push(v, size)
}

/// POP — Pop a Value From the Stack. For a memory destination that uses
/// RSP, the address is computed after RSP has been incremented.
fn pop(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = slot(ins);
    let v = x.peek(size, 0)?;
    let old_sp = x.cpu.gpr[4];
    let ss = x.stack_size();
    x.set_gpr(4, ss, old_sp.wrapping_add(size as u64));
    let r = x.write_op(ins, 0, v);
    if r.is_err() {
        x.cpu.gpr[4] = old_sp;
    }
    r
}

/// PUSHF/PUSHFD/PUSHFQ — the image has VM and RF cleared.
fn pushf(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = slot(ins);
    if x.cpu.flags.test(flags::VM) && x.cpu.flags.get() & flags::IOPL != flags::IOPL {
        return Err(Exception::gp(0).into());
    }
    let v = x.cpu.flags.get() & !(flags::VM | flags::RF);
    x.push(v & mask(size), size)
}

/// The bits POPF may change at the current privilege (SDM POPF pseudocode).
pub fn popf_mask(x: &Exec) -> u64 {
    let mut m = ARITH | flags::TF | flags::DF | flags::NT | flags::AC | flags::ID;
    let cpl = x.cpu.cpl();
    let iopl = ((x.cpu.flags.get() & flags::IOPL) >> 12) as u8;
    if x.cpu.mode() == Mode::Real || cpl == 0 {
        m |= flags::IOPL | flags::IF;
    } else if cpl <= iopl {
        m |= flags::IF;
    }
    m
}

/// POPF/POPFD/POPFQ — Pop Stack into EFLAGS. RF is cleared; VM, VIP, VIF
/// are never changed; IOPL and IF only with enough privilege.
fn popf(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = slot(ins);
    let v = x.pop(size)?;
    let mut m = popf_mask(x);
    if size == 2 {
        m &= 0xffff;
    }
    let old = x.cpu.flags.get();
    let new = ((old & !m) | (v & m)) & !flags::RF;
    x.cpu.flags.set(new);
    Ok(())
}

/// ENTER — Make Stack Frame for Procedure Parameters
fn enter(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let alloc = ins.immediate16() as u64;
    let level = (ins.immediate8_2nd() & 31) as u64;
    let size = match ins.code() {
        Code::Enterw_imm16_imm8 => 2,
        Code::Enterd_imm16_imm8 => 4,
        _ => 8,
    };
    let ss = x.stack_size();
    let old_sp = x.cpu.gpr[4];
    let old_bp = x.cpu.gpr[5];
    let r = (|| {
        x.push(old_bp & mask(size), size)?;
        let frame = x.cpu.gpr[4] & mask(ss);
        if level > 0 {
            let mut bp = old_bp;
            for _ in 1..level {
                bp = bp.wrapping_sub(size as u64) & mask(ss);
                let v = x.read_seg(crate::cpu::SegReg::Ss, bp, size as usize)?;
                x.push(v, size)?;
            }
            x.push(frame, size)?;
        }
        let sp = x.cpu.gpr[4].wrapping_sub(alloc) & mask(ss);
        // The final stack pointer must be writable (SDM: #SS/#PF).
        if alloc > 0 {
            let la = x.linear(crate::cpu::SegReg::Ss, sp, 1, true)?;
            x.probe_write(la, 1)?;
        }
        x.set_gpr(5, size, frame);
        x.set_gpr(4, ss, sp);
        Ok(())
    })();
    if r.is_err() {
        x.cpu.gpr[4] = old_sp;
        x.cpu.gpr[5] = old_bp;
    }
    r
}

/// LEAVE — High Level Procedure Exit
fn leave(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = match ins.code() {
        Code::Leavew => 2,
        Code::Leaved => 4,
        _ => 8,
    };
    let ss = x.stack_size();
    let old_sp = x.cpu.gpr[4];
    x.set_gpr(4, ss, x.cpu.gpr[5]);
    match x.pop(size) {
        Ok(v) => {
            x.set_gpr(5, size, v);
            Ok(())
        }
        Err(e) => {
            x.cpu.gpr[4] = old_sp;
            Err(e)
        }
    }
}

/// LAHF — Load Status Flags into AH Register
fn lahf(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    let f = x.cpu.flags.get() & 0xd5 | 2;
    x.cpu.gpr[0] = (x.cpu.gpr[0] & !0xff00) | (f << 8);
    Ok(())
}

/// SAHF — Store AH into Flags
fn sahf(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    let ah = (x.cpu.gpr[0] >> 8) & 0xd5;
    x.cpu.flags.set_arith(
        flags::CF | flags::PF | flags::AF | flags::ZF | flags::SF,
        ah,
    );
    Ok(())
}

fn clc(x: &mut Exec, _: &Instruction) -> ExecResult {
    x.cpu.flags.assign(flags::CF, false);
    Ok(())
}
fn stc(x: &mut Exec, _: &Instruction) -> ExecResult {
    x.cpu.flags.assign(flags::CF, true);
    Ok(())
}
fn cmc(x: &mut Exec, _: &Instruction) -> ExecResult {
    let cf = x.cpu.flags.cf();
    x.cpu.flags.assign(flags::CF, !cf);
    Ok(())
}
fn cld(x: &mut Exec, _: &Instruction) -> ExecResult {
    x.cpu.flags.assign(flags::DF, false);
    Ok(())
}
fn std_(x: &mut Exec, _: &Instruction) -> ExecResult {
    x.cpu.flags.assign(flags::DF, true);
    Ok(())
}

/// CBW/CWDE/CDQE — sign-extend the low half of rAX into rAX.
fn cbw(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let (from, to) = match ins.mnemonic() {
        Mnemonic::Cbw => (1, 2),
        Mnemonic::Cwde => (2, 4),
        _ => (4, 8),
    };
    let v = sext(x.cpu.gpr[0], from) & mask(to);
    x.set_gpr(0, to, v);
    Ok(())
}

/// CWD/CDQ/CQO — sign-extend rAX into rDX.
fn cwd(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = match ins.mnemonic() {
        Mnemonic::Cwd => 2,
        Mnemonic::Cdq => 4,
        _ => 8,
    };
    let neg = x.cpu.gpr[0] & flags::sign_bit(size) != 0;
    x.set_gpr(2, size, if neg { u64::MAX } else { 0 });
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    // Segment register pushes and pops live with the system instructions.
    let gpr_form = |c: Code| {
        let s = format!("{c:?}");
        !(s.contains("ES")
            || s.contains("CS")
            || s.contains("SS")
            || s.contains("DS")
            || s.contains("FS")
            || s.contains("GS"))
    };
    t.mnemonic_where(Mnemonic::Push, push, 0, gpr_form);
    t.mnemonic_where(Mnemonic::Pop, pop, 0, gpr_form);
    t.mnemonic(Mnemonic::Pushf, pushf, 0);
    t.mnemonic(Mnemonic::Pushfd, pushf, 0);
    t.mnemonic(Mnemonic::Pushfq, pushf, 0);
    t.mnemonic(Mnemonic::Popf, popf, 0);
    t.mnemonic(Mnemonic::Popfd, popf, 0);
    t.mnemonic(Mnemonic::Popfq, popf, 0);
    t.mnemonic(Mnemonic::Enter, enter, 0);
    t.mnemonic(Mnemonic::Leave, leave, 0);
    t.mnemonic(Mnemonic::Lahf, lahf, 0);
    t.mnemonic(Mnemonic::Sahf, sahf, 0);
    t.mnemonic(Mnemonic::Clc, clc, 0);
    t.mnemonic(Mnemonic::Stc, stc, 0);
    t.mnemonic(Mnemonic::Cmc, cmc, 0);
    t.mnemonic(Mnemonic::Cld, cld, 0);
    t.mnemonic(Mnemonic::Std, std_, 0);
    for m in [Mnemonic::Cbw, Mnemonic::Cwde, Mnemonic::Cdqe] {
        t.mnemonic(m, cbw, 0);
    }
    for m in [Mnemonic::Cwd, Mnemonic::Cdq, Mnemonic::Cqo] {
        t.mnemonic(m, cwd, 0);
    }
}
