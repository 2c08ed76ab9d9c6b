//! `Vcpu`: the KVM-shaped run loop around the interpreter.

mod events;

use crate::api_types::{Fpu, MsrEntry, Regs, Sregs};
use crate::apic::ApicBus;
use crate::cpu::model::CpuModel;
use crate::cpu::Cpu;
use crate::cpuid::CpuidEntry;
use crate::exception::{vector, Exception};
use crate::exec::cache::{run_batch, CacheStats, CodeCache};
use crate::exec::io::{IoRequest, IoState};
use crate::exec::{step, Exec, Signals, StepResult};
use crate::system::interrupt::{Delivery, Event};
use crate::system::SysState;
use iced_x86::Instruction;
use softmmu::Mmu;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// [`crate::Vm::request_stop`] was called (KVM returns EINTR).
    Interrupted,
}

/// Errors of the vCPU API itself (not guest faults).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VcpuError {
    /// MSR index not implemented
    #[error("MSR {0:#x} is not implemented")]
    UnknownMsr(u32),
}

/// What a tracing VMM is told about the CPU (see [`Vcpu::set_cpu_sink`]).
#[derive(Debug)]
pub enum CpuEvent<'a> {
    /// An instruction completed. `rip` is where it was.
    Instruction {
        rip: u64,
        bitness: u32,
        ins: &'a Instruction,
    },
    /// An exception is being delivered (or escalated to a triple fault).
    Exception {
        rip: u64,
        vector: u8,
        error_code: Option<u32>,
        cr2: Option<u64>,
    },
    /// Delivery finished: execution continues at `rip` (the handler).
    Delivered { vector: u8, rip: u64 },
    /// The instruction at `rip` is not implemented.
    Unimplemented { rip: u64 },
}

/// Observer of CPU events, for tracing and teaching.
pub trait CpuSink: Send + Sync {
    fn event(&self, ev: &CpuEvent<'_>);
}

/// `KVM_MP_STATE_*`: whether a vCPU runs, halted, or waits for SIPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MpState {
    Runnable,
    Halted,
    /// After RESET (application processors) or INIT.
    WaitForSipi,
}

/// How long a halted vCPU sleeps waiting for an IPI before returning
/// `Hlt` to its VMM (which may decide the VM is stuck, or run it again).
const HALT_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Instructions between checks of the VM-wide stop request.
const STOP_CHECK: u64 = 1 << 12;

/// How many instructions a vCPU runs inside one SRCU read section before
/// leaving it briefly, so that memslot updates never wait long.
const SECTION_BUDGET: u64 = 1 << 16;

/// One virtual CPU.
pub struct Vcpu {
    pub(crate) cpu: Cpu,
    pub(crate) mmu: Mmu,
    /// Decoded blocks and the VM's code-page versions.
    pub(crate) code: CodeCache,
    pub(crate) io: IoState,
    pub(crate) sys: SysState,
    data: [u8; 8],
    mp_state: MpState,
    /// The APIC may have a deliverable interrupt (re-evaluated after APIC
    /// changes), so the per-instruction check is one load.
    intr_pending: bool,
    /// TSC value at which the APIC timer fires next (u64::MAX: never).
    next_deadline: u64,
    stop: Arc<AtomicBool>,
    /// Exceptions delivered. They count toward the instruction budget, so
    /// a guest looping on a fault that retires nothing still ends.
    exceptions: u64,
    exit_on_unimplemented: bool,
    limit: Option<u64>,
    ins: Instruction,
    bytes: [u8; 16],
    /// The request being reported to the VMM by the last exit.
    current: Option<IoRequest>,
    shadow: bool,
    sink: Option<Arc<dyn CpuSink>>,
}

