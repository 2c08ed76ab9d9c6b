//! Operands of the MMX and SSE instructions, and the handler shapes the
//! sub-family files register their kernels with.
//!
//! A vector operand is a `u128`: an XMM register, an MM register (the low
//! 64 bits, the significand of its x87 physical register), a general
//! register (MOVD/PINSR* sources) or memory of the form's size, read
//! zero-extended.
//!
//! Which check an instruction makes before touching its registers:
//! - forms on XMM registers: `sse_check` (CR0.EM or CR4.OSFXSR=0 → #UD,
//!   CR0.TS → #NM);
//! - forms on MM registers, the SSE/SSSE3 ones included: `mmx_check`
//!   (CR0.EM → #UD, CR0.TS → #NM, then #MF for a pending x87 exception;
//!   CR4.OSFXSR is not looked at: SDM Vol. 3B, Table 22-8);
//! - MOVQ2DQ and MOVDQ2Q, which have one of each: both (Table 22-6).
//!
//! Every instruction on an MM register, EMMS aside, puts the x87 unit in
//! MMX state (TOP = 0, every tag valid) when it completes; one that faults
//! leaves the x87 state as it was.
//!
//! Alignment: a 16-byte memory operand of a legacy-encoded SSE instruction
//! must be 16-byte aligned (#GP(0) otherwise), except for MOVUPS, MOVUPD,
//! MOVDQU, LDDQU and the PCMPxSTRx string compares; smaller operands (the
//! scalar, 64-bit, PMOVSX/ZX and insert forms) are never checked. This is
//! what the host does for every form (probed one by one with a misaligned
//! operand; the host differential test keeps comparing misaligned cases,
//! and the `simd_guest` test checks a selection).

use crate::cpu::state::SegReg;
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::{Exec, Handler};
use iced_x86::{Code, Instruction, OpKind, Register};
use softmmu::PAGE_SIZE;

/// Whether a 16-byte memory operand must be aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    /// The rule of legacy SSE: 16-byte operands aligned.
    Aligned,
    /// MOVUPS, MOVUPD, MOVDQU, LDDQU, PCMPxSTRx.
    Unaligned,
}

/// Index of an XMM register.
#[inline(always)]
pub(crate) fn xmm_index(r: Register) -> usize {
    r as usize - Register::XMM0 as usize
}

/// Index of an MM register.
#[inline(always)]
pub(crate) fn mm_index(r: Register) -> usize {
    r as usize - Register::MM0 as usize
}

/// Operand width in bytes of a form whose register operand is `r`: 8 for
/// MM registers, 16 for XMM registers.
#[inline(always)]
pub(crate) fn width(r: Register) -> usize {
    if r.is_mm() {
        8
    } else {
        16
    }
}

