//! Moves between XMM registers and memory: MOVAPS, MOVAPD, MOVDQA,
//! MOVUPS, MOVUPD, MOVDQU, LDDQU, the non-temporal MOVNTPS, MOVNTPD,
//! MOVNTDQ, MOVNTDQA (the hint changes nothing here: softvm has no cache
//! to bypass), the scalar MOVSS and MOVSD, the half-register MOVLPS,
//! MOVHPS, MOVLPD, MOVHPD, MOVHLPS, MOVLHPS, MOVQ between XMM registers and
//! memory, and MOVQ2DQ/MOVDQ2Q between MM and XMM registers.
//!
//! The full-width loads and stores are what compiled memcpy, memset and
//! struct copies use, so their handlers go straight to the register file
//! and the 16-byte memory helpers.

use super::lanes::trunc;
use super::operand::{add_all, forms, Align};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Instruction, OpKind};

/// The low quadword of a vector.
const LOW: u128 = u64::MAX as u128;

/// `xmm ← xmm/m128`.
#[inline(always)]
fn load(x: &mut Exec, ins: &Instruction, align: Align) -> ExecResult {
    x.sse_check()?;
    let v = x.vsrc(ins, 1, align)?;
    x.set_xmm(ins.op0_register(), v);
    Ok(())
}

/// `xmm/m128 ← xmm`.
#[inline(always)]
fn store(x: &mut Exec, ins: &Instruction, align: Align) -> ExecResult {
    x.sse_check()?;
    let v = x.xmm(ins.op1_register());
    if ins.op0_kind() == OpKind::Register {
        x.set_xmm(ins.op0_register(), v);
        return Ok(());
    }
    let (seg, off) = x.mem_loc(ins);
    x.store_vec(seg, off, 16, v, align)
}

/// MOVAPS, MOVAPD, MOVDQA, MOVNTDQA — aligned loads (#GP(0) unless the
/// operand is 16-byte aligned)
fn load_aligned(x: &mut Exec, ins: &Instruction) -> ExecResult {
    load(x, ins, Align::Aligned)
}

/// MOVUPS, MOVUPD, MOVDQU, LDDQU — unaligned loads
fn load_unaligned(x: &mut Exec, ins: &Instruction) -> ExecResult {
    load(x, ins, Align::Unaligned)
}

/// MOVAPS, MOVAPD, MOVDQA, MOVNTPS, MOVNTPD, MOVNTDQ — aligned stores
fn store_aligned(x: &mut Exec, ins: &Instruction) -> ExecResult {
    store(x, ins, Align::Aligned)
}

/// MOVUPS, MOVUPD, MOVDQU — unaligned stores
fn store_unaligned(x: &mut Exec, ins: &Instruction) -> ExecResult {
    store(x, ins, Align::Unaligned)
}

/// MOVSS/MOVSD `xmm, xmm/m32|m64`: from a register the low `bytes` are
/// merged into the destination; from memory the destination is the value
/// zero-extended.
#[inline(always)]
fn scalar_load(x: &mut Exec, ins: &Instruction, bytes: usize) -> ExecResult {
    x.sse_check()?;
    let d = ins.op0_register();
    let v = if ins.op1_kind() == OpKind::Register {
        let m = trunc(u128::MAX, bytes);
        (x.xmm(d) & !m) | (x.xmm(ins.op1_register()) & m)
    } else {
        x.vsrc(ins, 1, Align::Aligned)?
    };
    x.set_xmm(d, v);
    Ok(())
}

/// MOVSS — Move or Merge Scalar Single-Precision Value (load form)
fn movss_load(x: &mut Exec, ins: &Instruction) -> ExecResult {
    scalar_load(x, ins, 4)
}

/// MOVSD — Move or Merge Scalar Double-Precision Value (load form)
fn movsd_load(x: &mut Exec, ins: &Instruction) -> ExecResult {
    scalar_load(x, ins, 8)
}

/// The stores of the low `bytes` of an XMM register: to memory, or to an
/// XMM register merged (MOVSS, MOVSD) or zero-extended (MOVQ).
#[inline(always)]
fn scalar_store(x: &mut Exec, ins: &Instruction, bytes: usize, merge: bool) -> ExecResult {
    x.sse_check()?;
    let v = x.xmm(ins.op1_register());
    if ins.op0_kind() != OpKind::Register {
        return x.vstore_op0(ins, v, Align::Aligned);
    }
    let d = ins.op0_register();
    let m = trunc(u128::MAX, bytes);
    let old = if merge { x.xmm(d) & !m } else { 0 };
    x.set_xmm(d, old | (v & m));
    Ok(())
}

/// MOVSS — Move or Merge Scalar Single-Precision Value (store form)
fn movss_store(x: &mut Exec, ins: &Instruction) -> ExecResult {
    scalar_store(x, ins, 4, true)
}

/// MOVSD — Move or Merge Scalar Double-Precision Value (store form)
fn movsd_store(x: &mut Exec, ins: &Instruction) -> ExecResult {
    scalar_store(x, ins, 8, true)
}

