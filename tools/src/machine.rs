//! A machine as `softvm run` builds it: RAM, the loaded image, devices, and
//! the loops that answer vCPU exits (`machine/run.rs`).

mod run;

pub use run::{run, run_observed};

use crate::devices::{fw_cfg::FwCfg, Bus};
use anyhow::{Context, Result};
use emu_core::{Vcpu, Vm, VmConfig};
use softmmu::{Backing, MemFlags};
use std::io::Write;
use std::time::Duration;

/// What `run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub vcpus: u32,
    pub memory: u64,
    pub cmdline: String,
    pub modules: Vec<loader::Module>,
    pub timeout: Option<Duration>,
    pub max_instructions: Option<u64>,
    /// Connect stdin to the receiver of COM1.
    pub serial_stdin: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            vcpus: 1,
            memory: 128 << 20,
            cmdline: String::new(),
            modules: Vec::new(),
            timeout: None,
            max_instructions: None,
            serial_stdin: false,
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: i32,
    /// softvm's one-line diagnostic for stderr (none for guest exits).
    pub message: Option<String>,
    pub instructions: u64,
}

/// The MMIO hole below 4 GiB where devices live (APIC, IOAPIC, pc-testdev).
const PCI_HOLE: u64 = 0xc000_0000;

/// Build the VM and load `image` into it.
pub fn build(image: &[u8], cfg: &RunConfig) -> Result<(Vm, Vec<Vcpu>)> {
    build_observed(image, cfg, None)
}

/// [`build`], with `sink` told about memslot installs from the start.
pub fn build_observed(
    image: &[u8],
    cfg: &RunConfig,
    sink: Option<std::sync::Arc<dyn softmmu::MmuSink>>,
) -> Result<(Vm, Vec<Vcpu>)> {
    let vm = Vm::new(VmConfig {
        vcpus: cfg.vcpus,
        ..VmConfig::default()
    });
    vm.memory().set_sink(sink);
    let low = cfg.memory.min(PCI_HOLE);
    vm.set_user_memory_region(0, MemFlags::empty(), 0, low, Backing::Anonymous)
        .context("cannot allocate guest RAM")?;
    if cfg.memory > PCI_HOLE {
        vm.set_user_memory_region(
            1,
            MemFlags::empty(),
            1 << 32,
            cfg.memory - PCI_HOLE,
            Backing::Anonymous,
        )
        .context("cannot allocate guest RAM above 4 GiB")?;
    }
    let opts = loader::LoadOptions {
        mem_size: cfg.memory,
        cmdline: cfg.cmdline.clone(),
        modules: cfg.modules.clone(),
        vcpus: cfg.vcpus,
    };
    let boot = loader::load(image, vm.memory(), &opts)?;
    let mut vcpus: Vec<Vcpu> = (0..cfg.vcpus).map(|i| vm.create_vcpu(i)).collect();
    vcpus[0].set_sregs(&boot.sregs);
    vcpus[0].set_regs(&boot.regs);
    Ok((vm, vcpus))
}

/// QEMU hands a multiboot kernel the command line "FILE ARGS" (test
/// kernels such as kvm-unit-tests take argv[0] from it); do the same.
pub fn with_program_name(image: &[u8], path: &std::path::Path, cfg: &RunConfig) -> RunConfig {
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

/// Load and run a file: the whole of `softvm run`.
pub fn run_file<W: Write + Send>(
    path: &std::path::Path,
    cfg: &RunConfig,
    out: W,
) -> Result<Outcome> {
    let image = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let cfg = &with_program_name(&image, path, cfg);
    let (vm, vcpus) =
        build(&image, cfg).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    let mut bus = Bus::new(out, FwCfg::new(cfg.memory, cfg.vcpus as u16));
    if cfg.serial_stdin {
        bus.serial.attach_input(std::io::stdin());
    }
    Ok(run(&vm, vcpus, bus, cfg))
}
