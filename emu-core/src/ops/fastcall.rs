//! Fast system calls and segment-base access: SYSCALL, SYSRET, SYSENTER,
//! SYSEXIT, RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE, RDPID.
//!
//! The two vendors' fast system calls differ (SDM Vol. 2 and APM Vol. 3,
//! each instruction), and softvm follows the vCPU's CPU model:
//! - SYSCALL and SYSRET: Intel processors raise #UD outside 64-bit mode;
//!   AMD processors run them in compatibility mode (SYSCALL's target from
//!   CSTAR) and in legacy protected mode (STAR's EIP, 32-bit flat segments);
//! - SYSRET to a non-canonical RIP: #GP(0) at CPL 0 on Intel processors;
//!   AMD processors return, and the fetch in ring 3 faults;
//! - SYSRET's SS: Intel processors load a flat data segment; AMD processors
//!   load only the selector (base, limit and attributes stay as they were);
//! - SYSENTER and SYSEXIT: #UD in long mode on AMD processors, which Intel
//!   processors run there.

use crate::api_types::Segment;
use crate::cpu::flags::{IF, RF, VM};
use crate::cpu::model::Vendor;
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

/// SYSCALL — Fast System Call. #UD with EFER.SCE clear; outside 64-bit
/// mode, #UD on Intel processors and, on AMD processors, the same call
/// from compatibility mode with CSTAR's target, or the legacy-mode call.
fn syscall(x: &mut Exec, _: &Instruction) -> ExecResult {
    if x.cpu.efer & EFER_SCE == 0 {
        return Err(Exception::ud().into());
    }
    let target = match (x.cpu.mode(), x.sys.gate.vendor) {
        (Mode::Long64, _) => x.cpu.msrs.lstar,
        (Mode::Compat32 | Mode::Compat16, Vendor::Amd) => x.cpu.msrs.cstar,
        (Mode::Protected32 | Mode::Protected16, Vendor::Amd) => return syscall_legacy(x),
        _ => return Err(Exception::ud().into()),
    };
    let star = x.cpu.msrs.star;
    let sel = ((star >> 32) & 0xfffc) as u16;
    x.cpu.gpr[1] = x.next_rip;
    let f = x.cpu.flags.get();
    x.cpu.gpr[11] = f & !RF;
    x.cpu.flags.set(f & !x.cpu.msrs.sfmask & !RF);
    enter_ring(x, flat_code(sel, 0, true), flat_data(sel + 8, 0));
    x.next_rip = target;
    Ok(())
}

/// SYSCALL outside long mode (AMD processors; virtual-8086 mode
/// included): ECX gets the next EIP, EIP comes from STAR[31:0], CS and SS
/// are 32-bit flat ring-0 segments from STAR[47:32], and VM, IF and RF are
/// cleared (no R11, no SFMASK). Real mode raises #UD: the APM's pseudocode
/// does not single it out, but a protected-mode code segment without CR0.PE
/// is not a state softvm models (KVM raises #UD there too).
fn syscall_legacy(x: &mut Exec) -> ExecResult {
    let star = x.cpu.msrs.star;
    let sel = ((star >> 32) & 0xfffc) as u16;
    x.cpu.gpr[1] = x.next_rip & 0xffff_ffff;
    let f = x.cpu.flags.get();
    x.cpu.flags.set(f & !(VM | IF | RF));
    enter_ring(x, flat_code(sel, 0, false), flat_data(sel + 8, 0));
    x.next_rip = star & 0xffff_ffff;
    Ok(())
}

/// SYSRET — Return From Fast System Call. #UD with EFER.SCE clear; on
/// Intel processors also outside 64-bit mode, and #GP(0) for a
/// non-canonical RCX; on AMD processors #GP(0) outside protected mode, and
/// the legacy-mode return sets IF instead of loading RFLAGS from R11.
fn sysret(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let vendor = x.sys.gate.vendor;
    if x.cpu.efer & EFER_SCE == 0 || (vendor == Vendor::Intel && x.cpu.mode() != Mode::Long64) {
        return Err(Exception::ud().into());
    }
    if x.cpu.mode() == Mode::Real || x.cpu.flags.test(VM) {
        return Err(Exception::gp(0).into());
    }
    require_cpl0(x)?;
    let base = ((x.cpu.msrs.star >> 48) & 0xffff) as u16;
    let to64 = ins.code() == Code::Sysretq;
    let rip = if to64 {
        x.cpu.gpr[1]
    } else {
        x.cpu.gpr[1] & 0xffff_ffff
    };
    if vendor == Vendor::Intel && !is_canonical(rip) {
        return Err(Exception::gp(0).into());
    }
    let cs_sel = if to64 { base.wrapping_add(16) } else { base } | 3;
    let ss_sel = base.wrapping_add(8) | 3;
    if x.cpu.efer & EFER_LMA != 0 {
        x.cpu.flags.set((x.cpu.gpr[11] & 0x3c_7fd7) | 2);
    } else {
        x.cpu.flags.assign(IF, true);
    }
    let ss = match vendor {
        Vendor::Intel => flat_data(ss_sel, 3),
        // Only the selector; the DPL is the CPL, which softvm keeps there.
        Vendor::Amd => Segment {
            selector: ss_sel,
            dpl: 3,
            ..*x.cpu.sreg(SegReg::Ss)
        },
    };
    enter_ring(x, flat_code(cs_sel, 3, to64), ss);
    x.next_rip = rip;
    Ok(())
}

/// SYSENTER and SYSEXIT raise #UD in long mode on AMD processors.
fn sysenter_allowed(x: &Exec) -> ExecResult {
    if x.sys.gate.vendor == Vendor::Amd && x.cpu.efer & EFER_LMA != 0 {
        return Err(Exception::ud().into());
    }
    Ok(())
}

/// SYSENTER — Fast System Call (legacy mode; long mode on Intel
/// processors only).
fn sysenter(x: &mut Exec, _: &Instruction) -> ExecResult {
    sysenter_allowed(x)?;
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

/// SYSEXIT — Fast Return from Fast System Call (legacy mode; long mode on
/// Intel processors only).
fn sysexit(x: &mut Exec, ins: &Instruction) -> ExecResult {
    sysenter_allowed(x)?;
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