/// MOVQ `xmm/m64, xmm` (66 0F D6): a register destination is zero-extended
fn movq_store(x: &mut Exec, ins: &Instruction) -> ExecResult {
    scalar_store(x, ins, 8, false)
}

/// MOVQ `xmm, xmm/m64` (F3 0F 7E): the low quadword, zero-extended
fn movq_load(_a: u128, b: u128, _w: usize) -> u128 {
    trunc(b, 8)
}

/// MOVLPS/MOVLPD `xmm, m64` — Move Low Packed Values (high quadword kept)
fn movlps_load(a: u128, b: u128, _w: usize) -> u128 {
    (a & !LOW) | (b & LOW)
}

/// MOVHPS/MOVHPD `xmm, m64` — Move High Packed Values (low quadword kept)
fn movhps_load(a: u128, b: u128, _w: usize) -> u128 {
    (a & LOW) | (b << 64)
}

/// MOVHLPS — Move Packed Single-Precision Values High to Low
fn movhlps(a: u128, b: u128, _w: usize) -> u128 {
    (a & !LOW) | (b >> 64)
}

/// MOVLHPS — Move Packed Single-Precision Values Low to High
fn movlhps(a: u128, b: u128, _w: usize) -> u128 {
    (a & LOW) | (b << 64)
}

/// MOVLPS/MOVLPD `m64, xmm` — store the low quadword
fn movlps_store(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.sse_check()?;
    let v = x.xmm(ins.op1_register());
    x.vstore_op0(ins, v, Align::Aligned)
}

/// MOVHPS/MOVHPD `m64, xmm` — store the high quadword
fn movhps_store(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.sse_check()?;
    let v = x.xmm(ins.op1_register()) >> 64;
    x.vstore_op0(ins, v, Align::Aligned)
}

/// The check of MOVQ2DQ and MOVDQ2Q, which have an operand of each kind:
/// #UD for CR0.EM or CR4.OSFXSR clear, #NM for CR0.TS, #MF for a pending
/// x87 exception.
fn mm_xmm_check(x: &Exec) -> ExecResult {
    x.sse_check()?;
    x.mmx_check()
}

/// MOVQ2DQ — Move Quadword from MMX Technology to XMM Register
fn movq2dq(x: &mut Exec, ins: &Instruction) -> ExecResult {
    mm_xmm_check(x)?;
    let v = x.vreg(ins.op1_register());
    x.set_xmm(ins.op0_register(), v);
    x.cpu.fpu.enter_mmx();
    Ok(())
}

/// MOVDQ2Q — Move Quadword from XMM to MMX Technology Register
fn movdq2q(x: &mut Exec, ins: &Instruction) -> ExecResult {
    mm_xmm_check(x)?;
    let v = x.xmm(ins.op1_register());
    x.set_vreg(ins.op0_register(), v);
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use iced_x86::Code::*;
    add_all(
        t,
        &[
            Movaps_xmm_xmmm128,
            Movapd_xmm_xmmm128,
            Movdqa_xmm_xmmm128,
            Movntdqa_xmm_m128,
        ],
        load_aligned,
    );
    add_all(
        t,
        &[
            Movups_xmm_xmmm128,
            Movupd_xmm_xmmm128,
            Movdqu_xmm_xmmm128,
            Lddqu_xmm_m128,
        ],
        load_unaligned,
    );
    add_all(
        t,
        &[
            Movaps_xmmm128_xmm,
            Movapd_xmmm128_xmm,
            Movdqa_xmmm128_xmm,
            Movntps_m128_xmm,
            Movntpd_m128_xmm,
            Movntdq_m128_xmm,
        ],
        store_aligned,
    );
    add_all(
        t,
        &[Movups_xmmm128_xmm, Movupd_xmmm128_xmm, Movdqu_xmmm128_xmm],
        store_unaligned,
    );
    t.add(Movss_xmm_xmmm32, movss_load, 0);
    t.add(Movsd_xmm_xmmm64, movsd_load, 0);
    t.add(Movss_xmmm32_xmm, movss_store, 0);
    t.add(Movsd_xmmm64_xmm, movsd_store, 0);
    t.add(Movq_xmmm64_xmm, movq_store, 0);
    forms!(t, packed(movq_load), [Movq_xmm_xmmm64]);
    forms!(t, packed(movlps_load), [Movlps_xmm_m64, Movlpd_xmm_m64]);
    forms!(t, packed(movhps_load), [Movhps_xmm_m64, Movhpd_xmm_m64]);
    forms!(t, packed(movhlps), [Movhlps_xmm_xmm]);
    forms!(t, packed(movlhps), [Movlhps_xmm_xmm]);
    t.add(Movlps_m64_xmm, movlps_store, 0);
    t.add(Movlpd_m64_xmm, movlps_store, 0);
    t.add(Movhps_m64_xmm, movhps_store, 0);
    t.add(Movhpd_m64_xmm, movhps_store, 0);
    t.add(Movq2dq_xmm_mm, movq2dq, 0);
    t.add(Movdq2q_mm_xmm, movdq2q, 0);
}
