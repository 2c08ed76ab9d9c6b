//! The form an instruction is run from: iced-x86's `Instruction` plus what
//! the interpreter would otherwise work out again on every execution (the
//! handler, the memory operand's registers, scale and address-size mask,
//! the next RIP).
//!
//! The specialised handlers of `fast.rs` take a [`Decoded`]; the family
//! handlers keep taking the `Instruction` and are reached through
//! [`run_family`], so adding an instruction still touches one family file.

use super::fast::{self, FastOp};
use super::gate::{self, Availability, Gate};
use super::operand::{gpr_loc, seg_of};
use super::{table, Exec, Handler};
use crate::cpu::model::Vendor;
use crate::cpu::state::SegReg;
use crate::exception::ExecResult;
use iced_x86::{CodeSize, Instruction, OpKind, Register};

/// A handler of the decoded form.
pub type Fast = fn(&mut Exec, &Decoded) -> ExecResult;

/// No register in a [`MemOp`] slot.
const NO_REG: u8 = 16;

/// A memory operand with everything but the register values resolved:
/// the offset is `(disp + base + (index << shift)) & amask`.
#[derive(Clone, Copy, Debug)]
pub struct MemOp {
    /// Displacement; for RIP-relative operands the whole address.
    pub disp: u64,
    /// Address-size mask (16, 32 or 64 bits).
    pub amask: u64,
    /// GPR numbers, or 16 for none.
    pub base: u8,
    pub index: u8,
    pub shift: u8,
    pub seg: SegReg,
    /// 64-bit code and not FS or GS: the linear address is the offset,
    /// with no segment check (canonical form is implied by a TLB hit).
    pub flat64: bool,
}

impl MemOp {
    /// The memory operand of `ins` (meaningless if it has none).
    fn of(ins: &Instruction) -> MemOp {
        let gpr = |r: Register| match r {
            Register::None => NO_REG,
            r => r.full_register().number() as u8,
        };
        let base = ins.memory_base();
        let index = ins.memory_index();
        let mut m = MemOp {
            disp: ins.memory_displacement64(),
            amask: u64::MAX,
            base: NO_REG,
            index: NO_REG,
            shift: ins.memory_index_scale().trailing_zeros() as u8,
            seg: seg_of(ins.memory_segment()),
            flat64: false,
        };
        m.flat64 = ins.code_size() == CodeSize::Code64 && !matches!(m.seg, SegReg::Fs | SegReg::Gs);
        if base == Register::RIP {
            return m;
        }
        if base == Register::EIP {
            m.amask = 0xffff_ffff;
            return m;
        }
        // The address size: of the base or index register, else of the
        // displacement (as `Exec::ea` computes it).
        let mut asize = ins.memory_displ_size();
        if base != Register::None {
            asize = base.size() as u32;
        }
        if index != Register::None {
            asize = index.size() as u32;
        }
        m.amask = match asize {
            2 => 0xffff,
            4 => 0xffff_ffff,
            _ => u64::MAX,
        };
        m.base = gpr(base);
        m.index = gpr(index);
        m
    }
}

/// One decoded instruction, ready to run.
#[derive(Clone)]
pub struct Decoded {
    pub ins: Instruction,
    /// The fast form, which the block loop runs inline (see `fast::run`).
    pub op: FastOp,
    /// The handler: the fast form's, or [`run_family`] (or, with
    /// `FastOp::Family`, the AMD variant of a fast form).
    pub run: Fast,
    /// The family handler of the instruction's `Code` (what [`run_family`]
    /// calls).
    pub family: Handler,
    pub mem: MemOp,
    /// The instruction's own RIP.
    pub rip: u64,
    /// RIP of the next instruction, masked to the code size (for a JMP or
    /// CALL the block cache follows, the target: see `FastOp::follows`).
    pub next: u64,
    /// The target of a near branch with an immediate target, else 0.
    pub target: u64,
    /// `Cpu::gpr` indices of register operands 0 and 1 (AH..BH give the
    /// index of RAX..RBX: the fast forms that use these never take them).
    regs: [u8; 2],
    /// The condition-code nibble of Jcc/SETcc/CMOVcc (0xff for others).
    pub cc: u8,
    /// Block-ending class (see `cache.rs`); 0 for plain instructions.
    pub kind: u8,
}

