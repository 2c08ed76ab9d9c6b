//! Operands of the SSE floating-point forms: XMM registers, MM registers
//! and memory, seen as lanes of F32 or F64 values.
//!
//! Every 16-byte memory operand of these (legacy-encoded) forms must be
//! 16-byte aligned, #GP(0) otherwise; the scalar and 64-bit memory
//! operands are never checked.

use super::mxcsr::Mxcsr;
use crate::exception::ExecResult;
use crate::exec::Exec;
use crate::fp::{Float, F32, F64};
use iced_x86::{Instruction, OpKind, Register};

/// A floating-point element of an XMM register.
pub(super) trait Lane: Float {
    /// Lanes in 128 bits.
    const COUNT: usize;
    const BITS: u32;
    fn lane(v: u128, i: usize) -> Self;
    fn bits(self) -> u128;

    /// All ones (a true comparison) or zero.
    fn mask(set: bool) -> Self;

    /// `v` with lane `i` replaced by `e`.
    fn with_lane(v: u128, i: usize, e: Self) -> u128 {
        let sh = Self::BITS * i as u32;
        let m = (u128::MAX >> (128 - Self::BITS)) << sh;
        (v & !m) | (e.bits() << sh)
    }
}

impl Lane for F32 {
    const COUNT: usize = 4;
    const BITS: u32 = 32;
    fn lane(v: u128, i: usize) -> F32 {
        F32((v >> (32 * i)) as u32)
    }
    fn bits(self) -> u128 {
        u128::from(self.0)
    }
    fn mask(set: bool) -> F32 {
        F32(if set { u32::MAX } else { 0 })
    }
}

impl Lane for F64 {
    const COUNT: usize = 2;
    const BITS: u32 = 64;
    fn lane(v: u128, i: usize) -> F64 {
        F64((v >> (64 * i)) as u64)
    }
    fn bits(self) -> u128 {
        u128::from(self.0)
    }
    fn mask(set: bool) -> F64 {
        F64(if set { u64::MAX } else { 0 })
    }
}

/// The 32-bit integer lane `i` of `v`.
pub(super) fn int32(v: u128, i: usize) -> i64 {
    i64::from((v >> (32 * i)) as u32 as i32)
}

/// `v` with 32-bit lane `i` replaced by the low 32 bits of `n`.
pub(super) fn with_int32(v: u128, i: usize, n: i64) -> u128 {
    let sh = 32 * i;
    (v & !(0xffff_ffffu128 << sh)) | (u128::from(n as u32) << sh)
}

fn xmm_index(r: Register) -> usize {
    r as usize - Register::XMM0 as usize
}

fn mm_index(r: Register) -> usize {
    r as usize - Register::MM0 as usize
}

pub(super) fn xmm(x: &Exec, r: Register) -> u128 {
    x.cpu.fpu.xmm[xmm_index(r)]
}

pub(super) fn set_xmm(x: &mut Exec, r: Register, v: u128) {
    x.cpu.fpu.xmm[xmm_index(r)] = v;
}

/// Write MM register `r` (the MMX transition included).
pub(super) fn set_mm(x: &mut Exec, r: Register, v: u64) {
    x.cpu.fpu.set_mmx(mm_index(r), v);
}

/// Operand `n`: an XMM register, an MM register (zero-extended), a
/// general register (zero-extended), or memory of the form's size.
pub(super) fn src(x: &mut Exec, ins: &Instruction, n: u32) -> ExecResult<u128> {
    if ins.op_kind(n) == OpKind::Register {
        let r = ins.op_register(n);
        return Ok(if r.is_xmm() {
            xmm(x, r)
        } else if r.is_mm() {
            u128::from(x.cpu.fpu.mmx(mm_index(r)))
        } else {
            u128::from(x.reg(r))
        });
    }
    let (seg, off) = x.mem_loc(ins);
    let size = ins.memory_size().size();
    if size == 16 {
        x.check_alignment(seg, off, 16)?;
        x.read_u128(seg, off)
    } else {
        Ok(u128::from(x.read_seg(seg, off, size)?))
    }
}

/// The shape `op xmm, xmm/mem`: the destination becomes `f(mxcsr,
/// destination, source)` unless an unmasked exception stops it.
pub(super) fn xmm_op(
    x: &mut Exec,
    ins: &Instruction,
    f: impl FnOnce(&mut Mxcsr, u128, u128) -> u128,
) -> ExecResult {
    x.sse_check()?;
    let b = src(x, ins, 1)?;
    let d = ins.op0_register();
    let a = xmm(x, d);
    let mut m = Mxcsr::new(x);
    let r = f(&mut m, a, b);
    m.commit(x)?;
    set_xmm(x, d, r);
    Ok(())
}

/// Lanes `0..n` of `a` replaced by `f(lane of a, lane of b)`.
pub(super) fn map<F: Lane>(
    m: &mut Mxcsr,
    a: u128,
    b: u128,
    n: usize,
    f: impl Fn(&mut crate::fp::Fp, F, F) -> F,
) -> u128 {
    (0..n).fold(a, |r, i| {
        let v = m.lane(|fp| f(fp, F::lane(a, i), F::lane(b, i)));
        F::with_lane(r, i, v)
    })
}
