//! System instructions: control and debug registers, MSRs, descriptor
//! tables, segment register loads, far transfers, IRET, software
//! interrupts, CLI/STI, HLT, port I/O, SYSCALL/SYSRET, SWAPGS.

use crate::cpu::flags::{self, IF, IOPL};
use crate::cpu::state::*;
use crate::cpu::{Mode, SegReg};
use crate::exception::{Exception, ExecResult, Fault};
use crate::exec::operand::seg_of;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::ops::msr;
use crate::system::interrupt::{Delivery, Event};
use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};
use softmmu::{AccessKind, Flush, Gva};

/// #GP(0) unless CPL is 0.
pub fn require_cpl0(x: &Exec) -> ExecResult {
    if x.cpu.mode() != Mode::Real && x.cpu.cpl() != 0 {
        return Err(Exception::gp(0).into());
    }
    Ok(())
}

/// Port I/O permission: CPL <= IOPL, else the TSS I/O bitmap decides
/// (SDM Vol. 1, 19.5).
pub fn check_io(x: &mut Exec, port: u16, size: u8) -> ExecResult {
    let iopl = ((x.cpu.flags.get() & IOPL) >> 12) as u8;
    if x.cpu.mode() == Mode::Real || x.cpu.cpl() <= iopl {
        return Ok(());
    }
    let tr = x.cpu.tr;
    if tr.type_ & 8 == 0 || tr.limit < 0x67 {
        return Err(Exception::gp(0).into());
    }
    x.implicit_supervisor = true;
    let base_la = x.wrap_la(tr.base + 0x66);
    let r = x.read_linear(base_la, 2, AccessKind::Read);
    x.implicit_supervisor = false;
    let map = r?;
    let byte = map + u64::from(port / 8);
    if byte + 1 > u64::from(tr.limit) {
        return Err(Exception::gp(0).into());
    }
    x.implicit_supervisor = true;
    let la = x.wrap_la(tr.base + byte);
    let r = x.read_linear(la, 2, AccessKind::Read);
    x.implicit_supervisor = false;
    let bits = r?;
    let m = ((1u64 << size) - 1) << (port % 8);
    if bits & m != 0 {
        return Err(Exception::gp(0).into());
    }
    Ok(())
}

/// The control register number of a MOV CRn operand.
fn cr_num(r: Register) -> usize {
    r as usize - Register::CR0 as usize
}

/// MOV — Move to/from Control Registers
fn mov_cr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    let long = x.cpu.mode() == Mode::Long64;
    let m = if long { u64::MAX } else { 0xffff_ffff };
    if ins.op0_register().is_cr() {
        let n = cr_num(ins.op0_register());
        let v = x.reg(ins.op1_register()) & m;
        write_cr(x, n, v)
    } else {
        let n = cr_num(ins.op1_register());
        let v = match n {
            0 => x.cpu.cr0,
            2 => x.cpu.cr2,
            3 => x.cpu.cr3,
            4 => x.cpu.cr4,
            8 => x.cpu.cr8 & 0xf,
            _ => return Err(Exception::ud().into()),
        };
        x.set_reg(ins.op0_register(), v & m);
        Ok(())
    }
}

const CR4_KNOWN: u64 = CR4_VME
    | CR4_PVI
    | CR4_TSD
    | CR4_DE
    | CR4_PSE
    | CR4_PAE
    | CR4_MCE
    | CR4_PGE
    | CR4_PCE
    | CR4_OSFXSR
    | CR4_OSXMMEXCPT
    | CR4_UMIP
    | CR4_FSGSBASE
    | CR4_PCIDE
    | CR4_SMEP
    | CR4_SMAP;

