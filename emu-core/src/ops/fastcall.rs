//! Fast system calls and segment-base access: SYSCALL, SYSRET, SYSENTER,
//! SYSEXIT, RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE, RDPID.
//!
//! SYSCALL and SYSRET follow Intel: both raise #UD outside 64-bit mode
//! (AMD allows them in compatibility and legacy modes).

use crate::api_types::Segment;
use crate::cpu::flags::{IF, RF, VM};
use crate::cpu::state::{CR4_FSGSBASE, EFER_LMA, EFER_SCE};
use crate::cpu::{Mode, SegReg};
use crate::exception::{Exception, ExecResult};
use crate::exec::mem::is_canonical;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::ops::system::require_cpl0;
use iced_x86::{Code, Instruction, Mnemonic};

/// The flat segment caches SYSCALL/SYSRET/SYSENTER/SYSEXIT load: they do
/// not read the GDT.
fn flat_code(selector: u16, dpl: u8, long: bool) -> Segment {
    Segment {
        dpl,
        ..Segment::flat(selector, 0xb, !long, long)
    }
}

fn flat_data(selector: u16, dpl: u8) -> Segment {
    Segment {
        dpl,
        ..Segment::flat(selector, 0x3, true, false)
    }
}

fn enter_ring(x: &mut Exec, cs: Segment, ss: Segment) {
    *x.cpu.sreg_mut(SegReg::Ss) = ss;
    x.set_cs(cs);
}

/// SYSCALL — Fast System Call
fn syscall(x: &mut Exec, _: &Instruction) -> ExecResult {
    if x.cpu.mode() != Mode::Long64 || x.cpu.efer & EFER_SCE == 0 {
        return Err(Exception::ud().into());
    }
    let star = x.cpu.msrs.star;
    let sel = ((star >> 32) & 0xfffc) as u16;
    x.cpu.gpr[1] = x.next_rip;
    let f = x.cpu.flags.get();
    x.cpu.gpr[11] = f & !RF;
    x.cpu.flags.set(f & !x.cpu.msrs.sfmask & !RF);
    enter_ring(x, flat_code(sel, 0, true), flat_data(sel + 8, 0));
    x.next_rip = x.cpu.msrs.lstar;
    Ok(())
}

/// SYSRET — Return From Fast System Call. A non-canonical RCX raises
/// #GP(0) at CPL 0, as on Intel processors.
fn sysret(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if x.cpu.mode() != Mode::Long64 || x.cpu.efer & EFER_SCE == 0 {
        return Err(Exception::ud().into());
    }
    require_cpl0(x)?;
    let base = ((x.cpu.msrs.star >> 48) & 0xffff) as u16;
    let to64 = ins.code() == Code::Sysretq;
    let rip = if to64 {
        x.cpu.gpr[1]
    } else {
        x.cpu.gpr[1] & 0xffff_ffff
    };
    if !is_canonical(rip) {
        return Err(Exception::gp(0).into());
    }
    let cs_sel = if to64 { base.wrapping_add(16) } else { base } | 3;
    let ss_sel = base.wrapping_add(8) | 3;
    x.cpu.flags.set((x.cpu.gpr[11] & 0x3c_7fd7) | 2);
    enter_ring(x, flat_code(cs_sel, 3, to64), flat_data(ss_sel, 3));
    x.next_rip = rip;
    Ok(())
}

/// SYSENTER — Fast System Call (legacy and long mode).
fn sysenter(x: &mut Exec, _: &Instruction) -> ExecResult {
    let cs = (x.cpu.msrs.sysenter_cs & 0xfffc) as u16;
    if x.cpu.mode() == Mode::Real || cs == 0 {
        return Err(Exception::gp(0).into());
    }
    let long = x.cpu.efer & EFER_LMA != 0;
    let f = x.cpu.flags.get();
    x.cpu.flags.set(f & !(VM | IF | RF));
    enter_ring(x, flat_code(cs, 0, long), flat_data(cs + 8, 0));
    let m = if long { u64::MAX } else { 0xffff_ffff };
    x.cpu.gpr[4] = x.cpu.msrs.sysenter_esp & m;
    x.next_rip = x.cpu.msrs.sysenter_eip & m;
    Ok(())
}

/// SYSEXIT — Fast Return from Fast System Call
fn sysexit(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let cs = (x.cpu.msrs.sysenter_cs & 0xfffc) as u16;
    if x.cpu.mode() == Mode::Real || cs == 0 {
        return Err(Exception::gp(0).into());
    }
    require_cpl0(x)?;
    let to64 = ins.code() == Code::Sysexitq;
    let (cs_sel, ss_sel) = if to64 {
        (cs + 32, cs + 40)
    } else {
        (cs + 16, cs + 24)
    };
    let (rip, rsp) = if to64 {
        (x.cpu.gpr[2], x.cpu.gpr[1])
    } else {
        (x.cpu.gpr[2] & 0xffff_ffff, x.cpu.gpr[1] & 0xffff_ffff)
    };
    if to64 && (!is_canonical(rip) || !is_canonical(rsp)) {
        return Err(Exception::gp(0).into());
    }
    enter_ring(x, flat_code(cs_sel | 3, 3, to64), flat_data(ss_sel | 3, 3));
    x.cpu.gpr[4] = rsp;
    x.next_rip = rip;
    Ok(())
}

fn fsgsbase_ok(x: &Exec) -> ExecResult {
    if x.cpu.mode() != Mode::Long64 || x.cpu.cr4 & CR4_FSGSBASE == 0 {
        return Err(Exception::ud().into());
    }
    Ok(())
}

fn which(ins: &Instruction) -> SegReg {
    match ins.mnemonic() {
        Mnemonic::Rdfsbase | Mnemonic::Wrfsbase => SegReg::Fs,
        _ => SegReg::Gs,
    }
}

/// RDFSBASE/RDGSBASE — Read FS/GS Segment Base
fn rdbase(x: &mut Exec, ins: &Instruction) -> ExecResult {
    fsgsbase_ok(x)?;
    let v = x.cpu.sreg(which(ins)).base;
    x.set_reg(ins.op0_register(), v);
    Ok(())
}

/// WRFSBASE/WRGSBASE — Write FS/GS Segment Base (32-bit forms
/// zero-extend).
fn wrbase(x: &mut Exec, ins: &Instruction) -> ExecResult {
    fsgsbase_ok(x)?;
    let v = x.reg(ins.op0_register());
    if !is_canonical(v) {
        return Err(Exception::gp(0).into());
    }
    x.cpu.sreg_mut(which(ins)).base = v;
    Ok(())
}

/// RDPID — Read Processor ID (IA32_TSC_AUX)
fn rdpid(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let v = x.cpu.msrs.tsc_aux & 0xffff_ffff;
    x.set_reg(ins.op0_register(), v);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.mnemonic(Mnemonic::Syscall, syscall, 0);
    t.mnemonic(Mnemonic::Sysret, sysret, 0);
    t.mnemonic(Mnemonic::Sysretq, sysret, 0);
    t.mnemonic(Mnemonic::Sysenter, sysenter, 0);
    t.mnemonic(Mnemonic::Sysexit, sysexit, 0);
    t.mnemonic(Mnemonic::Sysexitq, sysexit, 0);
    t.mnemonic(Mnemonic::Rdfsbase, rdbase, 0);
    t.mnemonic(Mnemonic::Rdgsbase, rdbase, 0);
    t.mnemonic(Mnemonic::Wrfsbase, wrbase, 0);
    t.mnemonic(Mnemonic::Wrgsbase, wrbase, 0);
    t.mnemonic(Mnemonic::Rdpid, rdpid, 0);
}
