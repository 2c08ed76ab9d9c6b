//! A machine: RAM laid out by [`loader::layout::RamLayout`], vCPUs, the
//! devices of its configuration, and the image loaded into it.

use crate::acpi::AcpiLayout;
use crate::bus::Bus;
use crate::config::{ConfigError, MachineConfig};
use crate::run;
use crate::status::Outcome;
use emu_core::{Vcpu, Vm, VmConfig};
use loader::layout::RamLayout;
use softmmu::{Backing, MemFlags};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

/// The serial output of a machine (boxed: embedders choose the writer).
pub type SerialOut = Box<dyn Write + Send>;

/// Why a machine could not be built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// A configuration value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The image could not be loaded.
    #[error(transparent)]
    Load(#[from] loader::LoadError),
    /// Guest RAM could not be mapped.
    #[error("cannot map guest RAM: {0}")]
    Memory(#[from] softmmu::MemError),
    /// The image file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// A PC-like machine, ready to run. See the [crate documentation](crate).
pub struct Machine {
    pub(crate) vm: Vm,
    pub(crate) vcpus: Vec<Vcpu>,
    pub(crate) bus: Bus<SerialOut>,
    pub(crate) config: MachineConfig,
    pub(crate) acpi: AcpiLayout,
}

impl Machine {
    /// RAM and devices as `config` says, no image: vCPU 0 in its reset
    /// state, the others waiting for SIPI. The serial output is discarded
    /// until [`Machine::set_serial_output`].
    pub fn new(config: &MachineConfig) -> Result<Machine, MachineError> {
        Machine::new_observed(config, None)
    }

    /// [`Machine::new`], with `sink` told about memslot installs from the
    /// start (for traces).
    pub fn new_observed(
        config: &MachineConfig,
        sink: Option<Arc<dyn softmmu::MmuSink>>,
    ) -> Result<Machine, MachineError> {
        let cpu = config.validate()?.model;
        let vm = Vm::new(VmConfig {
            vcpus: config.vcpus,
            cpu,
            ..VmConfig::default()
        });
        vm.memory().set_sink(sink);
        // Anonymous mappings: the host commits a page only when the guest
        // touches it, so a large --memory costs nothing up front.
        for (slot, (start, len)) in (0u32..).zip(RamLayout::new(config.memory).regions()) {
            vm.set_user_memory_region(slot, MemFlags::empty(), start, len, Backing::Anonymous)?;
        }
        // The firmware's tables, in the BIOS area the loader keeps free.
        let acpi = crate::acpi::install(config.vcpus, vm.memory())?;
        let vcpus = (0..config.vcpus).map(|i| vm.create_vcpu(i)).collect();
        let out: SerialOut = Box::new(std::io::sink());
        Ok(Machine {
            bus: Bus::new(config, out),
            vm,
            vcpus,
            config: config.clone(),
            acpi,
        })
    }

    /// A machine with `image` loaded and vCPU 0 at its entry point.
    pub fn boot(config: &MachineConfig, image: &[u8]) -> Result<Machine, MachineError> {
        let mut m = Machine::new(config)?;
        m.load(image)?;
        Ok(m)
    }

    /// Load `image` (multiboot or bare-metal ELF64, see [`loader`]) with
    /// the configuration's command line and modules, and set vCPU 0's
    /// registers to its boot state.
    pub fn load(&mut self, image: &[u8]) -> Result<loader::BootState, MachineError> {
        let opts = loader::LoadOptions {
            mem_size: self.config.memory,
            cmdline: self.config.cmdline.clone(),
            modules: self.config.modules.clone(),
            vcpus: self.config.vcpus,
        };
        let boot = loader::load(image, self.vm.memory(), &opts)?;
        if let Some(v) = self.vcpus.first_mut() {
            v.set_sregs(&boot.sregs);
            v.set_regs(&boot.regs);
        }
        Ok(boot)
    }

    /// Send the guest's serial output (COM1) to `out`.
    pub fn set_serial_output(&mut self, out: impl Write + Send + 'static) {
        if let Some(s) = self.bus.serial.as_mut() {
            s.set_output(Box::new(out));
        }
    }

    /// Feed COM1's receiver from `input` (read on a thread of its own).
    pub fn attach_serial_input(&mut self, input: impl Read + Send + 'static) {
        if let Some(s) = self.bus.serial.as_mut() {
            s.attach_input(input);
        }
    }

    /// The VM (memory, APIC bus).
    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    /// The vCPUs, vCPU 0 first.
    pub fn vcpus_mut(&mut self) -> &mut [Vcpu] {
        &mut self.vcpus
    }

    /// The devices.
    pub fn bus_mut(&mut self) -> &mut Bus<SerialOut> {
        &mut self.bus
    }

    /// The VM, the vCPUs and the devices at once, for a VMM that runs its
    /// own loop: `vcpu.run()`, then [`Bus::answer`] with the exit.
    pub fn parts_mut(&mut self) -> (&Vm, &mut [Vcpu], &mut Bus<SerialOut>) {
        (&self.vm, &mut self.vcpus, &mut self.bus)
    }

    /// Where the ACPI tables are.
    pub fn acpi(&self) -> &AcpiLayout {
        &self.acpi
    }

    /// The configuration the machine was built from.
    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    /// Run every vCPU until the machine ends (guest exit, power-off,
    /// triple fault, unsupported instruction, budget, timeout, or every
    /// vCPU halted for good).
    pub fn run(self) -> Outcome {
        run::run(self, None)
    }

    /// [`Machine::run`], telling `note` about each MMIO access no device
    /// claimed (for traces).
    pub fn run_observed(self, note: &(dyn Fn(String) + Sync)) -> Outcome {
        run::run(self, Some(note))
    }
}

/// QEMU hands a multiboot kernel the command line "FILE ARGS" (test
/// kernels such as kvm-unit-tests take `argv[0]` from it); do the same.
pub fn with_program_name(image: &[u8], path: &Path, cfg: &MachineConfig) -> MachineConfig {
    let mut cfg = cfg.clone();
    if matches!(loader::detect(image), Ok(loader::ImageKind::Multiboot32)) {
        cfg.cmdline = if cfg.cmdline.is_empty() {
            path.display().to_string()
        } else {
            format!("{} {}", path.display(), cfg.cmdline)
        };
    }
    cfg
}

/// Read `path`, boot it as `softvm run` does (the file name first on a
/// multiboot command line) and run it, the serial output going to `out`.
pub fn run_file(
    path: &Path,
    cfg: &MachineConfig,
    out: impl Write + Send + 'static,
) -> Result<Outcome, MachineError> {
    let image = std::fs::read(path).map_err(|source| MachineError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let cfg = with_program_name(&image, path, cfg);
    let mut m = Machine::boot(&cfg, &image)?;
    m.set_serial_output(out);
    Ok(m.run())
}
