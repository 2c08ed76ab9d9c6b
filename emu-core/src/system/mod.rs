//! System state beyond the register file: CPUID, the clock, interrupt
//! delivery, descriptor tables and segment loads.

pub mod descriptor;
pub mod interrupt;

use crate::cpuid::Cpuid;

/// The guest's notion of time. By default it is derived from retired
/// instructions, so runs are deterministic: one instruction = `tsc_per_insn`
/// TSC ticks.
#[derive(Clone, Debug)]
pub struct Clock {
    pub tsc_per_insn: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { tsc_per_insn: 1 }
    }
}

impl Clock {
    #[inline]
    pub fn now_tsc(&self, instret: u64) -> u64 {
        instret.wrapping_mul(self.tsc_per_insn)
    }
}

/// Per-vCPU system state the instruction handlers need.
#[derive(Clone, Debug)]
pub struct SysState {
    pub cpuid: Cpuid,
    pub clock: Clock,
    /// Instructions that were decoded but are not implemented.
    pub unimplemented: u64,
    pub vcpu_id: u32,
}

impl SysState {
    pub fn new(vcpu_id: u32, ncpus: u32) -> SysState {
        SysState {
            cpuid: Cpuid::default_model(vcpu_id, ncpus),
            clock: Clock::default(),
            unimplemented: 0,
            vcpu_id,
        }
    }
}
