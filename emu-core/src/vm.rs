//! `Vm`: guest memory and the vCPUs that share it.

use crate::apic::ApicBus;
use crate::cpu::model::CpuModel;
use crate::vcpu::Vcpu;
use softmmu::{Backing, Gpa, GuestMemory, MemError, MemFlags};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Machine-wide settings.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Number of vCPUs the VMM will create (reported in CPUID).
    pub vcpus: u32,
    /// The CPU model every vCPU starts with (see [`CpuModel::parse`]).
    pub cpu: CpuModel,
    /// Seed of RDRAND and RDSEED: every vCPU draws from its own stream of
    /// a generator keyed by it, so runs with the same seed repeat exactly.
    pub seed: u64,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            vcpus: 1,
            cpu: CpuModel::max(),
            seed: crate::system::entropy::DEFAULT_SEED,
        }
    }
}

/// A virtual machine: memslots plus vCPUs (`KVM_CREATE_VM`).
pub struct Vm {
    mem: Arc<GuestMemory>,
    config: VmConfig,
    /// The interrupt fabric between the vCPUs' local APICs.
    bus: Arc<ApicBus>,
    /// Set by [`Vm::request_stop`]; every vCPU's `run()` returns
    /// `Interrupted` soon after.
    stop: Arc<AtomicBool>,
}

impl Vm {
    pub fn new(config: VmConfig) -> Vm {
        Vm {
            mem: GuestMemory::new(),
            config,
            bus: Arc::new(ApicBus::new()),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// `KVM_SET_USER_MEMORY_REGION`: size 0 deletes the slot. Safe to call
    /// while vCPUs run on other threads.
    pub fn set_user_memory_region(
        &self,
        slot: u32,
        flags: MemFlags,
        guest_phys_addr: u64,
        size: u64,
        backing: Backing,
    ) -> Result<(), MemError> {
        self.mem
            .set_user_memory_region(slot, flags, Gpa::new(guest_phys_addr), size, backing)
    }

    /// The guest memory, shared with every vCPU.
    pub fn memory(&self) -> &Arc<GuestMemory> {
        &self.mem
    }

    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// `KVM_CREATE_VCPU`. vCPU 0 is the bootstrap processor; the others
    /// wait for INIT and SIPI, as with KVM's in-kernel APIC.
    pub fn create_vcpu(&self, id: u32) -> Vcpu {
        Vcpu::new(
            self.mem.clone(),
            id,
            self.config.vcpus,
            self.bus.clone(),
            self.stop.clone(),
            &self.config.cpu,
            self.config.seed,
        )
    }

    /// The APIC bus, for devices that raise interrupts (MSI, I/O APIC).
    pub fn apic_bus(&self) -> &Arc<ApicBus> {
        &self.bus
    }

    /// Ask every vCPU to return from `run()` (with `Interrupted`), waking
    /// those that sleep in HLT. Safe from any thread.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for i in 0..self.bus.len() {
            self.bus.kick(i);
        }
    }

    /// Whether [`Vm::request_stop`] was called.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
