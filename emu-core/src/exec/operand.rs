//! Registers and operands of a decoded instruction.

use super::Exec;
use crate::cpu::flags::mask;
use crate::cpu::state::SegReg;
use crate::exception::{Exception, ExecResult};
use iced_x86::{Instruction, OpKind, Register};

/// Where a GPR operand lives: index into `gpr`, width in bytes, and whether
/// it is one of AH/CH/DH/BH (bits 8..=15 of RAX..RBX).
#[inline]
pub fn gpr_loc(r: Register) -> (usize, u8, bool) {
    let size = r.size() as u8;
    let high = matches!(r, Register::AH | Register::CH | Register::DH | Register::BH);
    let idx = if high {
        r as usize - Register::AH as usize
    } else {
        r.full_register().number()
    };
    (idx, size, high)
}

/// Segment register from iced's register enum.
#[inline]
pub fn seg_of(r: Register) -> SegReg {
    match r {
        Register::ES => SegReg::Es,
        Register::CS => SegReg::Cs,
        Register::SS => SegReg::Ss,
        Register::FS => SegReg::Fs,
        Register::GS => SegReg::Gs,
        _ => SegReg::Ds,
    }
}

/// A resolved r/m operand.
#[derive(Clone, Copy, Debug)]
pub enum Loc {
    Reg(Register),
    Mem(SegReg, u64),
}

