//! System state beyond the register file: CPUID, the clock, interrupt
//! delivery, descriptor tables and segment loads.

pub mod descriptor;
pub mod entropy;
pub mod interrupt;

use crate::apic::{ApicBus, LocalApic, Mailbox};
use crate::cpu::model::CpuModel;
use crate::cpuid::Cpuid;
use crate::exec::gate::Gate;
use std::sync::Arc;

/// The guest's notion of time. By default it is derived from retired
/// instructions, so runs are deterministic: one instruction = `tsc_per_insn`
/// TSC ticks.
/// A halted vCPU skips ahead to its next timer deadline instead of
/// sleeping, which keeps runs deterministic: `skipped` counts those ticks.
#[derive(Clone, Debug)]
pub struct Clock {
    pub tsc_per_insn: u64,
    pub skipped: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            tsc_per_insn: 1,
            skipped: 0,
        }
    }
}

impl Clock {
    /// TSC ticks since reset (before IA32_TSC adjustments).
    #[inline]
    pub fn now_tsc(&self, instret: u64) -> u64 {
        instret
            .wrapping_mul(self.tsc_per_insn)
            .wrapping_add(self.skipped)
    }
}

/// Per-vCPU system state the instruction handlers need.
pub struct SysState {
    pub cpuid: Cpuid,
    /// Which instructions the CPUID table lets run (see `exec::gate`).
    pub gate: Gate,
    pub clock: Clock,
    /// Instructions that were decoded but are not implemented.
    pub unimplemented: u64,
    pub vcpu_id: u32,
    /// This vCPU's local APIC.
    pub apic: LocalApic,
    /// The VM's interrupt fabric and this vCPU's place on it.
    pub bus: Arc<ApicBus>,
    pub bus_index: usize,
    /// Our mailbox, cached so the per-instruction check is one atomic load.
    pub mailbox: Arc<Mailbox>,
    /// Set by handlers that changed APIC state (MMIO, MSR, CR8, EOI): the
    /// run loop re-evaluates pending interrupts.
    pub apic_touched: bool,
    /// RDRAND/RDSEED's deterministic source (see [`entropy`]).
    pub entropy: entropy::Entropy,
}

impl SysState {
    /// The state of vCPU `vcpu_id` of `ncpus`; `seed` is the VM's
    /// random-number seed (RDRAND/RDSEED).
    pub fn new(
        vcpu_id: u32,
        ncpus: u32,
        bus: Arc<ApicBus>,
        model: &CpuModel,
        seed: u64,
    ) -> SysState {
        let mut apic = LocalApic::new(vcpu_id);
        let bus_index = bus.register(&mut apic);
        let mailbox = bus
            .mailbox(bus_index)
            .unwrap_or_else(|| Arc::new(Mailbox::default()));
        let cpuid = Cpuid::for_model(model, vcpu_id, ncpus);
        SysState {
            gate: Gate::from_cpuid(&cpuid),
            cpuid,
            clock: Clock::default(),
            unimplemented: 0,
            vcpu_id,
            apic,
            bus,
            bus_index,
            mailbox,
            apic_touched: false,
            entropy: entropy::Entropy::new(seed, vcpu_id),
        }
    }

    /// Replace the CPUID table and the gate derived from it.
    pub fn set_cpuid(&mut self, entries: Vec<crate::cpuid::CpuidEntry>) {
        self.cpuid = Cpuid { entries };
        self.gate = Gate::from_cpuid(&self.cpuid);
    }

    /// Bring the APIC's clock to `tsc` (it never reads host time).
    #[inline]
    pub fn sync_apic_clock(&mut self, instret: u64) {
        let now = self.clock.now_tsc(instret);
        self.apic.advance(now);
    }
}