/// Write CRn with the consistency checks of SDM Vol. 3A 2.5 and MOV CR.
pub fn write_cr(x: &mut Exec, n: usize, v: u64) -> ExecResult {
    let gp = || -> Fault { Exception::gp(0).into() };
    match n {
        0 => {
            if v >> 32 != 0
                || (v & CR0_PG != 0 && v & CR0_PE == 0)
                || (v & CR0_NW != 0 && v & CR0_CD == 0)
            {
                return Err(gp());
            }
            let old = x.cpu.cr0;
            let enabling_pg = v & CR0_PG != 0 && old & CR0_PG == 0;
            if enabling_pg && x.cpu.efer & EFER_LME != 0 {
                if x.cpu.cr4 & CR4_PAE == 0 || x.cpu.sreg(SegReg::Cs).l != 0 {
                    return Err(gp());
                }
                x.cpu.efer |= EFER_LMA;
            }
            if v & CR0_PG == 0 && old & CR0_PG != 0 && x.cpu.efer & EFER_LMA != 0 {
                if x.cpu.mode() == Mode::Long64 {
                    return Err(gp());
                }
                x.cpu.efer &= !EFER_LMA;
            }
            if v & CR0_PG == 0 && x.cpu.cr4 & CR4_PCIDE != 0 {
                return Err(gp());
            }
            x.cpu.cr0 = v | CR0_ET;
            x.cpu.update_mode();
            if (old ^ v) & (CR0_PG | CR0_WP | CR0_PE) != 0 {
                x.mmu.flush(Flush::All);
            }
            x.signals.mode_changed = true;
        }
        2 => x.cpu.cr2 = v,
        3 => {
            let pcide = x.cpu.cr4 & CR4_PCIDE != 0;
            let noflush = pcide && v & (1 << 63) != 0;
            let v = if pcide { v & !(1 << 63) } else { v };
            if x.cpu.efer & EFER_LMA != 0 && v >> 52 != 0 {
                return Err(gp());
            }
            x.cpu.cr3 = v;
            if !noflush {
                let pcid = if pcide { (v & 0xfff) as u16 } else { 0 };
                x.mmu.flush(Flush::NonGlobal { pcid });
            }
        }
        4 => {
            if v & !CR4_KNOWN != 0 {
                return Err(gp());
            }
            let old = x.cpu.cr4;
            if x.cpu.efer & EFER_LMA != 0 && v & CR4_PAE == 0 {
                return Err(gp());
            }
            if v & CR4_PCIDE != 0
                && old & CR4_PCIDE == 0
                && (x.cpu.cr3 & 0xfff != 0 || x.cpu.efer & EFER_LMA == 0)
            {
                return Err(gp());
            }
            x.cpu.cr4 = v;
            if (old ^ v) & (CR4_PGE | CR4_PAE | CR4_PSE | CR4_SMEP | CR4_SMAP | CR4_PCIDE) != 0 {
                x.mmu.flush(Flush::All);
            }
        }
        8 => {
            if v & !0xf != 0 {
                return Err(gp());
            }
            x.cpu.cr8 = v;
        }
        _ => return Err(Exception::ud().into()),
    }
    Ok(())
}

/// MOV — Move to/from Debug Registers (stored; breakpoints not armed).
fn mov_dr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    let to_dr = ins.op0_register().is_dr();
    let r = if to_dr {
        ins.op0_register()
    } else {
        ins.op1_register()
    };
    let mut n = r as usize - Register::DR0 as usize;
    if n == 4 || n == 5 {
        if x.cpu.cr4 & CR4_DE != 0 {
            return Err(Exception::ud().into());
        }
        n += 2;
    }
    if to_dr {
        let v = x.reg(ins.op1_register());
        x.cpu.dr[n] = match n {
            6 => (v & 0xf00f) | 0xffff_0ff0,
            7 => (v & 0xffff_2bff) | 0x400,
            _ => v,
        };
    } else {
        let v = x.cpu.dr[n];
        x.set_reg(ins.op0_register(), v);
    }
    Ok(())
}

/// MOV — Move to/from Segment Registers
fn mov_sreg(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() {
        let r = ins.op0_register();
        if r == Register::CS {
            return Err(Exception::ud().into());
        }
        let sel = x.read_op(ins, 1)? as u16;
        x.load_data_segment(seg_of(r), sel)?;
        if r == Register::SS {
            x.signals.shadow = true;
        }
        Ok(())
    } else {
        let sel = u64::from(x.cpu.sreg(seg_of(ins.op1_register())).selector);
        // A register destination is zero-extended (32/64-bit forms).
        x.write_op(ins, 0, sel)
    }
}

/// PUSH/POP of a segment register.
fn push_sreg(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = ins.stack_pointer_increment().unsigned_abs() as u8;
    let sel = x.cpu.sreg(seg_of(ins.op0_register())).selector;
    x.push(u64::from(sel), size)
}

fn pop_sreg(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = ins.stack_pointer_increment().unsigned_abs() as u8;
    let sel = x.peek(size, 0)? as u16;
    let r = ins.op0_register();
    x.load_data_segment(seg_of(r), sel)?;
    let ss = x.stack_size();
    let sp = x.cpu.gpr[4].wrapping_add(u64::from(size));
    x.set_gpr(4, ss, sp);
    if r == Register::SS {
        x.signals.shadow = true;
    }
    Ok(())
}

