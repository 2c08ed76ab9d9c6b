//! Where a RET in a block will return, for the block builder: a block of
//! 64-bit code goes on at the predicted return address (when it is in the
//! block's page) the way it goes on at the target of a followed CALL, and
//! the RET leaves the block at run time when it goes anywhere else (see
//! `fast::Ran::Left`). A wrong prediction therefore costs what a RET
//! costs without one; a right one saves leaving the block and looking up
//! the next.
//!
//! Two sources, in order:
//! - a CALL the block followed: its callee's RET goes back after it
//!   (unless the callee moved its stack or rewrote the return address,
//!   which the run-time check catches);
//! - the qword in the stack slot the RET will read, as it is when the
//!   block is built (a return site that does not change between calls is
//!   the common case; a recursion that returns to two sites is right half
//!   of the time). It is read only from RAM that the front TLB already
//!   holds, so predicting never faults and never touches a device.

use iced_x86::{Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register};

/// RSP relative to its value at the block's entry, while every instruction
/// decoded so far moved it by a known amount, and the return addresses
/// pushed by the CALLs the block followed (innermost last).
pub(super) struct StackTrack {
    sp: Option<i64>,
    calls: Vec<(i64, u64)>,
    info: InstructionInfoFactory,
}

impl StackTrack {
    /// Tracking for a block of 64-bit code (`long`); none otherwise.
    pub(super) fn new(long: bool) -> StackTrack {
        StackTrack {
            sp: long.then_some(0),
            calls: Vec::new(),
            info: InstructionInfoFactory::new(),
        }
    }

    /// Where the RET about to be decoded returns, if known: the CALL this
    /// block followed whose return address is at the top of the stack, or
    /// else what `read(offset from the entry RSP)` finds in the slot if
    /// the block did not write it itself (a slot below the entry RSP).
    pub(super) fn ret_target(&self, read: impl FnOnce(i64) -> Option<u64>) -> Option<u64> {
        let sp = self.sp?;
        match self.calls.last() {
            Some(&(slot, ret)) if slot == sp => Some(ret),
            _ if sp >= 0 => read(sp),
            _ => None,
        }
    }

    /// Account for `ins`, just decoded into the block, having run.
    pub(super) fn after(&mut self, ins: &Instruction) {
        let Some(sp) = self.sp else {
            return;
        };
        let moved = sp + i64::from(ins.stack_pointer_increment());
        match ins.mnemonic() {
            Mnemonic::Call if ins.op0_kind() == OpKind::NearBranch64 => {
                self.calls.push((moved, ins.next_ip()));
                self.sp = Some(moved);
            }
            // POP RSP loads RSP itself.
            Mnemonic::Pop
                if ins.op0_kind() == OpKind::Register && ins.op0_register() == Register::RSP =>
            {
                self.forget();
            }
            Mnemonic::Push | Mnemonic::Pop | Mnemonic::Ret => {
                // Return addresses below the new RSP were popped.
                self.calls.retain(|&(slot, _)| slot >= moved);
                self.sp = Some(moved);
            }
            _ if self.writes_rsp(ins) => self.forget(),
            _ => {}
        }
    }

    fn forget(&mut self) {
        self.sp = None;
        self.calls.clear();
    }

    /// Whether `ins` writes RSP other than as a push or a pop (MOV, ADD,
    /// LEAVE, XCHG, ...).
    fn writes_rsp(&mut self, ins: &Instruction) -> bool {
        self.info.info(ins).used_registers().iter().any(|r| {
            r.register().full_register() == Register::RSP
                && matches!(
                    r.access(),
                    OpAccess::Write
                        | OpAccess::CondWrite
                        | OpAccess::ReadWrite
                        | OpAccess::ReadCondWrite
                )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::code_asm::*;
    use iced_x86::{Decoder, DecoderOptions};

    type Emit = dyn Fn(&mut CodeAssembler) -> Result<(), IcedError>;

    /// Decode what `f` assembles at 0x1000 and track it.
    fn track(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> StackTrack {
        let mut a = CodeAssembler::new(64).unwrap();
        f(&mut a).unwrap();
        let bytes = a.assemble(0x1000).unwrap();
        let mut t = StackTrack::new(true);
        for ins in Decoder::with_ip(64, &bytes, 0x1000, DecoderOptions::NONE) {
            t.after(&ins);
        }
        t
    }

    #[test]
    fn pushes_pops_and_calls_move_the_slot() {
        let t = track(|a| {
            a.push(rax)?;
            a.push(rbx)?;
            a.pop(rcx)?;
            a.pop(rdx)?;
            a.pop(rsi)?;
            a.add(rax, rcx)
        });
        assert_eq!(t.ret_target(|off| Some(off as u64 + 0x100)), Some(0x108));
        // A slot the block pushed itself is not predicted.
        let t = track(|a| a.push(rax));
        assert_eq!(t.ret_target(|_| Some(1)), None);
        // A followed CALL's return address is the prediction for its
        // callee's RET (not while something the callee pushed is on top);
        // once it is popped, the slot above is read again.
        let t = track(|a| {
            a.call(0x2000)?;
            a.push(rax)
        });
        assert_eq!(t.ret_target(|_| Some(0)), None);
        let t = track(|a| {
            a.call(0x2000)?;
            a.push(rax)?;
            a.pop(rax)
        });
        assert_eq!(t.ret_target(|_| None), Some(0x1005));
        let t = track(|a| {
            a.call(0x2000)?;
            a.ret()
        });
        assert_eq!(t.ret_target(|off| Some(off as u64)), Some(0));
    }

    #[test]
    fn other_writes_of_rsp_end_the_tracking() {
        let writers: [&Emit; 6] = [
            &|a| a.add(rsp, 8),
            &|a| a.mov(rsp, rbp),
            &|a| a.leave(),
            &|a| a.pop(rsp),
            &|a| a.xchg(rsp, rax),
            &|a| a.lea(esp, dword_ptr(rax + 8)),
        ];
        for w in writers {
            let t = track(|a| {
                a.call(0x2000)?;
                w(a)
            });
            assert_eq!(t.ret_target(|_| Some(1)), None);
        }
        // Reading RSP, or memory through it, is fine.
        let t = track(|a| {
            a.mov(rax, rsp)?;
            a.mov(qword_ptr(rsp + 8), rax)?;
            a.cmp(rsp, rax)
        });
        assert_eq!(t.ret_target(|off| Some(off as u64 + 7)), Some(7));
        assert_eq!(StackTrack::new(false).ret_target(|_| Some(1)), None);
    }
}
