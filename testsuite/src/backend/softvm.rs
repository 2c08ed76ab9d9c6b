//! The softvm backend: emu-core's `Vm`/`Vcpu` with an instruction cap.

use super::{describe_bytes, Backend, BackendError, Devices, Exit, RAM_SIZE};
use emu_core::{CpuidEntry, Regs, Sregs, Vcpu, VcpuExit, Vm, VmConfig};
use softmmu::{Backing, Gpa, MemFlags};

/// softvm with one vCPU and [`RAM_SIZE`] of RAM at gpa 0.
pub struct SoftvmBackend {
    vm: Vm,
    vcpu: Vcpu,
}

impl SoftvmBackend {
    /// A VM whose vCPU stops with [`Exit::Limit`] after `max_instructions`
    /// and reports unimplemented instructions as [`Exit::InternalError`].
    pub fn new(max_instructions: u64) -> Result<SoftvmBackend, BackendError> {
        let vm = Vm::new(VmConfig::default());
        vm.set_user_memory_region(0, MemFlags::empty(), 0, RAM_SIZE, Backing::Anonymous)
            .map_err(|e| BackendError::new(format!("softvm memory: {e}")))?;
        let mut vcpu = vm.create_vcpu(0);
        vcpu.set_instruction_limit(Some(max_instructions));
        vcpu.set_exit_on_unimplemented(true);
        Ok(SoftvmBackend { vm, vcpu })
    }

    /// Instructions retired so far.
    pub fn instructions(&self) -> u64 {
        self.vcpu.instructions()
    }
}

impl Backend for SoftvmBackend {
    fn name(&self) -> &'static str {
        "softvm"
    }

    fn write_memory(&mut self, gpa: u64, data: &[u8]) -> Result<(), BackendError> {
        self.vm
            .memory()
            .write_phys(Gpa::new(gpa), data)
            .map_err(|e| BackendError::new(format!("softvm write {gpa:#x}: {e}")))
    }

    fn read_memory(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        self.vm
            .memory()
            .read_phys(Gpa::new(gpa), buf)
            .map_err(|e| BackendError::new(format!("softvm read {gpa:#x}: {e}")))
    }

    fn set_cpuid(&mut self, entries: &[CpuidEntry]) -> Result<(), BackendError> {
        self.vcpu.set_cpuid(entries);
        Ok(())
    }

    fn set_regs(&mut self, regs: &Regs) -> Result<(), BackendError> {
        self.vcpu.set_regs(regs);
        Ok(())
    }

    fn get_regs(&mut self) -> Result<Regs, BackendError> {
        Ok(self.vcpu.get_regs())
    }

    fn set_sregs(&mut self, sregs: &Sregs) -> Result<(), BackendError> {
        self.vcpu.set_sregs(sregs);
        Ok(())
    }

    fn get_sregs(&mut self) -> Result<Sregs, BackendError> {
        Ok(self.vcpu.get_sregs())
    }

    fn run(&mut self, dev: &mut Devices) -> Result<Exit, BackendError> {
        Ok(match self.vcpu.run() {
            VcpuExit::IoIn(port, buf) => {
                dev.read_port(port, buf);
                Exit::IoIn {
                    port,
                    data: buf.to_vec(),
                }
            }
            VcpuExit::IoOut(port, data) => Exit::IoOut {
                port,
                data: data.to_vec(),
            },
            VcpuExit::MmioRead(gpa, buf) => {
                dev.read_mmio(gpa, buf);
                Exit::MmioRead {
                    gpa,
                    data: buf.to_vec(),
                }
            }
            VcpuExit::MmioWrite(gpa, data) => Exit::MmioWrite {
                gpa,
                data: data.to_vec(),
            },
            VcpuExit::Hlt => Exit::Hlt,
            VcpuExit::Shutdown => Exit::Shutdown,
            VcpuExit::InstructionLimit => Exit::Limit,
            VcpuExit::InternalError { rip, bytes, len } => {
                let n = len.clamp(1, bytes.len());
                Exit::InternalError {
                    rip,
                    what: format!(
                        "unimplemented instruction {}",
                        describe_bytes(rip, &bytes[..n])
                    ),
                }
            }
            VcpuExit::Debug => Exit::Other("debug".into()),
            VcpuExit::Interrupted => Exit::Other("interrupted".into()),
        })
    }
}
