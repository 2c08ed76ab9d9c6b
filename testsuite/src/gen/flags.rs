//! Flags whose definedness depends on the operand values of one instance.
//!
//! emu-core's `defined_flags` is per form. For shifts and rotates the
//! manuals make it depend on the masked count: a count of 0 leaves every
//! flag unchanged (so all are defined), OF is defined only for a count of 1,
//! AF is undefined for any non-zero count, SHL/SHR leave CF undefined when
//! the count is at least the operand width, and SHLD/SHRD leave all flags
//! undefined when the count exceeds the width.

use super::build::read_reg;
use super::fixup::{data_bits, is_shift};
use crate::native::ARITH_FLAGS;
use emu_core::Regs;
use iced_x86::{Instruction, Mnemonic, OpKind};

const CF: u64 = 1;
const AF: u64 = 1 << 4;
const OF: u64 = 1 << 11;

/// (flags defined for this instance beyond the form's, flags undefined for
/// this instance although the form defines them).
pub fn instance_flags(instr: &Instruction, regs: &Regs) -> (u64, u64) {
    let m = instr.mnemonic();
    if !is_shift(m) {
        return (0, 0);
    }
    let op = if matches!(m, Mnemonic::Shld | Mnemonic::Shrd) {
        2
    } else {
        1
    };
    if instr.op_count() <= op {
        return (0, 0);
    }
    let count = match instr.op_kind(op) {
        OpKind::Immediate8 => u64::from(instr.immediate8()),
        OpKind::Register => read_reg(regs, instr.op_register(op)),
        _ => return (0, 0),
    };
    let bits = u64::from(data_bits(instr.code()));
    let masked = count & if bits == 64 { 63 } else { 31 };
    if masked == 0 {
        return (ARITH_FLAGS, 0);
    }
    let mut undefined = 0;
    if masked != 1 {
        undefined |= OF;
    }
    match m {
        Mnemonic::Shl | Mnemonic::Sal | Mnemonic::Shr | Mnemonic::Sar => {
            undefined |= AF;
            if masked >= bits && m != Mnemonic::Sar {
                undefined |= CF;
            }
        }
        Mnemonic::Shld | Mnemonic::Shrd => {
            undefined |= AF;
            if masked > bits {
                undefined |= ARITH_FLAGS;
            }
        }
        _ => {}
    }
    (0, undefined)
}
