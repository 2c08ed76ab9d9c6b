//! The interpreter: fetch, decode with iced-x86, dispatch on `Code`.

pub mod bulk;
pub mod cache;
pub mod decoded;
mod fast;
mod fpu_access;
pub mod gate;
pub mod io;
pub mod mem;
pub mod mmio;
pub mod operand;
pub mod table;

use crate::cpu::state::SegReg;
use crate::cpu::{Cpu, Mode};
use crate::exception::{Exception, ExecResult, Fault};
use decoded::Decoded;
use iced_x86::{Decoder, DecoderError, Instruction};
use io::IoState;
use softmmu::Mmu;

/// Events an instruction raises for the run loop, besides its result.
#[derive(Clone, Copy, Debug, Default)]
pub struct Signals {
    /// HLT executed.
    pub halt: bool,
    /// STI, MOV SS or POP SS: interrupts stay blocked for one instruction.
    pub shadow: bool,
    /// A write to CR0/CR3/CR4/EFER/segment state changed how code is
    /// fetched or translated.
    pub mode_changed: bool,
    /// Triple fault or shutdown request.
    pub shutdown: bool,
    /// Single-step trap after this instruction (EFLAGS.TF was set before it).
    pub trap: bool,
    /// A store hit a page holding cached code, or an access went to MMIO:
    /// the decoded-block loop looks again before the next instruction.
    pub attention: bool,
}

/// Everything an instruction handler may touch.
pub struct Exec<'a> {
    pub cpu: &'a mut Cpu,
    pub mmu: &'a mut Mmu,
    pub io: &'a mut IoState,
    pub sys: &'a mut crate::system::SysState,
    /// RIP after this instruction; branches overwrite it.
    pub next_rip: u64,
    /// Instructions retired: `Cpu::instret` while this `Exec` runs
    /// instructions, kept here so that counting each one needs no load of
    /// the `Cpu` pointer. Whoever runs instructions through an `Exec`
    /// writes it back to the `Cpu` afterwards.
    pub instret: u64,
    /// The access is an implicit supervisor access (descriptor tables).
    pub implicit_supervisor: bool,
    /// Use the specialised handlers of `fast.rs` (off only for the
    /// reference interpreter that differential tests compare against).
    pub fast_forms: bool,
    pub signals: Signals,
    /// The VM's per-page code versions, which every guest store checks
    /// (see [`cache`]).
    pub code: &'a cache::CodePages,
}

/// Instruction handler: one per `Code`.
pub type Handler = fn(&mut Exec, &Instruction) -> ExecResult;

/// Outcome of one [`step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepResult {
    /// The instruction completed.
    Done,
    /// An exception to deliver (RIP still points at the instruction, or
    /// after it for traps).
    Exception(Exception),
    /// The instruction waits for the VMM to complete a read.
    Exit,
    /// Not implemented: the instruction bytes are in the `bytes` buffer
    /// passed to [`step`] (or `cache::run_batch`).
    Unimplemented,
    /// The code at RIP is not in RAM (see [`Fault::CodeNotInRam`]).
    CodeNotInRam,
}

impl Exec<'_> {
    /// Mask an instruction pointer to the width of the current code.
    #[inline]
    pub fn mask_ip(&self, ip: u64) -> u64 {
        match self.cpu.mode() {
            Mode::Long64 => ip,
            Mode::Real | Mode::Protected16 | Mode::Compat16 => ip & 0xffff,
            _ => ip & 0xffff_ffff,
        }
    }

    /// Fetch and decode the instruction at CS:RIP.
    pub fn decode(&mut self, out: &mut Instruction, bytes: &mut [u8; 16]) -> ExecResult<usize> {
        let rip = self.cpu.rip;
        let bitness = self.cpu.mode().bitness();
        let la = if self.cpu.mode() == Mode::Long64 {
            // A non-canonical RIP faults with #GP(0) before any fetch.
            if !mem::is_canonical(rip) {
                return Err(Exception::gp(0).into());
            }
            rip
        } else {
            // Code segment limit: at least the first byte must be inside.
            let cs = self.cpu.sreg(SegReg::Cs);
            if rip > u64::from(cs.limit) {
                return Err(Exception::gp(0).into());
            }
            cs.base.wrapping_add(rip) & 0xffff_ffff
        };
        let mut have = self.fetch(la, bytes)?;
        loop {
            let opts = self.sys.gate.decoder_options;
            let mut dec = Decoder::with_ip(bitness, &bytes[..have], rip, opts);
            dec.decode_out(out);
            match dec.last_error() {
                DecoderError::None => {
                    if self.cpu.mode() != Mode::Long64 {
                        let cs = self.cpu.sreg(SegReg::Cs);
                        if rip + out.len() as u64 - 1 > u64::from(cs.limit) {
                            return Err(Exception::gp(0).into());
                        }
                    }
                    return Ok(out.len());
                }
                DecoderError::NoMoreBytes if have < 15 => {
                    have = self.fetch_more(la, have, bytes)?;
                }
                _ => return Err(Exception::ud().into()),
            }
        }
    }
}

/// Execute one instruction. Exceptions are returned, not delivered.
pub fn step(x: &mut Exec, ins: &mut Instruction, bytes: &mut [u8; 16]) -> StepResult {
    x.io.begin_instruction();
    x.prepare_hot();
    let queued = x.io.queue.len();
    let r = (|| {
        x.decode(ins, bytes)?;
        let next = x.mask_ip(ins.next_ip());
        let d = Decoded::new(ins, next, 0, x.fast_forms, &x.sys.gate, &bytes[..ins.len()])
            .ok_or(Fault::Unimplemented)?;
        x.next_rip = next;
        (d.run)(x, &d)
    })();
    match r {
        Ok(()) => {
            x.cpu.rip = x.next_rip;
            x.instret = x.instret.wrapping_add(1);
            x.io.end_instruction();
            StepResult::Done
        }
        Err(Fault::Exit) => {
            x.io.queue.truncate(queued);
            StepResult::Exit
        }
        Err(Fault::Exception(e)) => {
            x.io.end_instruction();
            StepResult::Exception(e)
        }
        Err(Fault::Unimplemented) => {
            x.io.end_instruction();
            StepResult::Unimplemented
        }
        Err(Fault::CodeNotInRam) => {
            x.io.end_instruction();
            StepResult::CodeNotInRam
        }
    }
}
