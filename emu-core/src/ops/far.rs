//! Far control transfer and interrupts: JMP/CALL far, RETF, IRET, INT n,
//! INT3, INTO, INT1.

use crate::api_types::Segment;
use crate::cpu::flags;
use crate::cpu::state::*;
use crate::cpu::{Mode, SegReg};
use crate::exception::{Exception, ExecResult, Fault};
use crate::exec::mem::is_canonical;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::system::interrupt::Event;
use iced_x86::{Code, Instruction, Mnemonic, OpKind};

/// The instruction pointer a far transfer loads must be canonical when the
/// new CS is a 64-bit code segment and within the limit of any other (SDM
/// Vol. 2, JMP, CALL, RET and IRET: "#GP(0) if the instruction pointer is
/// not within the code segment limit" / "is in non-canonical form"). It is
/// checked before anything changes, so the fault is reported at the
/// instruction with the old state.
fn check_far_target(x: &Exec, cs: &Segment, ip: u64) -> ExecResult {
    let long64 = x.cpu.efer & EFER_LMA != 0 && cs.l != 0;
    let ok = if long64 {
        is_canonical(ip)
    } else {
        ip <= u64::from(cs.limit)
    };
    if ok {
        Ok(())
    } else {
        Err(Exception::gp(0).into())
    }
}

/// JMP/CALL far — to a code segment (gates and task switches are not
/// supported: #GP).
fn far_transfer(x: &mut Exec, ins: &Instruction, call: bool) -> ExecResult {
    let (sel, off, osize) = match ins.op0_kind() {
        OpKind::FarBranch16 => (ins.far_branch_selector(), u64::from(ins.far_branch16()), 2),
        OpKind::FarBranch32 => (ins.far_branch_selector(), u64::from(ins.far_branch32()), 4),
        _ => {
            let (seg, o) = x.mem_loc(ins);
            let osz = (ins.memory_size().size() - 2) as u8;
            let off = x.read_seg(seg, o, osz as usize)?;
            let sel = x.read_seg(seg, o.wrapping_add(osz as u64), 2)? as u16;
            (sel, off, osz)
        }
    };
    let old_cs = u64::from(x.cpu.sreg(SegReg::Cs).selector);
    let ret = x.next_rip;
    if x.cpu.mode() == Mode::Real {
        if call {
            x.push(old_cs, osize)?;
            x.push(ret, osize)?;
        }
        let cs = x.cpu.sreg_mut(SegReg::Cs);
        cs.selector = sel;
        cs.base = u64::from(sel) << 4;
        x.next_rip = off;
        return Ok(());
    }
    let cpl = x.cpu.cpl();
    let cs = x.load_code_segment(sel, cpl)?;
    check_far_target(x, &cs, off)?;
    if call {
        let old_sp = x.cpu.gpr[4];
        let r = x.push(old_cs, osize).and_then(|_| x.push(ret, osize));
        if r.is_err() {
            x.cpu.gpr[4] = old_sp;
            return r;
        }
    }
    x.set_cs(cs);
    x.next_rip = off;
    Ok(())
}

fn jmp_far(x: &mut Exec, ins: &Instruction) -> ExecResult {
    far_transfer(x, ins, false)
}

fn call_far(x: &mut Exec, ins: &Instruction) -> ExecResult {
    far_transfer(x, ins, true)
}

/// RETF — Return from far procedure (same privilege, or to an outer one).
fn retf(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let osize: u8 = match ins.code() {
        Code::Retfw | Code::Retfw_imm16 => 2,
        Code::Retfd | Code::Retfd_imm16 => 4,
        _ => 8,
    };
    let extra = if ins.op_count() > 0 {
        u64::from(ins.immediate16())
    } else {
        0
    };
    let ip = x.peek(osize, 0)?;
    let sel = x.peek(osize, osize as u64)? as u16;
    let ss = x.stack_size();
    if x.cpu.mode() == Mode::Real {
        let cs = x.cpu.sreg_mut(SegReg::Cs);
        cs.selector = sel;
        cs.base = u64::from(sel) << 4;
        x.next_rip = ip & 0xffff;
        let sp = x.cpu.gpr[4].wrapping_add(2 * osize as u64 + extra);
        x.set_gpr(4, ss, sp);
        return Ok(());
    }
    let cpl = x.cpu.cpl();
    let rpl = (sel & 3) as u8;
    if rpl < cpl {
        return Err(Exception::gp(u32::from(sel & 0xfffc)).into());
    }
    let cs = x.load_code_segment(sel, rpl)?;
    check_far_target(x, &cs, ip)?;
    if rpl > cpl {
        let new_sp = x.peek(osize, 2 * osize as u64 + extra)?;
        let new_ss = x.peek(osize, 3 * osize as u64 + extra)? as u16;
        let saved = x.cpu.segs();
        x.set_cs(cs);
        x.cpu.sreg_mut(SegReg::Ss).dpl = rpl;
        if let Err(e) = x.load_data_segment(SegReg::Ss, new_ss) {
            x.cpu.restore_segs(saved);
            x.cpu.update_mode();
            return Err(e);
        }
        x.cpu.gpr[4] = new_sp.wrapping_add(extra);
        null_inaccessible_segments(x, rpl);
    } else {
        x.set_cs(cs);
        let sp = x.cpu.gpr[4].wrapping_add(2 * osize as u64 + extra);
        x.set_gpr(4, ss, sp);
    }
    x.next_rip = ip;
    Ok(())
}

