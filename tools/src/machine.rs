//! A machine as `softvm run` builds it: RAM, the loaded image, devices, and
//! the loop that answers vCPU exits.

use crate::devices::{fw_cfg::FwCfg, Action, Bus};
use crate::status;
use anyhow::{Context, Result};
use emu_core::{Vcpu, VcpuExit, Vm, VmConfig};
use softmmu::{Backing, MemFlags};
use std::io::Write;
use std::time::{Duration, Instant};

/// What `run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub vcpus: u32,
    pub memory: u64,
    pub cmdline: String,
    pub modules: Vec<loader::Module>,
    pub timeout: Option<Duration>,
    pub max_instructions: Option<u64>,
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
pub fn build(image: &[u8], cfg: &RunConfig) -> Result<(Vm, Vcpu)> {
    let vm = Vm::new(VmConfig { vcpus: cfg.vcpus });
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
    let mut vcpu = vm.create_vcpu(0);
    vcpu.set_sregs(&boot.sregs);
    vcpu.set_regs(&boot.regs);
    Ok((vm, vcpu))
}

/// Instructions between wall-clock checks of `--timeout`.
const SLICE: u64 = 1 << 20;

/// Run the boot vCPU to completion, answering its exits with `bus`.
pub fn run<W: Write>(vcpu: &mut Vcpu, bus: &mut Bus<W>, cfg: &RunConfig) -> Outcome {
    let start = Instant::now();
    vcpu.set_exit_on_unimplemented(true);
    let outcome = loop {
        let next_limit = vcpu.instructions().saturating_add(SLICE);
        let limit = match cfg.max_instructions {
            Some(m) => next_limit.min(m),
            None => next_limit,
        };
        vcpu.set_instruction_limit(Some(limit));
        let exit = vcpu.run();
        match exit {
            VcpuExit::IoOut(port, data) => match bus.write(port, data) {
                Action::Continue => {}
                Action::GuestExit(v) => break (status::guest_exit(v), None),
                Action::PowerOff => break (status::POWER_OFF, None),
            },
            VcpuExit::IoIn(port, data) => bus.read(port, data),
            VcpuExit::MmioRead(_, data) => data.fill(0xff),
            VcpuExit::MmioWrite(..) => {}
            VcpuExit::Hlt => {
                break (
                    status::DEAD_HALT,
                    Some("guest halted with no interrupt that could wake it".to_string()),
                )
            }
            VcpuExit::Shutdown => {
                break (status::TRIPLE_FAULT, Some(describe(vcpu, "triple fault")))
            }
            VcpuExit::Debug => {}
            VcpuExit::InternalError { rip, bytes, len } => {
                let b = &bytes[..len.min(15)];
                let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
                let dis = disassemble(vcpu, b, rip);
                break (
                    status::UNSUPPORTED,
                    Some(format!(
                        "unsupported instruction at rip {rip:#x}: {dis} ({})",
                        hex.join(" ")
                    )),
                );
            }
            VcpuExit::InstructionLimit => {
                if cfg
                    .max_instructions
                    .is_some_and(|m| vcpu.instructions() >= m)
                {
                    break (
                        status::BUDGET,
                        Some(describe(
                            vcpu,
                            &format!("instruction budget of {} exhausted", vcpu.instructions()),
                        )),
                    );
                }
                if cfg.timeout.is_some_and(|t| start.elapsed() >= t) {
                    break (status::TIMEOUT, Some(describe(vcpu, "timeout")));
                }
            }
        }
    };
    bus.serial.flush();
    Outcome {
        status: outcome.0,
        message: outcome.1,
        instructions: vcpu.instructions(),
    }
}

fn describe(vcpu: &Vcpu, what: &str) -> String {
    let r = vcpu.get_regs();
    format!(
        "{what} at rip {:#x} after {} instructions",
        r.rip,
        vcpu.instructions()
    )
}

/// Disassemble the instruction bytes of an exit in the vCPU's mode.
fn disassemble(vcpu: &Vcpu, bytes: &[u8], rip: u64) -> String {
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
    let s = vcpu.get_sregs();
    let bitness = if s.efer & (1 << 10) != 0 && s.cs.l != 0 {
        64
    } else if s.cs.db != 0 {
        32
    } else {
        16
    };
    let mut dec = Decoder::with_ip(bitness, bytes, rip, DecoderOptions::NONE);
    let ins = dec.decode();
    let mut out = String::new();
    IntelFormatter::new().format(&ins, &mut out);
    out
}

/// Load and run a file: the whole of `softvm run`.
pub fn run_file<W: Write>(path: &std::path::Path, cfg: &RunConfig, out: W) -> Result<Outcome> {
    let image = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let (_vm, mut vcpu) =
        build(&image, cfg).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    let mut bus = Bus::new(out, FwCfg::new(cfg.memory, cfg.vcpus as u16));
    Ok(run(&mut vcpu, &mut bus, cfg))
}
