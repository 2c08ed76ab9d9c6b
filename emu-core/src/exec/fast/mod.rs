//! Specialised handlers for the hottest instruction forms, chosen once at
//! decode time (see `cache.rs`; [`super::step`] uses them too, so the
//! differential tests against the host CPU cover them, and turning the
//! block cache off turns them off, which gives the reference the random
//! programs of `testsuite/tests/random_code.rs` are compared with).
//!
//! Each one does exactly what the family handler of its `Code` does, for
//! one operand shape — registers only, register and immediate, or one
//! memory operand — with the width, the operation and the condition fixed
//! at compile time instead of dispatched on at run time. Forms with a LOCK
//! or REP prefix or 8-bit high registers keep their family handlers;
//! branches in 64-bit code need a canonical target, and outside it are
//! checked against the CS limit when they run.
//!
//! `handlers.rs` holds the handlers, `select.rs` picks one for an
//! instruction, and this file names them all ([`FastOp`]) so that the
//! block loop can run them inline ([`run`]).

mod handlers;
mod select;
#[cfg(test)]
mod tests;

use super::decoded::{Decoded, Fast};
use super::Exec;
use crate::exception::{ExecResult, Fault};
use handlers::*;
pub use select::select;

pub(super) const ADD: u8 = 0;
pub(super) const SUB: u8 = 1;
pub(super) const AND: u8 = 2;
pub(super) const OR: u8 = 3;
pub(super) const XOR: u8 = 4;
pub(super) const CMP: u8 = 5;
pub(super) const TEST: u8 = 6;

/// Declares the fast forms: [`FastOp`] names each one, and [`run`] matches
/// on it so that the block loop runs the handler inline rather than
/// through a function pointer (no call, no spilled registers, no result
/// through memory). [`FastOp::handler`] gives the same handler as a
/// pointer for [`super::step`].
macro_rules! fast_ops {
    ($($name:ident => $h:expr,)*) => {
        /// A fast form (see the macro above), or none.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum FastOp {
            /// No fast form: the family handler of the `Code`.
            Family,
            $($name,)*
        }

        impl FastOp {
            /// A form that neither reads nor changes the next RIP: the
            /// block loop runs it without setting up or checking a branch.
            pub const fn is_plain(self) -> bool {
                !self.is_branch64()
                    && !matches!(
                        self,
                        FastOp::Family
                            | FastOp::JccChecked
                            | FastOp::Call32
                            | FastOp::Ret32
                            | FastOp::JmpChecked
                    )
            }

            /// A near branch of 64-bit code whose handler cannot end the
            /// batch and writes the next RIP whichever way it goes, so
            /// that [`run`] itself tells whether it stays in the block.
            pub const fn is_branch64(self) -> bool {
                self.is_jcc64() || matches!(self, FastOp::JmpRel | FastOp::CallRel | FastOp::Ret64)
            }

            /// A direct JMP or CALL of 64-bit code, whose target the
            /// decoded-block cache may continue decoding at: these handlers
            /// take nothing from `Decoded::next`, which then holds the
            /// target.
            pub const fn follows(self) -> bool {
                matches!(self, FastOp::JmpRel | FastOp::CallRel)
            }

            /// The Jcc forms of 64-bit code (one per condition). The
            /// block cache may follow one back to the start of its block
            /// (a loop unrolled): the handler sets `next_rip` whether or
            /// not the branch is taken, so it too takes nothing from
            /// `Decoded::next`. So does the RET of 64-bit code
            /// ([`FastOp::Ret64`]), which the cache may continue at a
            /// predicted return address.
            pub const fn is_jcc64(self) -> bool {
                matches!(
                    self,
                    FastOp::Jcc0
                        | FastOp::Jcc1
                        | FastOp::Jcc2
                        | FastOp::Jcc3
                        | FastOp::Jcc4
                        | FastOp::Jcc5
                        | FastOp::Jcc6
                        | FastOp::Jcc7
                        | FastOp::Jcc8
                        | FastOp::Jcc9
                        | FastOp::Jcc10
                        | FastOp::Jcc11
                        | FastOp::Jcc12
                        | FastOp::Jcc13
                        | FastOp::Jcc14
                        | FastOp::Jcc15
                )
            }

            /// The handler of this form, `None` for [`FastOp::Family`].
            pub fn handler(self) -> Option<Fast> {
                match self {
                    FastOp::Family => None,
                    $(FastOp::$name => Some($h as Fast),)*
                }
            }
        }

        /// Run one decoded instruction: its fast form inline, else its
        /// handler through [`Decoded::run`]. [`Ran::Fault`] if it did not
        /// complete, with the reason in `fault`.
        ///
        /// Each arm turns its handler's `ExecResult` into a [`Ran`] that
        /// is a constant for the arms that cannot fail, so the compiler
        /// sends each arm straight to the block loop's code for plain or
        /// branching forms without the loop testing either at run time.
        #[inline(always)]
        pub fn run(x: &mut Exec, d: &Decoded, fault: &mut Option<Fault>) -> Ran {
            match d.op {
                FastOp::Family => {
                    // Family handlers may read RIP, which the block loop
                    // otherwise writes back only when the block stops.
                    x.cpu.rip = d.rip;
                    x.next_rip = d.next;
                    ran((d.run)(x, d), Ran::Branch, fault)
                }
                // Plain forms neither read nor write `next_rip`; 64-bit
                // branches write it either way, and going on to `d.next`
                // (the next instruction of the block, or where the block
                // goes on after its last) is the same as a plain form.
                $(FastOp::$name => {
                    let op = FastOp::$name;
                    if op.is_plain() {
                        ran($h(x, d), Ran::Plain, fault)
                    } else if op.is_branch64() {
                        match ran($h(x, d), Ran::Plain, fault) {
                            Ran::Plain if x.next_rip != d.next => Ran::Left,
                            r => r,
                        }
                    } else {
                        x.next_rip = d.next;
                        ran($h(x, d), Ran::Branch, fault)
                    }
                })*
            }
        }
    };
}