impl Exec<'_> {
    /// Read a general register of any width.
    #[inline]
    pub fn reg(&self, r: Register) -> u64 {
        let (i, size, high) = gpr_loc(r);
        if high {
            (self.cpu.gpr[i] >> 8) & 0xff
        } else {
            self.cpu.gpr[i] & mask(size)
        }
    }

    /// Write a general register with x86's width rules: 32-bit writes
    /// zero-extend, 8- and 16-bit writes keep the other bits.
    #[inline]
    pub fn set_reg(&mut self, r: Register, v: u64) {
        let (i, size, high) = gpr_loc(r);
        let g = &mut self.cpu.gpr[i];
        *g = match (size, high) {
            (1, true) => (*g & !0xff00) | ((v & 0xff) << 8),
            (1, false) => (*g & !0xff) | (v & 0xff),
            (2, _) => (*g & !0xffff) | (v & 0xffff),
            (4, _) => v & 0xffff_ffff,
            _ => v,
        };
    }

    /// Write register number `i` (0 = rAX) with width `size`.
    #[inline]
    pub fn set_gpr(&mut self, i: usize, size: u8, v: u64) {
        let g = &mut self.cpu.gpr[i];
        *g = match size {
            1 => (*g & !0xff) | (v & 0xff),
            2 => (*g & !0xffff) | (v & 0xffff),
            4 => v & 0xffff_ffff,
            _ => v,
        };
    }

    /// Effective address (segment offset) of the memory operand:
    /// base + index * scale + displacement, wrapped to the address size.
    #[inline]
    pub fn ea(&self, ins: &Instruction) -> u64 {
        let base = ins.memory_base();
        let index = ins.memory_index();
        let disp = ins.memory_displacement64();
        if base == Register::RIP {
            return disp;
        }
        if base == Register::EIP {
            return disp & 0xffff_ffff;
        }
        let mut ea = disp;
        let mut asize = ins.memory_displ_size();
        if base != Register::None {
            ea = ea.wrapping_add(self.reg(base));
            asize = base.size() as u32;
        }
        if index != Register::None {
            ea = ea.wrapping_add(
                self.reg(index)
                    .wrapping_mul(u64::from(ins.memory_index_scale())),
            );
            asize = index.size() as u32;
        }
        match asize {
            2 => ea & 0xffff,
            4 => ea & 0xffff_ffff,
            _ => ea,
        }
    }

    /// The memory operand's segment and offset.
    #[inline]
    pub fn mem_loc(&self, ins: &Instruction) -> (SegReg, u64) {
        (seg_of(ins.memory_segment()), self.ea(ins))
    }

    /// Operand `n` as a location (register or memory).
    #[inline]
    pub fn loc(&self, ins: &Instruction, n: u32) -> Loc {
        match ins.op_kind(n) {
            OpKind::Register => Loc::Reg(ins.op_register(n)),
            _ => {
                let (s, o) = self.mem_loc(ins);
                Loc::Mem(s, o)
            }
        }
    }

    /// Width in bytes of operand `n`.
    #[inline]
    pub fn op_size(&self, ins: &Instruction, n: u32) -> u8 {
        match ins.op_kind(n) {
            OpKind::Register => ins.op_register(n).size() as u8,
            OpKind::Memory => ins.memory_size().size() as u8,
            OpKind::Immediate8 | OpKind::Immediate8_2nd => 1,
            OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
            OpKind::Immediate32 | OpKind::Immediate8to32 => 4,
            _ => 8,
        }
    }

    /// Read operand `n` (register, memory or immediate), zero-extended.
    #[inline]
    pub fn read_op(&mut self, ins: &Instruction, n: u32) -> ExecResult<u64> {
        match ins.op_kind(n) {
            OpKind::Register => Ok(self.reg(ins.op_register(n))),
            OpKind::Memory => {
                let (s, o) = self.mem_loc(ins);
                self.read_seg(s, o, ins.memory_size().size())
            }
            _ => Ok(ins.immediate(n)),
        }
    }

    /// Read operand `n` with the size of operand 0 (immediates are
    /// sign-extended by iced and truncated here).
    #[inline]
    pub fn read_src(&mut self, ins: &Instruction, n: u32, size: u8) -> ExecResult<u64> {
        Ok(self.read_op(ins, n)? & mask(size))
    }

    /// Write operand `n`.
    #[inline]
    pub fn write_op(&mut self, ins: &Instruction, n: u32, v: u64) -> ExecResult {
        match ins.op_kind(n) {
            OpKind::Register => {
                self.set_reg(ins.op_register(n), v);
                Ok(())
            }
            _ => {
                let (s, o) = self.mem_loc(ins);
                self.write_seg(s, o, ins.memory_size().size(), v)
            }
        }
    }

    /// Read-modify-write operand 0, atomically when LOCK is present.
    /// `f(old) -> Option<new>`. Returns the old value.
    pub fn rmw_op0(
        &mut self,
        ins: &Instruction,
        f: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> ExecResult<u64> {
        match ins.op0_kind() {
            OpKind::Register => {
                let r = ins.op0_register();
                let old = self.reg(r);
                if let Some(new) = f(old) {
                    self.set_reg(r, new);
                }
                Ok(old)
            }
            _ => {
                let (s, o) = self.mem_loc(ins);
                let size = ins.memory_size().size();
                self.rmw_seg(s, o, size, ins.has_lock_prefix(), f)
            }
        }
    }

    /// Stack address size in bytes (SS.B, or 8 in 64-bit mode).
    #[inline]
    pub fn stack_size(&self) -> u8 {
        match self.cpu.mode() {
            crate::cpu::Mode::Long64 => 8,
            _ if self.cpu.sreg(SegReg::Ss).db != 0 => 4,
            _ => 2,
        }
    }

    /// Push `size` bytes.
    pub fn push(&mut self, v: u64, size: u8) -> ExecResult {
        let ss = self.stack_size();
        let sp = self.cpu.gpr[4].wrapping_sub(size as u64) & mask(ss);
        self.write_seg(SegReg::Ss, sp, size as usize, v)?;
        self.set_gpr(4, ss, sp);
        Ok(())
    }

    /// Read the value at the top of the stack without popping.
    pub fn peek(&mut self, size: u8, skip: u64) -> ExecResult<u64> {
        let ss = self.stack_size();
        let sp = self.cpu.gpr[4].wrapping_add(skip) & mask(ss);
        self.read_seg(SegReg::Ss, sp, size as usize)
    }

    /// Pop `size` bytes.
    pub fn pop(&mut self, size: u8) -> ExecResult<u64> {
        let v = self.peek(size, 0)?;
        let ss = self.stack_size();
        let sp = self.cpu.gpr[4].wrapping_add(size as u64) & mask(ss);
        self.set_gpr(4, ss, sp);
        Ok(v)
    }

    /// Set RIP to a branch target, with the checks of the current mode.
    #[inline]
    pub fn jump(&mut self, target: u64) -> ExecResult {
        if self.cpu.mode() == crate::cpu::Mode::Long64 {
            if !super::mem::is_canonical(target) {
                return Err(Exception::gp(0).into());
            }
        } else if target > u64::from(self.cpu.sreg(SegReg::Cs).limit) {
            return Err(Exception::gp(0).into());
        }
        self.next_rip = target;
        Ok(())
    }

    /// Operand size in bytes of the instruction (from operand 0 when it is
    /// a register or memory, else the mode's default).
    #[inline]
    pub fn osize(&self, ins: &Instruction) -> u8 {
        self.op_size(ins, 0)
    }
}

impl Exec<'_> {
    /// [`Exec::rmw_op0`] for handlers that also compute flags: the closure
    /// gets a flags value to update, which the caller stores afterwards.
    pub fn rmw_op0_with_flags(
        &mut self,
        ins: &Instruction,
        flags: &mut crate::cpu::Flags,
        f: &mut dyn FnMut(&mut crate::cpu::Flags, u64) -> Option<u64>,
    ) -> ExecResult<u64> {
        self.rmw_op0(ins, &mut |a| f(flags, a))
    }
}
