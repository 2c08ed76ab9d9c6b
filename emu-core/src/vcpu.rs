//! `Vcpu`: the KVM-shaped run loop around the interpreter.

use crate::api_types::{Fpu, MsrEntry, Regs, Sregs};
use crate::cpu::Cpu;
use crate::cpuid::CpuidEntry;
use crate::exception::{vector, Exception};
use crate::exec::io::{IoRequest, IoState};
use crate::exec::{step, Exec, Signals, StepResult};
use crate::system::interrupt::{Delivery, Event};
use crate::system::SysState;
use iced_x86::Instruction;
use softmmu::Mmu;
use std::sync::Arc;

/// Why `run()` returned (`kvm_run.exit_reason` and its payload). Read
/// exits carry a buffer the VMM fills before the next `run()`.
#[derive(Debug, PartialEq, Eq)]
pub enum VcpuExit<'a> {
    IoIn(u16, &'a mut [u8]),
    IoOut(u16, &'a [u8]),
    MmioRead(u64, &'a mut [u8]),
    MmioWrite(u64, &'a [u8]),
    /// HLT with interrupts that cannot arrive (no interrupt source is
    /// pending or IF=0).
    Hlt,
    /// Triple fault.
    Shutdown,
    /// Single step or breakpoint, when debugging is enabled.
    Debug,
    /// An instruction softvm does not implement, when the VMM asked for
    /// exits instead of #UD (see [`Vcpu::set_exit_on_unimplemented`]).
    InternalError {
        rip: u64,
        bytes: [u8; 15],
        len: usize,
    },
    /// The instruction budget set with [`Vcpu::set_instruction_limit`] is
    /// used up.
    InstructionLimit,
}

/// Errors of the vCPU API itself (not guest faults).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VcpuError {
    /// MSR index not implemented
    #[error("MSR {0:#x} is not implemented")]
    UnknownMsr(u32),
}

/// How many instructions a vCPU runs inside one SRCU read section before
/// leaving it briefly, so that memslot updates never wait long.
const SECTION_BUDGET: u64 = 1 << 16;

/// One virtual CPU.
pub struct Vcpu {
    pub(crate) cpu: Cpu,
    pub(crate) mmu: Mmu,
    pub(crate) io: IoState,
    pub(crate) sys: SysState,
    data: [u8; 8],
    halted: bool,
    exit_on_unimplemented: bool,
    limit: Option<u64>,
    ins: Instruction,
    bytes: [u8; 16],
    /// The request being reported to the VMM by the last exit.
    current: Option<IoRequest>,
    shadow: bool,
}

impl Vcpu {
    pub(crate) fn new(mem: Arc<softmmu::GuestMemory>, id: u32, ncpus: u32) -> Vcpu {
        Vcpu {
            cpu: Cpu::new(),
            mmu: Mmu::new(mem),
            io: IoState::default(),
            sys: SysState::new(id, ncpus),
            data: [0; 8],
            halted: false,
            exit_on_unimplemented: false,
            limit: None,
            ins: Instruction::default(),
            bytes: [0; 16],
            current: None,
            shadow: false,
        }
    }

    pub fn id(&self) -> u32 {
        self.sys.vcpu_id
    }

    pub fn get_regs(&self) -> Regs {
        self.cpu.get_regs()
    }

    pub fn set_regs(&mut self, r: &Regs) {
        self.cpu.set_regs(r);
    }

    pub fn get_sregs(&self) -> Sregs {
        self.cpu.get_sregs()
    }

    pub fn set_sregs(&mut self, s: &Sregs) {
        self.cpu.set_sregs(s);
        self.mmu.flush(softmmu::Flush::All);
    }

    pub fn get_fpu(&self) -> Fpu {
        self.cpu.fpu
    }

    pub fn set_fpu(&mut self, f: &Fpu) {
        self.cpu.fpu = *f;
    }

    /// Replace the CPUID table (`KVM_SET_CPUID2`).
    pub fn set_cpuid(&mut self, entries: &[CpuidEntry]) {
        self.sys.cpuid.entries = entries.to_vec();
    }

    pub fn get_cpuid(&self) -> Vec<CpuidEntry> {
        self.sys.cpuid.entries.clone()
    }

    /// Read MSRs; fails on the first index softvm does not implement.
    pub fn get_msrs(&mut self, entries: &mut [MsrEntry]) -> Result<(), VcpuError> {
        for e in entries.iter_mut() {
            let idx = e.index;
            e.data = self
                .with_exec(|x| crate::ops::msr::read(x, idx))
                .map_err(|_| VcpuError::UnknownMsr(idx))?;
        }
        Ok(())
    }

    pub fn set_msrs(&mut self, entries: &[MsrEntry]) -> Result<(), VcpuError> {
        for e in entries {
            self.with_exec(|x| crate::ops::msr::write(x, e.index, e.data))
                .map_err(|_| VcpuError::UnknownMsr(e.index))?;
        }
        Ok(())
    }

    /// Unimplemented instructions end `run()` with
    /// [`VcpuExit::InternalError`] instead of raising #UD in the guest.
    pub fn set_exit_on_unimplemented(&mut self, on: bool) {
        self.exit_on_unimplemented = on;
    }

    /// Stop with [`VcpuExit::InstructionLimit`] once the vCPU has retired
    /// `n` instructions in total.
    pub fn set_instruction_limit(&mut self, n: Option<u64>) {
        self.limit = n;
    }

    /// Instructions retired so far.
    pub fn instructions(&self) -> u64 {
        self.cpu.instret
    }

    /// Unimplemented instructions met so far.
    pub fn unimplemented_count(&self) -> u64 {
        self.sys.unimplemented
    }

    pub fn mmu(&self) -> &Mmu {
        &self.mmu
    }

    pub fn mmu_mut(&mut self) -> &mut Mmu {
        &mut self.mmu
    }

    pub fn is_halted(&self) -> bool {
        self.halted
    }

    fn with_exec<T>(&mut self, f: impl FnOnce(&mut Exec) -> T) -> T {
        let mut x = Exec {
            cpu: &mut self.cpu,
            mmu: &mut self.mmu,
            io: &mut self.io,
            sys: &mut self.sys,
            next_rip: 0,
            implicit_supervisor: false,
            signals: Signals::default(),
        };
        f(&mut x)
    }

    /// Turn a queued I/O request into an exit that borrows the data buffer.
    fn exit_for(&mut self, req: IoRequest) -> VcpuExit<'_> {
        self.current = Some(req);
        match req {
            IoRequest::PioIn { port, size } => {
                self.data = [0; 8];
                VcpuExit::IoIn(port, &mut self.data[..size as usize])
            }
            IoRequest::PioOut { port, size, data } => {
                self.data[..4].copy_from_slice(&data.to_le_bytes());
                VcpuExit::IoOut(port, &self.data[..size as usize])
            }
            IoRequest::MmioRead { gpa, size } => {
                self.data = [0; 8];
                VcpuExit::MmioRead(gpa, &mut self.data[..size as usize])
            }
            IoRequest::MmioWrite { gpa, size, data } => {
                self.data = data.to_le_bytes();
                VcpuExit::MmioWrite(gpa, &self.data[..size as usize])
            }
        }
    }

    /// Run until the next exit.
    pub fn run(&mut self) -> VcpuExit<'_> {
        // Complete the read the VMM answered in our data buffer.
        if let Some(req @ (IoRequest::PioIn { .. } | IoRequest::MmioRead { .. })) =
            self.current.take()
        {
            let n = match req {
                IoRequest::PioIn { size, .. } | IoRequest::MmioRead { size, .. } => size as usize,
                _ => 0,
            };
            let data = self.data;
            self.io.complete_read(&data[..n]);
        }
        self.current = None;
        if let Some(req) = self.io.queue.pop_front() {
            return self.exit_for(req);
        }
        if self.halted {
            // Nothing can wake us without an interrupt controller.
            return VcpuExit::Hlt;
        }
        self.mmu.enter();
        let mut section = 0u64;
        let exit = loop {
            if let Some(l) = self.limit {
                if self.cpu.instret >= l {
                    break Outcome::Limit;
                }
            }
            section += 1;
            if section >= SECTION_BUDGET {
                self.mmu.leave();
                self.mmu.enter();
                section = 0;
            }
            let mut x = Exec {
                cpu: &mut self.cpu,
                mmu: &mut self.mmu,
                io: &mut self.io,
                sys: &mut self.sys,
                next_rip: 0,
                implicit_supervisor: false,
                signals: Signals::default(),
            };
            let r = step(&mut x, &mut self.ins, &mut self.bytes);
            let sig = x.signals;
            self.shadow = sig.shadow;
            match r {
                StepResult::Done => {
                    if sig.shutdown {
                        break Outcome::Shutdown;
                    }
                    if sig.halt {
                        self.halted = true;
                        if self.io.queue.is_empty() {
                            break Outcome::Halt;
                        }
                    }
                    if !self.io.queue.is_empty() {
                        break Outcome::Io;
                    }
                }
                StepResult::Exception(e) => {
                    if x.deliver(Event::Exception(e)) == Delivery::TripleFault {
                        break Outcome::Shutdown;
                    }
                }
                StepResult::Exit => break Outcome::Read,
                StepResult::Unimplemented => {
                    x.sys.unimplemented += 1;
                    if self.exit_on_unimplemented {
                        break Outcome::Unimplemented;
                    }
                    if x.deliver(Event::Exception(Exception::new(vector::UD)))
                        == Delivery::TripleFault
                    {
                        break Outcome::Shutdown;
                    }
                }
            }
        };
        self.mmu.leave();
        match exit {
            Outcome::Limit => VcpuExit::InstructionLimit,
            Outcome::Shutdown => VcpuExit::Shutdown,
            Outcome::Halt => VcpuExit::Hlt,
            Outcome::Io => match self.io.queue.pop_front() {
                Some(req) => self.exit_for(req),
                None => VcpuExit::Hlt,
            },
            Outcome::Read => match self.io.awaiting {
                Some(req) => self.exit_for(req),
                None => VcpuExit::Shutdown,
            },
            Outcome::Unimplemented => {
                let mut bytes = [0u8; 15];
                bytes.copy_from_slice(&self.bytes[..15]);
                VcpuExit::InternalError {
                    rip: self.cpu.rip,
                    bytes,
                    len: self.ins.len().max(1),
                }
            }
        }
    }
}

enum Outcome {
    Limit,
    Shutdown,
    Halt,
    Io,
    Read,
    Unimplemented,
}