impl FastOp {
    /// The handler an AMD vCPU runs for this form, if it differs: the
    /// shift and multiply forms leave the flags the manuals call undefined
    /// as Intel processors do (the lazy flags of `cpu::flags`), and have
    /// variants that write AMD's (see `ops::shift`, `ops::muldiv`). They
    /// are reached through `Decoded::run` as [`FastOp::Family`] is, not
    /// inlined into [`run`], so that the block loop of an Intel vCPU is
    /// compiled exactly as it was before vendors mattered.
    pub fn amd_handler(self) -> Option<Fast> {
        use FastOp::*;
        Some(match self {
            Shl64 => shift_ri::<8, 0, true>,
            Shr64 => shift_ri::<8, 1, true>,
            Sar64 => shift_ri::<8, 2, true>,
            Shl32 => shift_ri::<4, 0, true>,
            Shr32 => shift_ri::<4, 1, true>,
            Sar32 => shift_ri::<4, 2, true>,
            Imul64 => imul64::<0, true>,
            Imul64i8 => imul64::<8, true>,
            Imul64i32 => imul64::<32, true>,
            Mul64 => mul64::<true>,
            _ => return None,
        })
    }
}

/// What [`run`] did with an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    /// It completed and RIP moves on to `Decoded::next`: a plain form, or
    /// a 64-bit branch that went there.
    Plain,
    /// A branch or family handler completed: RIP moves on to `next_rip`,
    /// which the block loop compares with `Decoded::next`.
    Branch,
    /// A 64-bit branch left the block: RIP moves on to `next_rip`.
    Left,
    /// The instruction did not complete.
    Fault,
}

/// `done` if `r` completed; else [`Ran::Fault`], with the fault in `fault`.
#[inline(always)]
fn ran(r: ExecResult, done: Ran, fault: &mut Option<Fault>) -> Ran {
    match r {
        Ok(()) => done,
        Err(f) => {
            *fault = Some(f);
            Ran::Fault
        }
    }
}