impl Vcpu {
    pub(crate) fn new(
        mem: Arc<softmmu::GuestMemory>,
        id: u32,
        ncpus: u32,
        bus: Arc<ApicBus>,
        stop: Arc<AtomicBool>,
        model: &CpuModel,
        seed: u64,
    ) -> Vcpu {
        let sys = SysState::new(id, ncpus, bus, model, seed);
        let mut cpu = Cpu::new();
        cpu.apic_base = sys.apic.base();
        let mut mmu = Mmu::new(mem.clone());
        mmu.set_phys_addr_bits(sys.cpuid.phys_bits());
        Vcpu {
            cpu,
            code: CodeCache::new(&mem),
            mmu,
            io: IoState::default(),
            sys,
            data: [0; 8],
            // As with KVM's in-kernel APIC, application processors wait for
            // INIT and SIPI; the bootstrap processor runs.
            mp_state: if id == 0 {
                MpState::Runnable
            } else {
                MpState::WaitForSipi
            },
            intr_pending: false,
            next_deadline: u64::MAX,
            stop,
            exceptions: 0,
            exit_on_unimplemented: false,
            limit: None,
            ins: Instruction::default(),
            bytes: [0; 16],
            current: None,
            shadow: false,
            sink: None,
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

    /// Like `KVM_SET_SREGS`, this loads the PAE PDPTE registers from the
    /// new CR3 when PAE paging is in use. A PDPT with a reserved bit set is
    /// not loaded (KVM ignores the failure too); walks under a CR3 whose
    /// PDPTEs were never loaded read them from memory and fault.
    pub fn set_sregs(&mut self, s: &Sregs) {
        self.cpu.set_sregs(s);
        self.mmu.flush(softmmu::Flush::All);
        let ctx = softmmu::PagingCtx {
            cr0: s.cr0,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer,
            ac: false,
        };
        let _ = self.mmu.load_pdptes(&ctx);
    }

    /// `KVM_GET_FPU`.
    pub fn get_fpu(&self) -> Fpu {
        self.cpu.get_fpu()
    }

    /// `KVM_SET_FPU`.
    pub fn set_fpu(&mut self, f: &Fpu) {
        self.cpu.set_fpu(f);
    }

    /// Replace the CPUID table (`KVM_SET_CPUID2`). The instructions the
    /// vCPU runs follow it from the next instruction on (features softvm
    /// does not implement stay #UD), and so does the physical address
    /// width the MMU checks reserved bits against.
    pub fn set_cpuid(&mut self, entries: &[CpuidEntry]) {
        self.sys.set_cpuid(entries.to_vec());
        self.code.blocks.flush();
        self.mmu.set_phys_addr_bits(self.sys.cpuid.phys_bits());
    }

    /// Replace the CPUID table with the one of `model`.
    pub fn set_cpu_model(&mut self, model: &CpuModel) {
        let ncpus = self.sys.bus.len().max(1) as u32;
        let t = crate::cpuid::Cpuid::for_model(model, self.sys.vcpu_id, ncpus);
        self.set_cpuid(&t.entries);
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
        self.cpu.instret + self.exceptions
    }

    /// Unimplemented instructions met so far.
    pub fn unimplemented_count(&self) -> u64 {
        self.sys.unimplemented
    }

    /// Report instructions and exceptions to `sink` (slows execution).
    pub fn set_cpu_sink(&mut self, sink: Option<Arc<dyn CpuSink>>) {
        self.sink = sink;
    }

    pub fn mmu(&self) -> &Mmu {
        &self.mmu
    }

    /// Turn the decoded-instruction cache off (every instruction is decoded
    /// each time it runs and executed by the handler of its instruction
    /// family, without the specialised fast forms: the reference the cache
    /// and the fast forms are tested against) or on.
    pub fn set_code_cache(&mut self, on: bool) {
        self.code.blocks.set_enabled(on);
    }

    /// Counters of the decoded-instruction cache.
    pub fn code_cache_stats(&self) -> CacheStats {
        self.code.blocks.stats
    }

    pub fn mmu_mut(&mut self) -> &mut Mmu {
        &mut self.mmu
    }

    pub fn is_halted(&self) -> bool {
        self.mp_state != MpState::Runnable
    }

    /// `KVM_GET_MP_STATE`.
    pub fn get_mp_state(&self) -> MpState {
        self.mp_state
    }

    /// `KVM_SET_MP_STATE`.
    pub fn set_mp_state(&mut self, s: MpState) {
        self.mp_state = s;
    }

    /// Whether this vCPU, halted or waiting, could ever run again without
    /// another vCPU or the VMM doing something: only its own APIC timer
    /// can wake it, and only if interrupts are enabled.
    pub fn can_wake_alone(&self) -> bool {
        match self.mp_state {
            MpState::Runnable => true,
            MpState::WaitForSipi => false,
            MpState::Halted => {
                self.cpu.flags.test(crate::cpu::flags::IF)
                    && (self.sys.apic.next_deadline().is_some() || self.intr_pending)
            }
        }
    }

    /// The local APIC (for VMMs that inspect or inject).
    pub fn apic(&self) -> &crate::apic::LocalApic {
        &self.sys.apic
    }

    fn with_exec<T>(&mut self, f: impl FnOnce(&mut Exec) -> T) -> T {
        f(&mut self.exec())
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
        let outcome = loop {
            if self.stop.load(Ordering::Relaxed) {
                break Outcome::Interrupted;
            }
            if let Some(o) = self.service_events() {
                break o;
            }
            match self.mp_state {
                MpState::Runnable => {
                    if let Some(o) = self.execute() {
                        break o;
                    }
                }
                MpState::Halted | MpState::WaitForSipi => {
                    if let Some(o) = self.idle() {
                        break o;
                    }
                }
            }
        };
        self.finish(outcome)
    }

    /// Run instructions until something needs the run loop's attention.
    fn execute(&mut self) -> Option<Outcome> {
        self.mmu.enter();
        let mut section = 0u64;
        let outcome = loop {
            if let Some(l) = self.limit {
                if self.cpu.instret + self.exceptions >= l {
                    break Some(Outcome::Limit);
                }
            }
            // Events: IPIs in the mailbox, the timer, a deliverable interrupt.
            if self.sys.mailbox.has_pending()
                || self.sys.clock.now_tsc(self.cpu.instret) >= self.next_deadline
                || (self.intr_pending && !self.shadow && self.cpu.flags.test(crate::cpu::flags::IF))
            {
                break None;
            }
            // Batches are at most STOP_CHECK long, so the stop request is
            // seen within that many instructions.
            if section != 0 && self.stop.load(Ordering::Relaxed) {
                break None;
            }
            if section >= SECTION_BUDGET {
                self.mmu.leave();
                self.mmu.enter();
                section = 0;
            }
            let instret = self.cpu.instret;
            let mut x = Exec {
                cpu: &mut self.cpu,
                mmu: &mut self.mmu,
                io: &mut self.io,
                sys: &mut self.sys,
                next_rip: 0,
                instret,
                implicit_supervisor: false,
                fast_forms: self.code.blocks.enabled(),
                signals: Signals::default(),
                code: &self.code.pages,
            };
            let rip = x.cpu.rip;
            // As many instructions as can run before the loop must look
            // again: limit, timer deadline, read section, stop checks.
            let mut budget = (SECTION_BUDGET - section).min(STOP_CHECK);
            if let Some(l) = self.limit {
                budget = budget.min(l - x.instret - self.exceptions);
            }
            if self.next_deadline != u64::MAX {
                let now = x.sys.clock.now_tsc(x.instret);
                let per = x.sys.clock.tsc_per_insn.max(1);
                budget = budget.min((self.next_deadline - now).div_ceil(per));
            }
            // A tracer sees every instruction decoded: step one at a time.
            let (r, n) = if self.sink.is_some() {
                (step(&mut x, &mut self.ins, &mut self.bytes), 1)
            } else {
                run_batch(
                    &mut x,
                    &mut self.code.blocks,
                    &mut self.ins,
                    &mut self.bytes,
                    budget,
                )
            };
            x.cpu.clear_hot();
            x.cpu.instret = x.instret;
            section += n;
            let sig = x.signals;
            self.shadow = sig.shadow;
            if let Some(sink) = &self.sink {
                report(sink.as_ref(), &r, rip, &self.ins);
            }
            match r {
                StepResult::Done => {
                    if sig.shutdown {
                        break Some(Outcome::Shutdown);
                    }
                    if std::mem::take(&mut x.sys.apic_touched) {
                        self.refresh_interrupts();
                    }
                    if sig.halt {
                        self.mp_state = MpState::Halted;
                        if !self.io.queue.is_empty() {
                            break Some(Outcome::Io);
                        }
                        break None;
                    }
                    if !self.io.queue.is_empty() {
                        break Some(Outcome::Io);
                    }
                }
                StepResult::Exception(e) => {
                    self.exceptions += 1;
                    if x.deliver(Event::Exception(e)) == Delivery::TripleFault {
                        break Some(Outcome::Shutdown);
                    }
                    if let Some(sink) = &self.sink {
                        sink.event(&CpuEvent::Delivered {
                            vector: e.vector,
                            rip: x.cpu.rip,
                        });
                    }
                }
                StepResult::Exit => break Some(Outcome::Read),
                StepResult::Unimplemented => {
                    x.sys.unimplemented += 1;
                    if self.exit_on_unimplemented {
                        break Some(Outcome::Unimplemented);
                    }
                    self.exceptions += 1;
                    if x.deliver(Event::Exception(Exception::new(vector::UD)))
                        == Delivery::TripleFault
                    {
                        break Some(Outcome::Shutdown);
                    }
                }
            }
            // Delivering an exception may have written MMIO (a stack there).
            if !self.io.queue.is_empty() {
                break Some(Outcome::Io);
            }
        };
        self.mmu.leave();
        outcome
    }

    /// Turn the loop's outcome into the exit the VMM sees.
    fn finish(&mut self, outcome: Outcome) -> VcpuExit<'_> {
        match outcome {
            Outcome::Limit => VcpuExit::InstructionLimit,
            Outcome::Shutdown => VcpuExit::Shutdown,
            Outcome::Halt => VcpuExit::Hlt,
            Outcome::Interrupted => VcpuExit::Interrupted,
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

/// Tell a sink what the last step did.
fn report(sink: &dyn CpuSink, r: &StepResult, rip: u64, ins: &Instruction) {
    match *r {
        StepResult::Done => sink.event(&CpuEvent::Instruction {
            rip,
            bitness: code_bitness(ins),
            ins,
        }),
        StepResult::Exception(e) => sink.event(&CpuEvent::Exception {
            rip,
            vector: e.vector,
            error_code: e.error_code(),
            cr2: e.cr2(),
        }),
        StepResult::Unimplemented => sink.event(&CpuEvent::Unimplemented { rip }),
        StepResult::Exit => {}
    }
}

/// The code size an instruction was decoded for, in bits.
fn code_bitness(ins: &Instruction) -> u32 {
    match ins.code_size() {
        iced_x86::CodeSize::Code16 => 16,
        iced_x86::CodeSize::Code32 => 32,
        _ => 64,
    }
}

pub(crate) enum Outcome {
    Interrupted,
    Limit,
    Shutdown,
    Halt,
    Io,
    Read,
    Unimplemented,
}
