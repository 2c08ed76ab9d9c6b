//! Far-pointer loads and descriptor inspection: LDS, LES, LFS, LGS, LSS,
//! LAR, LSL, VERR, VERW; and PUSHA/POPA, the legacy all-register stack
//! instructions.

use crate::cpu::flags::{mask, ZF};
use crate::cpu::state::EFER_LMA;
use crate::cpu::{Mode, SegReg};
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::system::descriptor::decode;
use iced_x86::{Code, Instruction, Mnemonic};

/// LDS/LES/LFS/LGS/LSS — Load Far Pointer: the offset, then the selector
/// after it; the segment is loaded with MOV Sreg's checks.
fn lxs(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let (seg, off) = x.mem_loc(ins);
    let ptr = x.read_seg(seg, off, size as usize)?;
    let sel = x.read_seg(seg, off.wrapping_add(u64::from(size)), 2)? as u16;
    let target = match ins.mnemonic() {
        Mnemonic::Lds => SegReg::Ds,
        Mnemonic::Les => SegReg::Es,
        Mnemonic::Lfs => SegReg::Fs,
        Mnemonic::Lgs => SegReg::Gs,
        _ => SegReg::Ss,
    };
    x.load_data_segment(target, sel)?;
    if target == SegReg::Ss {
        x.signals.shadow = true;
    }
    x.set_reg(ins.op0_register(), ptr);
    Ok(())
}

/// What LAR/LSL/VERR/VERW may look at: the raw descriptor if the selector
/// is in the table and visible at the current privilege, else `None`
/// (ZF = 0, no fault other than a #PF/#GP from reading the table).
fn inspect(x: &mut Exec, sel: u16, lsl: bool) -> ExecResult<Option<u64>> {
    if sel & 0xfffc == 0 {
        return Ok(None);
    }
    let in_table = x.descriptor_addr(sel, 8).is_ok();
    if !in_table {
        return Ok(None);
    }
    let raw = x.read_descriptor(sel)?;
    let d = decode(sel, raw);
    let long = x.cpu.efer & EFER_LMA != 0;
    if d.s == 0 {
        let ok = match (long, lsl) {
            (false, false) => matches!(d.type_, 1 | 2 | 3 | 4 | 5 | 9 | 0xb | 0xc),
            (false, true) => matches!(d.type_, 1 | 2 | 3 | 9 | 0xb),
            (true, false) => matches!(d.type_, 2 | 9 | 0xb | 0xc),
            (true, true) => matches!(d.type_, 2 | 9 | 0xb),
        };
        if !ok {
            return Ok(None);
        }
    }
    let conforming_code = d.s != 0 && d.type_ & 0xc == 0xc;
    let cpl = x.cpu.cpl();
    let rpl = (sel & 3) as u8;
    if !conforming_code && d.dpl < cpl.max(rpl) {
        return Ok(None);
    }
    Ok(Some(raw))
}

fn set_zf(x: &mut Exec, on: bool) {
    x.cpu.flags.set_arith(ZF, if on { ZF } else { 0 });
}

fn protected_only(x: &Exec) -> ExecResult {
    if x.cpu.mode() == Mode::Real {
        return Err(Exception::ud().into());
    }
    Ok(())
}

/// LAR — Load Access Rights Byte
fn lar(x: &mut Exec, ins: &Instruction) -> ExecResult {
    protected_only(x)?;
    let sel = x.read_op(ins, 1)? as u16;
    match inspect(x, sel, false)? {
        Some(raw) => {
            let size = x.osize(ins);
            let v = (raw >> 32) & 0x00ff_ff00 & mask(size);
            x.set_reg(ins.op0_register(), v);
            set_zf(x, true);
        }
        None => set_zf(x, false),
    }
    Ok(())
}

/// LSL — Load Segment Limit (the limit in bytes, after granularity).
fn lsl(x: &mut Exec, ins: &Instruction) -> ExecResult {
    protected_only(x)?;
    let sel = x.read_op(ins, 1)? as u16;
    match inspect(x, sel, true)? {
        Some(raw) => {
            let size = x.osize(ins);
            let v = u64::from(decode(sel, raw).limit) & mask(size);
            x.set_reg(ins.op0_register(), v);
            set_zf(x, true);
        }
        None => set_zf(x, false),
    }
    Ok(())
}

/// VERR/VERW — Verify a Segment for Reading or Writing
fn verr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    protected_only(x)?;
    let sel = x.read_op(ins, 0)? as u16;
    let write = ins.mnemonic() == Mnemonic::Verw;
    let ok = match inspect(x, sel, false)? {
        Some(raw) => {
            let d = decode(sel, raw);
            let code = d.type_ & 8 != 0;
            d.s != 0
                && if write {
                    !code && d.type_ & 2 != 0
                } else {
                    !code || d.type_ & 2 != 0
                }
        }
        None => false,
    };
    set_zf(x, ok);
    Ok(())
}

/// PUSHA/PUSHAD — Push All General-Purpose Registers (the stack pointer
/// pushed is its value before the instruction).
fn pusha(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = if ins.code() == Code::Pushaw { 2 } else { 4 };
    let old_sp = x.cpu.gpr[4];
    let regs = [0usize, 1, 2, 3, 4, 5, 6, 7].map(|i| if i == 4 { old_sp } else { x.cpu.gpr[i] });
    for v in regs {
        if let Err(e) = x.push(v & mask(size), size) {
            x.cpu.gpr[4] = old_sp;
            return Err(e);
        }
    }
    Ok(())
}

/// POPA/POPAD — Pop All General-Purpose Registers (the stack pointer
/// image is skipped).
fn popa(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = if ins.code() == Code::Popaw { 2 } else { 4 };
    let mut vals = [0u64; 8];
    for (k, v) in vals.iter_mut().enumerate() {
        *v = x.peek(size, u64::from(size) * k as u64)?;
    }
    for (k, reg) in [7usize, 6, 5, 4, 3, 2, 1, 0].into_iter().enumerate() {
        if reg != 4 {
            x.set_gpr(reg, size, vals[k]);
        }
    }
    let ss = x.stack_size();
    let sp = x.cpu.gpr[4].wrapping_add(8 * u64::from(size));
    x.set_gpr(4, ss, sp);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    for m in [
        Mnemonic::Lds,
        Mnemonic::Les,
        Mnemonic::Lfs,
        Mnemonic::Lgs,
        Mnemonic::Lss,
    ] {
        t.mnemonic(m, lxs, 0);
    }
    t.mnemonic(Mnemonic::Lar, lar, 0);
    t.mnemonic(Mnemonic::Lsl, lsl, 0);
    t.mnemonic(Mnemonic::Verr, verr, 0);
    t.mnemonic(Mnemonic::Verw, verr, 0);
    t.mnemonic(Mnemonic::Pusha, pusha, 0);
    t.mnemonic(Mnemonic::Pushad, pusha, 0);
    t.mnemonic(Mnemonic::Popa, popa, 0);
    t.mnemonic(Mnemonic::Popad, popa, 0);
}