impl Exec<'_> {
    /// XMM register `r`.
    #[inline(always)]
    pub(crate) fn xmm(&self, r: Register) -> u128 {
        self.cpu.fpu.xmm[xmm_index(r)]
    }

    /// Write XMM register `r`.
    #[inline(always)]
    pub(crate) fn set_xmm(&mut self, r: Register, v: u128) {
        self.cpu.fpu.xmm[xmm_index(r)] = v;
    }

    /// An XMM, MM or general register, zero-extended.
    #[inline(always)]
    pub(crate) fn vreg(&self, r: Register) -> u128 {
        if r.is_xmm() {
            self.xmm(r)
        } else if r.is_mm() {
            u128::from(self.cpu.fpu.mmx(mm_index(r)))
        } else {
            u128::from(self.reg(r))
        }
    }

    /// Write an XMM register, or an MM register (its low 64 bits: this is
    /// the MMX transition too).
    #[inline(always)]
    pub(crate) fn set_vreg(&mut self, r: Register, v: u128) {
        if r.is_mm() {
            self.cpu.fpu.set_mmx(mm_index(r), v as u64);
        } else {
            self.set_xmm(r, v);
        }
    }

    /// The check of a form on MM (`mmx`) or XMM registers.
    #[inline(always)]
    pub(crate) fn simd_check(&self, mmx: bool) -> ExecResult {
        if mmx {
            self.mmx_check()
        } else {
            self.sse_check()
        }
    }

    /// Read `size` (1, 2, 4, 8 or 16) bytes at `seg:off`, zero-extended.
    #[inline]
    pub(crate) fn load_vec(
        &mut self,
        seg: SegReg,
        off: u64,
        size: usize,
        align: Align,
    ) -> ExecResult<u128> {
        if size == 16 {
            if align == Align::Aligned {
                self.check_alignment(seg, off, 16)?;
            }
            if let Some(v) = self.hot_load16(seg, off) {
                return Ok(v);
            }
            self.read_u128(seg, off)
        } else {
            Ok(u128::from(self.read_seg(seg, off, size)?))
        }
    }

    /// Write the low `size` (1, 2, 4, 8 or 16) bytes of `v` at `seg:off`.
    #[inline]
    pub(crate) fn store_vec(
        &mut self,
        seg: SegReg,
        off: u64,
        size: usize,
        v: u128,
        align: Align,
    ) -> ExecResult {
        if size == 16 {
            if align == Align::Aligned {
                self.check_alignment(seg, off, 16)?;
            }
            if self.hot_store16(seg, off, v) {
                return Ok(());
            }
            self.write_u128(seg, off, v)
        } else {
            self.write_seg(seg, off, size, v as u64)
        }
    }

    /// A 16-byte load through the hot path of the narrow accesses (hot
    /// segment, front TLB) as two 8-byte halves, when both hit guest RAM;
    /// `None` sends the caller to the checked path, which raises the
    /// faults. A load has no side effect on RAM, so a half that hit
    /// before the other missed changes nothing.
    #[inline(always)]
    fn hot_load16(&mut self, seg: SegReg, off: u64) -> Option<u128> {
        if self.implicit_supervisor {
            return None;
        }
        let hot = self.cpu.hot();
        let lo = hot.linear(seg, off, false)?;
        let hi = hot.linear(seg, off.wrapping_add(8), false)?;
        let a = self.mmu.hot_load(lo, 8)?;
        let b = self.mmu.hot_load(hi, 8)?;
        Some(u128::from(a) | u128::from(b) << 64)
    }

    /// The store counterpart of [`Exec::hot_load16`], taken only when the
    /// 16 bytes lie in one page: then both halves hit the same front-TLB
    /// entry or the first misses and nothing is written. Should the second
    /// miss all the same, the checked path stores all 16 bytes again.
    #[inline(always)]
    fn hot_store16(&mut self, seg: SegReg, off: u64, v: u128) -> bool {
        if self.implicit_supervisor {
            return false;
        }
        let hot = self.cpu.hot();
        let (Some(lo), Some(hi)) = (
            hot.linear(seg, off, true),
            hot.linear(seg, off.wrapping_add(8), true),
        ) else {
            return false;
        };
        if hi != lo.wrapping_add(8) || lo % PAGE_SIZE > PAGE_SIZE - 16 {
            return false;
        }
        let Some(gpa) = self.mmu.hot_store(lo, 8, v as u64) else {
            return false;
        };
        self.note_write(gpa);
        let Some(gpa) = self.mmu.hot_store(hi, 8, (v >> 64) as u64) else {
            return false;
        };
        self.note_write(gpa);
        true
    }

    /// Operand `n`: a register, an imm8 (the shift counts), or memory of
    /// the form's memory size.
    #[inline]
    pub(crate) fn vsrc(&mut self, ins: &Instruction, n: u32, align: Align) -> ExecResult<u128> {
        match ins.op_kind(n) {
            OpKind::Register => Ok(self.vreg(ins.op_register(n))),
            OpKind::Immediate8 => Ok(u128::from(ins.immediate8())),
            _ => {
                let (seg, off) = self.mem_loc(ins);
                self.load_vec(seg, off, ins.memory_size().size(), align)
            }
        }
    }

    /// Write operand 0 when it is memory or a general register: the low
    /// bytes of `v` (memory of the form's size; a general register with
    /// the usual width rules). Vector-register destinations have rules of
    /// their own and are written by the caller.
    #[inline]
    pub(crate) fn vstore_op0(&mut self, ins: &Instruction, v: u128, align: Align) -> ExecResult {
        match ins.op0_kind() {
            OpKind::Register => {
                self.set_reg(ins.op0_register(), v as u64);
                Ok(())
            }
            _ => {
                let (seg, off) = self.mem_loc(ins);
                self.store_vec(seg, off, ins.memory_size().size(), v, align)
            }
        }
    }
}

/// A kernel on two vectors of `w` bytes: destination and source.
pub(crate) type Kernel = fn(u128, u128, usize) -> u128;
/// A kernel with the form's imm8.
pub(crate) type KernelImm = fn(u128, u128, usize, u8) -> u128;

/// The common shape `op vreg, vreg/mem[, imm8]`: operand 0 (MM or XMM) =
/// `k(operand 0, operand 1, width, imm8)`, the source read with the rule
/// of `align`.
#[inline(always)]
pub(crate) fn packed_with(
    x: &mut Exec,
    ins: &Instruction,
    align: Align,
    k: impl Fn(u128, u128, usize, u8) -> u128,
) -> ExecResult {
    let d = ins.op0_register();
    let mmx = d.is_mm();
    x.simd_check(mmx)?;
    let b = x.vsrc(ins, 1, align)?;
    let a = x.vreg(d);
    let w = width(d);
    x.set_vreg(d, k(a, b, w, ins.immediate8()));
    Ok(())
}

/// [`packed_with`] for a kernel without immediate.
#[inline(always)]
pub(crate) fn packed(x: &mut Exec, ins: &Instruction, k: Kernel) -> ExecResult {
    packed_with(x, ins, Align::Aligned, |a, b, w, _| k(a, b, w))
}

/// [`packed_with`] for a kernel that takes the imm8.
#[inline(always)]
pub(crate) fn packed_imm(x: &mut Exec, ins: &Instruction, k: KernelImm) -> ExecResult {
    packed_with(x, ins, Align::Aligned, k)
}

/// Register each of `codes` with `handler` (no flag is left undefined by
/// any form of this family but PCMPxSTRx and PTEST, which define all).
pub(crate) fn add_all(t: &mut TableBuilder, codes: &[Code], handler: Handler) {
    for &c in codes {
        t.add(c, handler, 0);
    }
}

/// Register `codes` with a handler running `kernel` through `shape`
/// (`packed` or `packed_imm`): one handler function per kernel, so the
/// kernel is a constant the compiler can inline.
macro_rules! forms {
    ($t:expr, $shape:ident($kernel:expr), [$($code:ident),+ $(,)?]) => {{
        fn handler(
            x: &mut $crate::exec::Exec,
            ins: &iced_x86::Instruction,
        ) -> $crate::exception::ExecResult {
            $crate::ops::simd::operand::$shape(x, ins, $kernel)
        }
        $crate::ops::simd::operand::add_all($t, &[$(iced_x86::Code::$code),+], handler);
    }};
}
pub(crate) use forms;