/// IRET/IRETD/IRETQ — Interrupt Return (same or outer privilege; no task
/// return).
fn iret(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let osize: u8 = match ins.code() {
        Code::Iretw => 2,
        Code::Iretd => 4,
        _ => 8,
    };
    let ip = x.peek(osize, 0)?;
    let sel = x.peek(osize, osize as u64)? as u16;
    let fl = x.peek(osize, 2 * osize as u64)?;
    let ss = x.stack_size();
    let mode = x.cpu.mode();
    let mut fmask = crate::ops::stack::popf_mask(x) | flags::RF;
    if osize == 2 {
        fmask &= 0xffff;
    }
    let old = x.cpu.flags.get();
    let newf = (old & !fmask) | (fl & fmask);
    if mode == Mode::Real {
        let cs = x.cpu.sreg_mut(SegReg::Cs);
        cs.selector = sel;
        cs.base = u64::from(sel) << 4;
        x.next_rip = ip & 0xffff;
        x.cpu.flags.set(newf);
        let sp = x.cpu.gpr[4].wrapping_add(3 * osize as u64);
        x.set_gpr(4, ss, sp);
        return Ok(());
    }
    if x.cpu.flags.test(flags::NT) && x.cpu.efer & EFER_LMA == 0 {
        // Task return: not supported.
        return Err(Exception::ts(u32::from(x.cpu.tr.selector & 0xfffc)).into());
    }
    let cpl = x.cpu.cpl();
    let rpl = (sel & 3) as u8;
    if rpl < cpl {
        return Err(Exception::gp(u32::from(sel & 0xfffc)).into());
    }
    let cs = x.load_code_segment(sel, rpl)?;
    check_far_target(x, &cs, ip)?;
    let long = x.cpu.efer & EFER_LMA != 0;
    if rpl > cpl || mode == Mode::Long64 {
        let new_sp = x.peek(osize, 3 * osize as u64)?;
        let new_ss = x.peek(osize, 4 * osize as u64)? as u16;
        let saved = x.cpu.segs();
        x.set_cs(cs);
        x.cpu.sreg_mut(SegReg::Ss).dpl = rpl;
        if let Err(e) = x.load_data_segment(SegReg::Ss, new_ss) {
            x.cpu.restore_segs(saved);
            x.cpu.update_mode();
            return Err(e);
        }
        x.cpu.gpr[4] = if long { new_sp } else { new_sp & 0xffff_ffff };
        if rpl > cpl {
            null_inaccessible_segments(x, rpl);
        }
    } else {
        x.set_cs(cs);
        let sp = x.cpu.gpr[4].wrapping_add(3 * osize as u64);
        x.set_gpr(4, ss, sp);
    }
    x.cpu.flags.set(newf);
    x.next_rip = ip;
    Ok(())
}

/// On a return to an outer privilege level (RET far, IRET), ES, DS, FS
/// and GS are made null if they hold a data or non-conforming code segment
/// the new CPL may not use (SDM Vol. 2, RET and IRET pseudocode: "IF
/// segment register points to data or non-conforming code segment AND CPL >
/// segment descriptor DPL (stored in hidden part of segment register) THEN
/// SegmentSelector <- 0"). The hidden base is kept (it still matters for FS
/// and GS in 64-bit mode).
fn null_inaccessible_segments(x: &mut Exec, new_cpl: u8) {
    for seg in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
        let s = x.cpu.sreg_mut(seg);
        let conforming_code = s.type_ & 0xc == 0xc;
        if s.unusable == 0 && s.s != 0 && !conforming_code && s.dpl < new_cpl {
            s.selector = 0;
            s.unusable = 1;
        }
    }
}

/// INT n / INT3 / INTO / INT1: delivered here, after RIP has advanced.
///
/// A fault while delivering the interrupt (a gate DPL below CPL, a gate
/// that is not present, a bad stack) is a fault of the INT instruction
/// itself: it is reported with CS:RIP pointing at the instruction (SDM
/// Vol. 3A, 6.12.1.1: "the processor ... generates a general-protection
/// exception (#GP) ... the saved contents of CS and EIP registers point to
/// the INT n instruction"), and it is not a double-fault case, since
/// software interrupts are not exceptions of the Table 6-4 classes.
fn int_n(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let ev = match ins.mnemonic() {
        Mnemonic::Int3 => Event::Software(3),
        Mnemonic::Into => {
            if x.cpu.mode() == Mode::Long64 {
                return Err(Exception::ud().into());
            }
            if !x.cpu.flags.test(flags::OF) {
                return Ok(());
            }
            Event::Software(4)
        }
        Mnemonic::Int1 => Event::Icebp,
        _ => Event::Software(ins.immediate8()),
    };
    let at = x.cpu.rip;
    x.cpu.rip = x.next_rip;
    match x.deliver_software(ev) {
        Ok(()) => {
            x.next_rip = x.cpu.rip;
            Ok(())
        }
        Err(Fault::Exception(e)) => {
            x.cpu.rip = at;
            Err(e.into())
        }
        Err(_) => {
            x.cpu.rip = at;
            Err(Fault::Unimplemented)
        }
    }
}

pub(crate) fn register(t: &mut TableBuilder) {
    let far = |c: Code| {
        let s = format!("{c:?}");
        s.contains("ptr") || s.contains("_m16")
    };
    t.mnemonic_where(Mnemonic::Jmp, jmp_far, 0, far);
    t.mnemonic_where(Mnemonic::Call, call_far, 0, far);
    t.mnemonic(Mnemonic::Retf, retf, 0);
    t.mnemonic(Mnemonic::Iret, iret, 0);
    t.mnemonic(Mnemonic::Iretd, iret, 0);
    t.mnemonic(Mnemonic::Iretq, iret, 0);
    t.mnemonic(Mnemonic::Int, int_n, 0);
    t.mnemonic(Mnemonic::Int3, int_n, 0);
    t.mnemonic(Mnemonic::Into, int_n, 0);
    t.mnemonic(Mnemonic::Int1, int_n, 0);
}
