//! Moves between vector registers and general registers or memory, and
//! the masks: MOVD/MOVQ (MM and XMM, to and from r/m32 and r/m64), MOVQ
//! between MM registers and memory, MOVNTQ, MOVNTI, PMOVMSKB, MOVMSKPS,
//! MOVMSKPD, MASKMOVQ, MASKMOVDQU, and EMMS.

use super::lanes::{sign_mask, Lane};
use super::operand::{add_all, forms, width, Align};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Instruction, OpKind, Register};

/// MOVD/MOVQ `vreg, r/m` and MOVQ `mm, mm/m64`: the source zero-extended
/// into the register (the MM forms are the MMX transition as well).
fn load_zx(_a: u128, b: u128, _w: usize) -> u128 {
    b
}

/// MOVD/MOVQ `r/m, vreg`, MOVQ `mm/m64, mm`, MOVNTQ: the low bytes of an
/// MM or XMM register to a general register, memory or an MM register.
fn store_low(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let s = ins.op1_register();
    let mmx = s.is_mm();
    x.simd_check(mmx)?;
    let v = x.vreg(s);
    if ins.op0_kind() == OpKind::Register && ins.op0_register().is_mm() {
        x.set_vreg(ins.op0_register(), v);
        return Ok(());
    }
    x.vstore_op0(ins, v, Align::Aligned)?;
    if mmx {
        x.cpu.fpu.enter_mmx();
    }
    Ok(())
}

/// MOVNTI — Store Doubleword or Quadword Using Non-Temporal Hint (a plain
/// store of a general register: no SSE state is involved, so neither
/// CR0.EM/TS nor CR4.OSFXSR is checked)
fn movnti(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let v = x.reg(ins.op1_register());
    x.write_op(ins, 0, v)
}

/// The sign bits of the lanes of operand 1 into the general register of
/// operand 0.
#[inline(always)]
fn movmsk<T: Lane>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let s = ins.op1_register();
    let mmx = s.is_mm();
    x.simd_check(mmx)?;
    let m = sign_mask::<T>(x.vreg(s), width(s));
    x.set_reg(ins.op0_register(), u64::from(m));
    if mmx {
        x.cpu.fpu.enter_mmx();
    }
    Ok(())
}

/// PMOVMSKB — Move Byte Mask
fn pmovmskb(x: &mut Exec, ins: &Instruction) -> ExecResult {
    movmsk::<u8>(x, ins)
}

/// MOVMSKPS — Extract Packed Single-Precision Floating-Point Sign Mask
fn movmskps(x: &mut Exec, ins: &Instruction) -> ExecResult {
    movmsk::<u32>(x, ins)
}

/// MOVMSKPD — Extract Packed Double-Precision Floating-Point Sign Mask
fn movmskpd(x: &mut Exec, ins: &Instruction) -> ExecResult {
    movmsk::<u64>(x, ins)
}

/// MASKMOVQ, MASKMOVDQU — Store Selected Bytes: the bytes of operand 1
/// whose byte in operand 2 has bit 7 set, to DS:rDI (segment override
/// allowed). Write access to the whole 8 or 16 bytes is checked first,
/// even with an all-zero mask (what the host does); then only the
/// selected bytes are written, so bytes next to them that another vCPU
/// writes at the same time keep its value.
fn maskmov(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let data = ins.op1_register();
    let mmx = data.is_mm();
    x.simd_check(mmx)?;
    let w = width(data);
    let bytes = x.vreg(data).to_le_bytes();
    let mask = x.vreg(ins.op2_register()).to_le_bytes();
    let (di, amask) = match ins.op0_kind() {
        OpKind::MemorySegDI => (Register::DI, 0xffff),
        OpKind::MemorySegEDI => (Register::EDI, 0xffff_ffff),
        _ => (Register::RDI, u64::MAX),
    };
    let seg = crate::exec::operand::seg_of(ins.memory_segment());
    let off = x.reg(di);
    x.probe_write_bytes(seg, off, w)?;
    let mut i = 0;
    while i < w {
        if mask[i] & 0x80 == 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < w && mask[i] & 0x80 != 0 {
            i += 1;
        }
        x.write_bytes(
            seg,
            off.wrapping_add(start as u64) & amask,
            &bytes[start..i],
        )?;
    }
    if mmx {
        x.cpu.fpu.enter_mmx();
    }
    Ok(())
}

/// EMMS — Empty MMX Technology State (every x87 register tagged empty)
fn emms(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    x.mmx_check()?;
    x.cpu.fpu.emms();
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use iced_x86::Code::*;
    forms!(
        t,
        packed(load_zx),
        [
            Movd_mm_rm32,
            Movq_mm_rm64,
            Movd_xmm_rm32,
            Movq_xmm_rm64,
            Movq_mm_mmm64
        ]
    );
    add_all(
        t,
        &[
            Movd_rm32_mm,
            Movq_rm64_mm,
            Movd_rm32_xmm,
            Movq_rm64_xmm,
            Movq_mmm64_mm,
            Movntq_m64_mm,
        ],
        store_low,
    );
    t.add(Movnti_m32_r32, movnti, 0);
    t.add(Movnti_m64_r64, movnti, 0);
    add_all(
        t,
        &[
            Pmovmskb_r32_mm,
            Pmovmskb_r64_mm,
            Pmovmskb_r32_xmm,
            Pmovmskb_r64_xmm,
        ],
        pmovmskb,
    );
    t.add(Movmskps_r32_xmm, movmskps, 0);
    t.add(Movmskps_r64_xmm, movmskps, 0);
    t.add(Movmskpd_r32_xmm, movmskpd, 0);
    t.add(Movmskpd_r64_xmm, movmskpd, 0);
    t.add(Maskmovq_rDI_mm_mm, maskmov, 0);
    t.add(Maskmovdqu_rDI_xmm_xmm, maskmov, 0);
    t.add(Emms, emms, 0);
}