impl Decoded {
    /// The decoded form of `ins`; `None` if softvm does not implement it.
    /// Without `fast`, the family handler runs even where a fast form
    /// exists (the reference interpreter).
    ///
    /// The vCPU's `gate` decides first: an instruction the CPU model lacks
    /// runs as #UD or a NOP (see `gate`) whether or not softvm implements
    /// it. Where the fast form leaves undefined flags as Intel processors
    /// do, an AMD vCPU runs the AMD variant instead (see
    /// `FastOp::amd_handler`).
    pub fn new(
        ins: &Instruction,
        next: u64,
        kind: u8,
        fast: bool,
        gate: &Gate,
        bytes: &[u8],
    ) -> Option<Decoded> {
        let (family, fast) = match gate.availability(ins, bytes) {
            Availability::Present => (table::handler(ins.code())?, fast),
            Availability::Nop => (gate::absent_nop as Handler, false),
            Availability::Undefined => (gate::absent_ud as Handler, false),
        };
        let mut op = match fast {
            true => fast::select(ins).unwrap_or(FastOp::Family),
            false => FastOp::Family,
        };
        let mut run = op.handler().unwrap_or(run_family as Fast);
        if fast && op == FastOp::Family {
            if let Some(h) = crate::ops::simd::decoded_form(ins) {
                run = h;
            }
        }
        if gate.vendor == Vendor::Amd {
            if let Some(h) = op.amd_handler() {
                (op, run) = (FastOp::Family, h);
            }
        }
        let has_mem = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
        let mem = if has_mem {
            MemOp::of(ins)
        } else {
            MemOp {
                disp: 0,
                amask: 0,
                base: NO_REG,
                index: NO_REG,
                shift: 0,
                seg: SegReg::Ds,
                flat64: false,
            }
        };
        let target = match ins.op0_kind() {
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                ins.near_branch_target()
            }
            _ => 0,
        };
        let reg = |n: u32| match ins.op_kind(n) {
            OpKind::Register if n < ins.op_count() => gpr_loc(ins.op_register(n)).0 as u8,
            _ => 0,
        };
        let mut ins = *ins;
        crate::ops::x87::stash_fop(&mut ins, bytes);
        Some(Decoded {
            regs: [reg(0), reg(1)],
            cc: crate::ops::control::cc(&ins),
            ins,
            op,
            run,
            family,
            mem,
            rip: ins.ip(),
            next,
            target,
            kind,
        })
    }
}

impl Decoded {
    /// Index in `Cpu::gpr` of register operand 0.
    #[inline(always)]
    pub fn r0(&self) -> usize {
        usize::from(self.regs[0] & 15)
    }

    /// Index in `Cpu::gpr` of register operand 1.
    #[inline(always)]
    pub fn r1(&self) -> usize {
        usize::from(self.regs[1] & 15)
    }
}

/// Run an instruction through its family handler.
pub fn run_family(x: &mut Exec, d: &Decoded) -> ExecResult {
    (d.family)(x, &d.ins)
}

impl Exec<'_> {
    /// The segment offset of a decoded memory operand.
    #[inline(always)]
    pub fn ea_of(&self, m: &MemOp) -> u64 {
        let g = &self.cpu.gpr;
        let mut ea = m.disp;
        if m.base != NO_REG {
            ea = ea.wrapping_add(g[usize::from(m.base & 15)]);
        }
        if m.index != NO_REG {
            ea = ea.wrapping_add(g[usize::from(m.index & 15)] << m.shift);
        }
        ea & m.amask
    }

    /// Read `size` bytes of a decoded memory operand.
    #[inline(always)]
    pub fn load_mem(&mut self, m: &MemOp, size: usize) -> ExecResult<u64> {
        let ea = self.ea_of(m);
        if m.flat64 {
            return self.load_flat64(m.seg, ea, size);
        }
        self.read_seg(m.seg, ea, size)
    }

    /// Write `size` bytes of a decoded memory operand.
    #[inline(always)]
    pub fn store_mem(&mut self, m: &MemOp, size: usize, val: u64) -> ExecResult {
        let ea = self.ea_of(m);
        if m.flat64 {
            return self.store_flat64(m.seg, ea, size, val);
        }
        self.write_seg(m.seg, ea, size, val)
    }
}
