//! MXCSR: LDMXCSR and STMXCSR, and the discipline by which every SSE
//! floating-point instruction reports its exceptions.
//!
//! An instruction computes each element with the MXCSR's environment,
//! then (Intel SDM Vol. 1, 11.5.3): if an unmasked invalid-operation,
//! denormal or divide-by-zero condition arose in any element, only those
//! pre-computation flags (of every element) are set; otherwise every flag
//! raised is set. Either way, an unmasked one leaves the destination (and
//! EFLAGS) unchanged and raises #XM, or #UD when CR4.OSXMMEXCPT is clear.
//! An unmasked overflow or underflow reports PE with OE or UE when the
//! result (rounded with an unbounded exponent) is inexact (measured on an
//! AMD processor; the core's rounding does this).

use crate::cpu::fpu::mxcsr;
use crate::cpu::state::CR4_OSXMMEXCPT;
use crate::exception::{Exception, ExecResult};
use crate::exec::{Exec, Handler};
use crate::fp::{Env, Flags, Fp};
use iced_x86::{Code, Instruction};

const PRE_COMPUTATION: Flags = Flags(Flags::IE.0 | Flags::DE.0 | Flags::ZE.0);

/// The exceptions of one instruction, element by element.
pub(super) struct Mxcsr {
    pub env: Env,
    /// The flags of the completed stages (see [`Mxcsr::end_stage`]).
    done: Flags,
    pre: Flags,
    all: Flags,
}

impl Mxcsr {
    pub fn new(x: &Exec) -> Mxcsr {
        Mxcsr {
            env: Env::sse(x.cpu.fpu.mxcsr),
            done: Flags::NONE,
            pre: Flags::NONE,
            all: Flags::NONE,
        }
    }

    /// Run one element's operation.
    pub fn lane<R>(&mut self, f: impl FnOnce(&mut Fp) -> R) -> R {
        let mut fp = Fp::new(self.env);
        let r = f(&mut fp);
        self.pre |= Flags(fp.flags.0 & PRE_COMPUTATION.0);
        self.all |= fp.flags;
        r
    }

    /// End one stage of an instruction that computes in stages (DPPS,
    /// DPPD: products, then sums): its flags are reported whatever the
    /// later stages do. Returns whether the stage raised an unmasked
    /// exception, so that the instruction stops there (measured).
    pub fn end_stage(&mut self) -> bool {
        if self.all.intersects(self.unmasked()) {
            return true;
        }
        self.done |= self.all;
        self.pre = Flags::NONE;
        self.all = Flags::NONE;
        false
    }

    fn unmasked(&self) -> Flags {
        Flags(!self.env.masks.0 & 0x3f)
    }

    /// Set the flags in MXCSR; `Ok` when the result may be written.
    pub fn commit(self, x: &mut Exec) -> ExecResult {
        let unmasked = self.unmasked();
        let raised = self.done
            | if self.pre.intersects(unmasked) {
                self.pre
            } else {
                self.all
            };
        x.cpu.fpu.mxcsr |= u32::from(raised.bits());
        if raised.intersects(unmasked) {
            return Err(if x.cpu.cr4 & CR4_OSXMMEXCPT != 0 {
                Exception::xm()
            } else {
                Exception::ud()
            }
            .into());
        }
        Ok(())
    }
}

/// LDMXCSR — Load MXCSR Register: #GP(0) for a reserved bit set.
fn ldmxcsr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.sse_check()?;
    let (seg, off) = x.mem_loc(ins);
    let v = x.read_seg(seg, off, 4)? as u32;
    if v & !mxcsr::WRITABLE != 0 {
        return Err(Exception::gp(0).into());
    }
    x.cpu.fpu.mxcsr = v;
    Ok(())
}

/// STMXCSR — Store MXCSR Register State.
fn stmxcsr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.sse_check()?;
    let (seg, off) = x.mem_loc(ins);
    x.write_seg(seg, off, 4, u64::from(x.cpu.fpu.mxcsr))
}

/// The forms of this file and their handlers.
pub(super) const FORMS: &[(Code, Handler)] =
    &[(Code::Ldmxcsr_m32, ldmxcsr), (Code::Stmxcsr_m32, stmxcsr)];