fast_ops! {
    AddRr64 => alu_rr::<8, ADD>,
    AddRr32 => alu_rr::<4, ADD>,
    AddRi64b => alu_ri::<8, ADD, true>,
    AddRi64d => alu_ri::<8, ADD, false>,
    AddRi32b => alu_ri::<4, ADD, true>,
    AddRi32d => alu_ri::<4, ADD, false>,
    AddRm64 => alu_rm::<8, ADD>,
    AddRm32 => alu_rm::<4, ADD>,
    SubRr64 => alu_rr::<8, SUB>,
    SubRr32 => alu_rr::<4, SUB>,
    SubRi64b => alu_ri::<8, SUB, true>,
    SubRi64d => alu_ri::<8, SUB, false>,
    SubRi32b => alu_ri::<4, SUB, true>,
    SubRi32d => alu_ri::<4, SUB, false>,
    SubRm64 => alu_rm::<8, SUB>,
    SubRm32 => alu_rm::<4, SUB>,
    AndRr64 => alu_rr::<8, AND>,
    AndRr32 => alu_rr::<4, AND>,
    AndRi64b => alu_ri::<8, AND, true>,
    AndRi64d => alu_ri::<8, AND, false>,
    AndRi32b => alu_ri::<4, AND, true>,
    AndRi32d => alu_ri::<4, AND, false>,
    AndRm64 => alu_rm::<8, AND>,
    AndRm32 => alu_rm::<4, AND>,
    OrRr64 => alu_rr::<8, OR>,
    OrRr32 => alu_rr::<4, OR>,
    OrRi64b => alu_ri::<8, OR, true>,
    OrRi64d => alu_ri::<8, OR, false>,
    OrRi32b => alu_ri::<4, OR, true>,
    OrRi32d => alu_ri::<4, OR, false>,
    OrRm64 => alu_rm::<8, OR>,
    OrRm32 => alu_rm::<4, OR>,
    XorRr64 => alu_rr::<8, XOR>,
    XorRr32 => alu_rr::<4, XOR>,
    XorRi64b => alu_ri::<8, XOR, true>,
    XorRi64d => alu_ri::<8, XOR, false>,
    XorRi32b => alu_ri::<4, XOR, true>,
    XorRi32d => alu_ri::<4, XOR, false>,
    XorRm64 => alu_rm::<8, XOR>,
    XorRm32 => alu_rm::<4, XOR>,
    CmpRr64 => alu_rr::<8, CMP>,
    CmpRr32 => alu_rr::<4, CMP>,
    CmpRi64b => alu_ri::<8, CMP, true>,
    CmpRi64d => alu_ri::<8, CMP, false>,
    CmpRi32b => alu_ri::<4, CMP, true>,
    CmpRi32d => alu_ri::<4, CMP, false>,
    CmpRm64 => alu_rm::<8, CMP>,
    CmpRm32 => alu_rm::<4, CMP>,
    TestRr64 => alu_rr::<8, TEST>,
    TestRr32 => alu_rr::<4, TEST>,
    TestRi64b => alu_ri::<8, TEST, true>,
    TestRi64d => alu_ri::<8, TEST, false>,
    TestRi32b => alu_ri::<4, TEST, true>,
    TestRi32d => alu_ri::<4, TEST, false>,
    TestRm64 => alu_rm::<8, TEST>,
    TestRm32 => alu_rm::<4, TEST>,
    CmpMi8b => cmp_mi::<1, CMP, true>,
    CmpMi32b => cmp_mi::<4, CMP, true>,
    CmpMi64b => cmp_mi::<8, CMP, true>,
    CmpMi32d => cmp_mi::<4, CMP, false>,
    CmpMi64d => cmp_mi::<8, CMP, false>,
    CmpMr64 => cmp_mr::<8, CMP>,
    CmpMr32 => cmp_mr::<4, CMP>,
    Inc64 => incdec::<8, true>,
    Dec64 => incdec::<8, false>,
    Inc32 => incdec::<4, true>,
    Dec32 => incdec::<4, false>,
    MovRr64 => mov_rr::<8>,
    MovRr32 => mov_rr::<4>,
    MovRi64 => mov_ri::<8, false>,
    MovRi64s => mov_ri::<8, true>,
    MovRi32 => mov_ri::<4, false>,
    MovLoad64 => mov_load::<8>,
    MovLoad32 => mov_load::<4>,
    MovStore64 => mov_store::<8>,
    MovStore32 => mov_store::<4>,
    MovStore8 => mov_store::<1>,
    MovStoreImm64 => mov_store_imm::<8>,
    MovStoreImm32 => mov_store_imm::<4>,
    MovStoreImm16 => mov_store_imm::<2>,
    MovStoreImm8 => mov_store_imm::<1>,
    Movzx32m8 => extend::<4, 1, false, true>,
    Movzx32r8 => extend::<4, 1, false, false>,
    Movzx64m8 => extend::<8, 1, false, true>,
    Movzx64r8 => extend::<8, 1, false, false>,
    Movzx32m16 => extend::<4, 2, false, true>,
    Movzx32r16 => extend::<4, 2, false, false>,
    Movzx64m16 => extend::<8, 2, false, true>,
    Movzx64r16 => extend::<8, 2, false, false>,
    Movsx32m8 => extend::<4, 1, true, true>,
    Movsx32r8 => extend::<4, 1, true, false>,
    Movsx64m8 => extend::<8, 1, true, true>,
    Movsx64r8 => extend::<8, 1, true, false>,
    Movsx32m16 => extend::<4, 2, true, true>,
    Movsx32r16 => extend::<4, 2, true, false>,
    Movsx64m16 => extend::<8, 2, true, true>,
    Movsx64r16 => extend::<8, 2, true, false>,
    Movsxd64m32 => extend::<8, 4, true, true>,
    Movsxd64r32 => extend::<8, 4, true, false>,
    Cmov32r => cmov::<4, false>,
    Cmov32m => cmov::<4, true>,
    Cmov64r => cmov::<8, false>,
    Cmov64m => cmov::<8, true>,
    SetccR => setcc::<false>,
    SetccM => setcc::<true>,
    JccChecked => jcc_checked,
    Push32 => push32,
    Pop32 => pop32,
    Call32 => call32,
    Ret32 => ret32,
    AddM64r => alu_mr::<8, ADD, SRC_REG>,
    AddM32r => alu_mr::<4, ADD, SRC_REG>,
    AddM8r => alu_mr::<1, ADD, SRC_REG>,
    AddM64i8 => alu_mr::<8, ADD, SRC_IMM8>,
    AddM64i => alu_mr::<8, ADD, SRC_IMM>,
    AddM32i8 => alu_mr::<4, ADD, SRC_IMM8>,
    AddM32i => alu_mr::<4, ADD, SRC_IMM>,
    AddM8i => alu_mr::<1, ADD, SRC_IMM>,
    SubM64r => alu_mr::<8, SUB, SRC_REG>,
    SubM32r => alu_mr::<4, SUB, SRC_REG>,
    SubM8r => alu_mr::<1, SUB, SRC_REG>,
    SubM64i8 => alu_mr::<8, SUB, SRC_IMM8>,
    SubM64i => alu_mr::<8, SUB, SRC_IMM>,
    SubM32i8 => alu_mr::<4, SUB, SRC_IMM8>,
    SubM32i => alu_mr::<4, SUB, SRC_IMM>,
    SubM8i => alu_mr::<1, SUB, SRC_IMM>,
    AndM64r => alu_mr::<8, AND, SRC_REG>,
    AndM32r => alu_mr::<4, AND, SRC_REG>,
    AndM8r => alu_mr::<1, AND, SRC_REG>,
    AndM64i8 => alu_mr::<8, AND, SRC_IMM8>,
    AndM64i => alu_mr::<8, AND, SRC_IMM>,
    AndM32i8 => alu_mr::<4, AND, SRC_IMM8>,
    AndM32i => alu_mr::<4, AND, SRC_IMM>,
    AndM8i => alu_mr::<1, AND, SRC_IMM>,
    OrM64r => alu_mr::<8, OR, SRC_REG>,
    OrM32r => alu_mr::<4, OR, SRC_REG>,
    OrM8r => alu_mr::<1, OR, SRC_REG>,
    OrM64i8 => alu_mr::<8, OR, SRC_IMM8>,
    OrM64i => alu_mr::<8, OR, SRC_IMM>,
    OrM32i8 => alu_mr::<4, OR, SRC_IMM8>,
    OrM32i => alu_mr::<4, OR, SRC_IMM>,
    OrM8i => alu_mr::<1, OR, SRC_IMM>,
    XorM64r => alu_mr::<8, XOR, SRC_REG>,
    XorM32r => alu_mr::<4, XOR, SRC_REG>,
    XorM8r => alu_mr::<1, XOR, SRC_REG>,
    XorM64i8 => alu_mr::<8, XOR, SRC_IMM8>,
    XorM64i => alu_mr::<8, XOR, SRC_IMM>,
    XorM32i8 => alu_mr::<4, XOR, SRC_IMM8>,
    XorM32i => alu_mr::<4, XOR, SRC_IMM>,
    XorM8i => alu_mr::<1, XOR, SRC_IMM>,
    IncM64 => incdec_m::<8, true>,
    DecM64 => incdec_m::<8, false>,
    IncM32 => incdec_m::<4, true>,
    DecM32 => incdec_m::<4, false>,
    IncM8 => incdec_m::<1, true>,
    DecM8 => incdec_m::<1, false>,
    JmpChecked => jmp_checked,
    Lea64 => lea::<8>,
    Lea32 => lea::<4>,
    Shl64 => shift_ri::<8, 0, false>,
    Shr64 => shift_ri::<8, 1, false>,
    Sar64 => shift_ri::<8, 2, false>,
    Shl32 => shift_ri::<4, 0, false>,
    Shr32 => shift_ri::<4, 1, false>,
    Sar32 => shift_ri::<4, 2, false>,
    Imul64 => imul64::<0, false>,
    Imul64i8 => imul64::<8, false>,
    Imul64i32 => imul64::<32, false>,
    Mul64 => mul64::<false>,
    Push64 => push64,
    Pop64 => pop64,
    JmpRel => jmp_rel,
    CallRel => call_rel,
    Ret64 => ret64,
    Jcc0 => jcc::<0>,
    Jcc1 => jcc::<1>,
    Jcc2 => jcc::<2>,
    Jcc3 => jcc::<3>,
    Jcc4 => jcc::<4>,
    Jcc5 => jcc::<5>,
    Jcc6 => jcc::<6>,
    Jcc7 => jcc::<7>,
    Jcc8 => jcc::<8>,
    Jcc9 => jcc::<9>,
    Jcc10 => jcc::<10>,
    Jcc11 => jcc::<11>,
    Jcc12 => jcc::<12>,
    Jcc13 => jcc::<13>,
    Jcc14 => jcc::<14>,
    Jcc15 => jcc::<15>,
}

