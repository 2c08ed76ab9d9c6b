//! `Vm`: guest memory and the vCPUs that share it.

use crate::vcpu::Vcpu;
use softmmu::{Backing, Gpa, GuestMemory, MemError, MemFlags};
use std::sync::Arc;

/// Machine-wide settings.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Number of vCPUs the VMM will create (reported in CPUID).
    pub vcpus: u32,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig { vcpus: 1 }
    }
}

/// A virtual machine: memslots plus vCPUs (`KVM_CREATE_VM`).
pub struct Vm {
    mem: Arc<GuestMemory>,
    config: VmConfig,
}

impl Vm {
    pub fn new(config: VmConfig) -> Vm {
        Vm {
            mem: GuestMemory::new(),
            config,
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

    /// `KVM_CREATE_VCPU`.
    pub fn create_vcpu(&self, id: u32) -> Vcpu {
        Vcpu::new(self.mem.clone(), id, self.config.vcpus)
    }
}
