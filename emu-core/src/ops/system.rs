//! System instructions: control and debug registers, MSRs, descriptor
//! tables, segment register loads, far transfers, IRET, software
//! interrupts, CLI/STI, HLT, port I/O, SYSCALL/SYSRET, SWAPGS.

use crate::cpu::flags::{IF, IOPL};
use crate::cpu::state::*;
use crate::cpu::{Mode, SegReg};
use crate::exception::{Exception, ExecResult, Fault};
use crate::exec::operand::seg_of;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::ops::msr;
use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};
use softmmu::{AccessKind, Flush, Gva, PagingCtx};

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
            8 => u64::from(x.sys.apic.tpr() >> 4),
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
            let mut efer = x.cpu.efer;
            let enabling_pg = v & CR0_PG != 0 && old & CR0_PG == 0;
            if enabling_pg && efer & EFER_LME != 0 {
                if x.cpu.cr4 & CR4_PAE == 0 || x.cpu.sreg(SegReg::Cs).l != 0 {
                    return Err(gp());
                }
                efer |= EFER_LMA;
            }
            if v & CR0_PG == 0 && old & CR0_PG != 0 && efer & EFER_LMA != 0 {
                if x.cpu.mode() == Mode::Long64 {
                    return Err(gp());
                }
                efer &= !EFER_LMA;
            }
            if v & CR0_PG == 0 && x.cpu.cr4 & CR4_PCIDE != 0 {
                return Err(gp());
            }
            let v = v | CR0_ET;
            if (old ^ v) & (CR0_CD | CR0_NW | CR0_PG) != 0 {
                load_pdptes(x, v, x.cpu.cr3, x.cpu.cr4, efer)?;
            }
            x.cpu.efer = efer;
            x.cpu.cr0 = v;
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
            load_pdptes(x, x.cpu.cr0, v, x.cpu.cr4, x.cpu.efer)?;
            x.cpu.cr3 = v;
            if !noflush {
                let pcid = if pcide { (v & 0xfff) as u16 } else { 0 };
                x.mmu.flush(Flush::NonGlobal { pcid });
            }
        }
        4 => {
            // OSXSAVE only on a model with XSAVE (SDM Vol. 3A, 2.5).
            let xsave = x
                .sys
                .gate
                .features
                .contains(crate::cpu::model::Feature::Xsave);
            let known = CR4_KNOWN | if xsave { CR4_OSXSAVE } else { 0 };
            if v & !known != 0 {
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
            if (old ^ v) & (CR4_PAE | CR4_PGE | CR4_PSE | CR4_SMEP) != 0 {
                load_pdptes(x, x.cpu.cr0, x.cpu.cr3, v, x.cpu.efer)?;
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
            // CR8 is the APIC's TPR[7:4].
            x.cpu.cr8 = v;
            x.sys.apic.set_tpr((v as u8) << 4);
            x.sys.apic_touched = true;
        }
        _ => return Err(Exception::ud().into()),
    }
    Ok(())
}

/// PAE paging's PDPTE registers (SDM Vol. 3A 4.4.1) are loaded by MOV to
/// CR3, and by MOV to CR0/CR4 that changes CR0.CD/NW/PG or
/// CR4.PAE/PGE/PSE/SMEP, when PAE paging is in use after the instruction
/// (the MMU does nothing otherwise). A present PDPTE with a reserved bit
/// set makes the instruction raise #GP(0) with no effect, so this runs
/// before anything is committed.
fn load_pdptes(x: &mut Exec, cr0: u64, cr3: u64, cr4: u64, efer: u64) -> ExecResult {
    let ctx = PagingCtx {
        cr0,
        cr3,
        cr4,
        efer,
        ac: false,
    };
    x.mmu.load_pdptes(&ctx).map_err(|_| Exception::gp(0).into())
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
        2 => x.mmu.flush(Flush::All),
        3 => x.mmu.flush(Flush::AllNonGlobal),
        _ => return Err(Exception::gp(0).into()),
    }
    Ok(())
}

/// WBINVD/INVD: nothing to write back in an interpreter; CPL 0 only.
fn wbinvd(x: &mut Exec, _: &Instruction) -> ExecResult {
    require_cpl0(x)
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

/// STAC/CLAC — Set/Clear AC Flag in EFLAGS (with CR4.SMAP, AC=1 lets the
/// supervisor access user pages). SDM Vol. 2: #UD if CPL > 0, in
/// virtual-8086 mode, or if CPUID.(EAX=07H,ECX=0H):EBX.SMAP[bit 20] = 0
/// (that last check is the gate's, as for every CPUID feature).
fn stac_clac(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let v86 = x.cpu.flags.test(crate::cpu::flags::VM);
    if v86 || (x.cpu.mode() != Mode::Real && x.cpu.cpl() != 0) {
        return Err(Exception::ud().into());
    }
    x.cpu
        .flags
        .assign(crate::cpu::flags::AC, ins.mnemonic() == Mnemonic::Stac);
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
    t.mnemonic(Mnemonic::Invlpg, invlpg, 0);
    t.mnemonic(Mnemonic::Invpcid, invpcid, 0);
    t.mnemonic(Mnemonic::Wbinvd, wbinvd, 0);
    t.mnemonic(Mnemonic::Invd, wbinvd, 0);
    t.mnemonic(Mnemonic::Rdmsr, rdmsr, 0);
    t.mnemonic(Mnemonic::Wrmsr, wrmsr, 0);
    t.mnemonic(Mnemonic::Cli, cli, 0);
    t.mnemonic(Mnemonic::Sti, sti, 0);
    t.mnemonic(Mnemonic::Hlt, hlt, 0);
    t.mnemonic(Mnemonic::In, in_, 0);
    t.mnemonic(Mnemonic::Out, out, 0);
    t.mnemonic(Mnemonic::Swapgs, swapgs, 0);
    t.mnemonic(Mnemonic::Stac, stac_clac, 0);
    t.mnemonic(Mnemonic::Clac, stac_clac, 0);
}
