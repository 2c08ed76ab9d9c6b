//! Descriptor-table and machine-status instructions: LGDT, LIDT, SGDT,
//! SIDT, LLDT, LTR, SLDT, STR, LMSW, SMSW, CLTS.

use crate::cpu::state::*;
use crate::cpu::Mode;
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::ops::system::{require_cpl0, write_cr};
use iced_x86::{Code, Instruction, Mnemonic, OpKind};
use softmmu::AccessKind;

/// LGDT/LIDT — Load Global/Interrupt Descriptor Table Register
fn lgdt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    let (seg, off) = x.mem_loc(ins);
    let limit = x.read_seg(seg, off, 2)? as u16;
    let mut base = match x.cpu.mode() {
        Mode::Long64 => x.read_seg(seg, off.wrapping_add(2), 8)?,
        _ => x.read_seg(seg, off.wrapping_add(2), 4)?,
    };
    if x.cpu.mode() != Mode::Long64 && osize_word(ins) {
        base &= 0xff_ffff;
    }
    if x.cpu.mode() == Mode::Long64 && !crate::exec::mem::is_canonical(base) {
        return Err(Exception::gp(0).into());
    }
    let t = crate::api_types::DTable { base, limit };
    if ins.mnemonic() == Mnemonic::Lgdt {
        x.cpu.gdtr = t;
    } else {
        x.cpu.idtr = t;
    }
    Ok(())
}

/// SGDT/SIDT — Store Global/Interrupt Descriptor Table Register
fn sgdt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if x.cpu.cr4 & CR4_UMIP != 0 && x.cpu.cpl() > 0 {
        return Err(Exception::gp(0).into());
    }
    let t = if ins.mnemonic() == Mnemonic::Sgdt {
        x.cpu.gdtr
    } else {
        x.cpu.idtr
    };
    let (seg, off) = x.mem_loc(ins);
    let bsize = if x.cpu.mode() == Mode::Long64 { 8 } else { 4 };
    let la = x.linear(seg, off, 2 + bsize, true)?;
    x.probe_write(la, 2 + bsize)?;
    x.write_seg(seg, off, 2, u64::from(t.limit))?;
    x.write_seg(seg, off.wrapping_add(2), bsize, t.base)
}

/// LLDT — Load Local Descriptor Table Register
fn lldt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    if x.cpu.mode() == Mode::Real {
        return Err(Exception::ud().into());
    }
    let sel = x.read_op(ins, 0)? as u16;
    if sel & 0xfffc == 0 {
        x.cpu.ldtr = crate::api_types::Segment {
            selector: sel,
            unusable: 1,
            ..Default::default()
        };
        return Ok(());
    }
    let (d, _) = system_descriptor(x, sel)?;
    if d.s != 0 || d.type_ != 2 {
        return Err(Exception::gp(u32::from(sel & 0xfffc)).into());
    }
    x.cpu.ldtr = d;
    Ok(())
}

/// Read a system descriptor (16 bytes in long mode) from the GDT.
fn system_descriptor(x: &mut Exec, sel: u16) -> ExecResult<(crate::api_types::Segment, u64)> {
    if sel & 4 != 0 {
        return Err(Exception::gp(u32::from(sel & 0xfffc)).into());
    }
    let raw = x.read_descriptor(sel)?;
    let mut d = crate::system::descriptor::decode(sel, raw);
    if x.cpu.efer & EFER_LMA != 0 {
        let la = x.descriptor_addr(sel, 16)?;
        x.implicit_supervisor = true;
        let hi = x.read_linear(la + 8, 8, AccessKind::Read);
        x.implicit_supervisor = false;
        d.base |= (hi? & 0xffff_ffff) << 32;
    }
    if d.present == 0 {
        return Err(Exception::np(u32::from(sel & 0xfffc)).into());
    }
    Ok((d, raw))
}

/// LTR — Load Task Register (marks the TSS busy)
fn ltr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    if x.cpu.mode() == Mode::Real {
        return Err(Exception::ud().into());
    }
    let sel = x.read_op(ins, 0)? as u16;
    if sel & 0xfffc == 0 {
        return Err(Exception::gp(0).into());
    }
    let (d, raw) = system_descriptor(x, sel)?;
    if d.s != 0 || !(d.type_ == 1 || d.type_ == 9) {
        return Err(Exception::gp(u32::from(sel & 0xfffc)).into());
    }
    let la = x.descriptor_addr(sel, 8)?;
    x.implicit_supervisor = true;
    let r = x.write_linear(la + 5, 1, ((raw >> 40) as u8 | 2) as u64);
    x.implicit_supervisor = false;
    r?;
    let mut d = d;
    d.type_ |= 2;
    x.cpu.tr = d;
    Ok(())
}

/// SLDT/STR — Store LDTR / Task Register
fn sldt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if x.cpu.mode() == Mode::Real {
        return Err(Exception::ud().into());
    }
    if x.cpu.cr4 & CR4_UMIP != 0 && x.cpu.cpl() > 0 {
        return Err(Exception::gp(0).into());
    }
    let sel = if ins.mnemonic() == Mnemonic::Sldt {
        x.cpu.ldtr.selector
    } else {
        x.cpu.tr.selector
    };
    x.write_op(ins, 0, u64::from(sel))
}

/// LMSW — Load Machine Status Word (can set PE, not clear it)
fn lmsw(x: &mut Exec, ins: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    let v = x.read_op(ins, 0)? & 0xf;
    let old = x.cpu.cr0;
    let new = (old & !0xe) | v | (old & CR0_PE);
    write_cr(x, 0, new)
}

/// SMSW — Store Machine Status Word
fn smsw(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if x.cpu.cr4 & CR4_UMIP != 0 && x.cpu.cpl() > 0 {
        return Err(Exception::gp(0).into());
    }
    let v = x.cpu.cr0;
    let v = if ins.op0_kind() == OpKind::Memory {
        v & 0xffff
    } else {
        v
    };
    x.write_op(ins, 0, v)
}

/// CLTS — Clear Task-Switched Flag in CR0
fn clts(x: &mut Exec, _: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    x.cpu.cr0 &= !CR0_TS;
    Ok(())
}

/// 16-bit operand size: LGDT/LIDT then load a 24-bit base.
fn osize_word(ins: &Instruction) -> bool {
    matches!(ins.code(), Code::Lgdt_m1632_16 | Code::Lidt_m1632_16)
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.mnemonic(Mnemonic::Lgdt, lgdt, 0);
    t.mnemonic(Mnemonic::Lidt, lgdt, 0);
    t.mnemonic(Mnemonic::Sgdt, sgdt, 0);
    t.mnemonic(Mnemonic::Sidt, sgdt, 0);
    t.mnemonic(Mnemonic::Lldt, lldt, 0);
    t.mnemonic(Mnemonic::Ltr, ltr, 0);
    t.mnemonic(Mnemonic::Sldt, sldt, 0);
    t.mnemonic(Mnemonic::Str, sldt, 0);
    t.mnemonic(Mnemonic::Lmsw, lmsw, 0);
    t.mnemonic(Mnemonic::Smsw, smsw, 0);
    t.mnemonic(Mnemonic::Clts, clts, 0);
}