/// LGDT/LIDT — Load Global/Interrupt Descriptor Table Register
fn lgdt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    let (seg, off) = x.mem_loc(ins);
    let limit = x.read_seg(seg, off, 2)? as u16;
    let mut base = match x.cpu.mode() {
        Mode::Long64 => x.read_seg(seg, off.wrapping_add(2), 8)?,
        _ => x.read_seg(seg, off.wrapping_add(2), 4)?,
    };
    if x.cpu.mode() != Mode::Long64 && x.osize_word(ins) {
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

/// INVLPG — Invalidate TLB Entries
fn invlpg(x: &mut Exec, ins: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    let (seg, off) = x.mem_loc(ins);
    let la = match x.cpu.mode() {
        Mode::Long64 => {
            let base = if matches!(seg, SegReg::Fs | SegReg::Gs) {
                x.cpu.sreg(seg).base
            } else {
                0
            };
            base.wrapping_add(off)
        }
        _ => x.cpu.sreg(seg).base.wrapping_add(off) & 0xffff_ffff,
    };
    x.mmu.flush(Flush::Page(Gva::new(la)));
    Ok(())
}

/// INVPCID — Invalidate Process-Context Identifier
fn invpcid(x: &mut Exec, ins: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    let ty = x.reg(ins.op0_register());
    let (seg, off) = x.mem_loc(ins);
    let pcid = x.read_seg(seg, off, 8)?;
    let addr = x.read_seg(seg, off.wrapping_add(8), 8)?;
    if pcid > 0xfff {
        return Err(Exception::gp(0).into());
    }
    let pcid = pcid as u16;
    match ty {
        0 => {
            if !crate::exec::mem::is_canonical(addr) {
                return Err(Exception::gp(0).into());
            }
            x.mmu.flush(Flush::PcidPage {
                pcid,
                gva: Gva::new(addr),
            })
        }
        1 => x.mmu.flush(Flush::Pcid { pcid }),
        2 | 3 => x.mmu.flush(Flush::All),
        _ => return Err(Exception::gp(0).into()),
    }
    Ok(())
}

/// WBINVD/INVD: nothing to write back in an interpreter; CPL 0 only.
fn wbinvd(x: &mut Exec, _: &Instruction) -> ExecResult {
    require_cpl0(x)
}

/// CLFLUSH/CLFLUSHOPT: fault like a byte load, otherwise a no-op.
fn clflush(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let (seg, off) = x.mem_loc(ins);
    x.read_seg(seg, off, 1).map(|_| ())
}

/// RDMSR — Read from Model Specific Register
fn rdmsr(x: &mut Exec, _: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    let v = msr::read(x, x.cpu.gpr[1] as u32)?;
    x.set_gpr(0, 4, v & 0xffff_ffff);
    x.set_gpr(2, 4, v >> 32);
    Ok(())
}

/// WRMSR — Write to Model Specific Register
fn wrmsr(x: &mut Exec, _: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    let v = (x.cpu.gpr[0] & 0xffff_ffff) | (x.cpu.gpr[2] << 32);
    msr::write(x, x.cpu.gpr[1] as u32, v)
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
    if call {
        let old_sp = x.cpu.gpr[4];
        let r = x.push(old_cs, osize).and_then(|_| x.push(ret, osize));
        if r.is_err() {
            x.cpu.gpr[4] = old_sp;
            return r;
        }
    }
    let limit_ok = cs.l != 0 || off <= u64::from(cs.limit);
    if !limit_ok {
        return Err(Exception::gp(0).into());
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
    if rpl > cpl {
        let new_sp = x.peek(osize, 2 * osize as u64 + extra)?;
        let new_ss = x.peek(osize, 3 * osize as u64 + extra)? as u16;
        x.set_cs(cs);
        x.cpu.sreg_mut(SegReg::Ss).dpl = rpl;
        x.load_data_segment(SegReg::Ss, new_ss)?;
        x.cpu.gpr[4] = new_sp.wrapping_add(extra);
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
    let long = x.cpu.efer & EFER_LMA != 0;
    if rpl > cpl || mode == Mode::Long64 {
        let new_sp = x.peek(osize, 3 * osize as u64)?;
        let new_ss = x.peek(osize, 4 * osize as u64)? as u16;
        let saved = x.cpu.seg;
        x.set_cs(cs);
        x.cpu.sreg_mut(SegReg::Ss).dpl = rpl;
        if let Err(e) = x.load_data_segment(SegReg::Ss, new_ss) {
            x.cpu.seg = saved;
            x.cpu.update_mode();
            return Err(e);
        }
        x.cpu.gpr[4] = if long { new_sp } else { new_sp & 0xffff_ffff };
    } else {
        x.set_cs(cs);
        let sp = x.cpu.gpr[4].wrapping_add(3 * osize as u64);
        x.set_gpr(4, ss, sp);
    }
    x.cpu.flags.set(newf);
    x.next_rip = ip;
    Ok(())
}

/// INT n / INT3 / INTO / INT1: delivered here, after RIP has advanced.
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
    x.cpu.rip = x.next_rip;
    match x.deliver(ev) {
        Delivery::Delivered => {
            x.next_rip = x.cpu.rip;
            Ok(())
        }
        Delivery::TripleFault => {
            x.signals.shutdown = true;
            x.next_rip = x.cpu.rip;
            Ok(())
        }
        Delivery::Exit => Err(Fault::Unimplemented),
    }
}

/// CLI — Clear Interrupt Flag
fn cli(x: &mut Exec, _: &Instruction) -> ExecResult {
    let iopl = ((x.cpu.flags.get() & IOPL) >> 12) as u8;
    if x.cpu.mode() != Mode::Real && x.cpu.cpl() > iopl {
        return Err(Exception::gp(0).into());
    }
    x.cpu.flags.assign(IF, false);
    Ok(())
}

/// STI — Set Interrupt Flag (interrupts wait one more instruction).
fn sti(x: &mut Exec, _: &Instruction) -> ExecResult {
    let iopl = ((x.cpu.flags.get() & IOPL) >> 12) as u8;
    if x.cpu.mode() != Mode::Real && x.cpu.cpl() > iopl {
        return Err(Exception::gp(0).into());
    }
    if !x.cpu.flags.test(IF) {
        x.signals.shadow = true;
    }
    x.cpu.flags.assign(IF, true);
    Ok(())
}

/// HLT — Halt
fn hlt(x: &mut Exec, _: &Instruction) -> ExecResult {
    require_cpl0(x)?;
    x.signals.halt = true;
    Ok(())
}

/// The port of IN/OUT: DX or an 8-bit immediate.
fn port_of(x: &Exec, ins: &Instruction, n: u32) -> u16 {
    match ins.op_kind(n) {
        OpKind::Register => x.cpu.gpr[2] as u16,
        _ => ins.immediate8() as u16,
    }
}

/// IN — Input from Port
fn in_(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = ins.op0_register().size() as u8;
    let port = port_of(x, ins, 1);
    check_io(x, port, size)?;
    let v = x.io.pio_in(port, size)?;
    x.set_reg(ins.op0_register(), v);
    Ok(())
}

/// OUT — Output to Port
fn out(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = ins.op1_register().size() as u8;
    let port = port_of(x, ins, 0);
    check_io(x, port, size)?;
    let v = x.reg(ins.op1_register());
    x.io.pio_out(port, size, v as u32);
    Ok(())
}

/// SWAPGS — Swap GS Base Register
fn swapgs(x: &mut Exec, _: &Instruction) -> ExecResult {
    if x.cpu.mode() != Mode::Long64 {
        return Err(Exception::ud().into());
    }
    require_cpl0(x)?;
    let gs = x.cpu.sreg(SegReg::Gs).base;
    x.cpu.sreg_mut(SegReg::Gs).base = x.cpu.msrs.kernel_gs_base;
    x.cpu.msrs.kernel_gs_base = gs;
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    let name = |c: Code| format!("{c:?}");
    t.mnemonic_where(Mnemonic::Mov, mov_cr, 0, move |c| name(c).contains("cr"));
    t.mnemonic_where(Mnemonic::Mov, mov_dr, 0, move |c| name(c).contains("dr"));
    t.mnemonic_where(Mnemonic::Mov, mov_sreg, 0, move |c| {
        name(c).contains("Sreg")
    });
    let sreg_form = move |c: Code| {
        let s = name(c);
        ["ES", "CS", "SS", "DS", "FS", "GS"]
            .iter()
            .any(|r| s.contains(r))
    };
    t.mnemonic_where(Mnemonic::Push, push_sreg, 0, sreg_form);
    t.mnemonic_where(Mnemonic::Pop, pop_sreg, 0, sreg_form);
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
    t.mnemonic(Mnemonic::Invlpg, invlpg, 0);
    t.mnemonic(Mnemonic::Invpcid, invpcid, 0);
    t.mnemonic(Mnemonic::Wbinvd, wbinvd, 0);
    t.mnemonic(Mnemonic::Invd, wbinvd, 0);
    t.mnemonic(Mnemonic::Clflush, clflush, 0);
    t.mnemonic(Mnemonic::Clflushopt, clflush, 0);
    t.mnemonic(Mnemonic::Rdmsr, rdmsr, 0);
    t.mnemonic(Mnemonic::Wrmsr, wrmsr, 0);
    let far = move |c: Code| {
        let s = name(c);
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
    t.mnemonic(Mnemonic::Cli, cli, 0);
    t.mnemonic(Mnemonic::Sti, sti, 0);
    t.mnemonic(Mnemonic::Hlt, hlt, 0);
    t.mnemonic(Mnemonic::In, in_, 0);
    t.mnemonic(Mnemonic::Out, out, 0);
    t.mnemonic(Mnemonic::Swapgs, swapgs, 0);
}

impl Exec<'_> {
    /// 16-bit operand size (LGDT/LIDT then load a 24-bit base).
    fn osize_word(&self, ins: &Instruction) -> bool {
        matches!(ins.code(), Code::Lgdt_m1632_16 | Code::Lidt_m1632_16)
    }
}