/// The ALU forms by operation (ADD, SUB, AND, OR, XOR, CMP, TEST) and
/// shape ([`Form`] order).
pub(super) const ALU: [[FastOp; 8]; 7] = [
    [
        FastOp::AddRr64,
        FastOp::AddRr32,
        FastOp::AddRi64b,
        FastOp::AddRi64d,
        FastOp::AddRi32b,
        FastOp::AddRi32d,
        FastOp::AddRm64,
        FastOp::AddRm32,
    ],
    [
        FastOp::SubRr64,
        FastOp::SubRr32,
        FastOp::SubRi64b,
        FastOp::SubRi64d,
        FastOp::SubRi32b,
        FastOp::SubRi32d,
        FastOp::SubRm64,
        FastOp::SubRm32,
    ],
    [
        FastOp::AndRr64,
        FastOp::AndRr32,
        FastOp::AndRi64b,
        FastOp::AndRi64d,
        FastOp::AndRi32b,
        FastOp::AndRi32d,
        FastOp::AndRm64,
        FastOp::AndRm32,
    ],
    [
        FastOp::OrRr64,
        FastOp::OrRr32,
        FastOp::OrRi64b,
        FastOp::OrRi64d,
        FastOp::OrRi32b,
        FastOp::OrRi32d,
        FastOp::OrRm64,
        FastOp::OrRm32,
    ],
    [
        FastOp::XorRr64,
        FastOp::XorRr32,
        FastOp::XorRi64b,
        FastOp::XorRi64d,
        FastOp::XorRi32b,
        FastOp::XorRi32d,
        FastOp::XorRm64,
        FastOp::XorRm32,
    ],
    [
        FastOp::CmpRr64,
        FastOp::CmpRr32,
        FastOp::CmpRi64b,
        FastOp::CmpRi64d,
        FastOp::CmpRi32b,
        FastOp::CmpRi32d,
        FastOp::CmpRm64,
        FastOp::CmpRm32,
    ],
    [
        FastOp::TestRr64,
        FastOp::TestRr32,
        FastOp::TestRi64b,
        FastOp::TestRi64d,
        FastOp::TestRi32b,
        FastOp::TestRi32d,
        FastOp::TestRm64,
        FastOp::TestRm32,
    ],
];
