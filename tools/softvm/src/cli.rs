//! The command line, on clap: the commands, one shared set of machine
//! options, and the rendering of clap's errors as softvm's one-line
//! diagnostics (runners read stderr, so a usage error is one line that
//! names the option, the valid range and, for a typo, the likely option).

use clap::{Args, Parser, Subcommand};
use softvm_machine::config::{self, ConfigError};
use softvm_machine::{status, MachineConfig};
use std::path::PathBuf;
use std::time::Duration;

const ABOUT: &str =
    "softvm — a software x86-64 virtual machine that runs test kernels without /dev/kvm";

const AFTER: &str = "Exit status of run and trace: (v << 1) | 1 when the guest writes v to port 0xf4 \
(low 8 bits, as QEMU); 0 guest power-off; 2 usage or load error; 4 triple fault; 6 unsupported \
instruction; 8 instruction budget exhausted; 10 guest halted forever; 12 internal error; 124 timeout.
`softvm qemu ARGS...` (or softvm called as qemu-system-x86_64) takes QEMU's command line.";

/// `softvm`.
#[derive(Debug, Parser)]
#[command(name = "softvm", version, about = ABOUT, after_help = AFTER, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one test kernel, like qemu-system-x86_64 -kernel FILE with
    /// isa-debug-exit at 0xf4 and the serial port on stdout
    Run(RunArgs),
    /// Run many test kernels in parallel and report (PASS/FAIL lines, TAP, JUnit XML)
    Test(crate::suite::TestArgs),
    /// Run a kernel and explain every instruction, page walk, fault and MMIO decision
    Trace(crate::trace::TraceArgs),
    /// Boot the built-in demo guest under the tracer
    Demo,
    /// Run benchmark guests: instructions, MIPS, wall time
    Bench(crate::bench::BenchArgs),
    /// QEMU's command line (-kernel, -smp, -m, -device ..., the probes runners make)
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Qemu {
        /// QEMU options, e.g. -kernel x.flat -smp 2 -m 256 -serial stdio
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

/// The machine options every command that boots a kernel shares.
#[derive(Debug, Clone, Args)]
pub struct MachineOpts {
    /// vCPUs (1 to 255); vCPU 0 boots, the others wait for INIT and SIPI
    #[arg(long, value_name = "N", value_parser = vcpus, allow_negative_numbers = true)]
    pub vcpus: Option<u32>,
    /// Guest RAM (2M to 64G); a bare number is MiB, as QEMU's -m [default: 128M]
    #[arg(long, value_name = "SIZE", value_parser = memory, allow_negative_numbers = true)]
    pub memory: Option<u64>,
    /// CPU model: max or host (both: every feature softvm implements)
    #[arg(long, value_name = "MODEL", value_parser = cpu_model)]
    pub cpu: Option<String>,
    /// Kernel command line (multiboot)
    #[arg(long, value_name = "STR", allow_hyphen_values = true)]
    pub cmdline: Option<String>,
    /// A multiboot boot module (repeatable)
    #[arg(long = "module", visible_alias = "initrd", value_name = "FILE")]
    pub modules: Vec<PathBuf>,
    /// Stop every vCPU after SECS seconds (status 124)
    #[arg(long, value_name = "SECS", value_parser = timeout, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,
    /// Stop after N instructions of one vCPU (status 8)
    #[arg(long, value_name = "N", value_parser = count, allow_negative_numbers = true)]
    pub max_instructions: Option<u64>,
}

impl MachineOpts {
    /// The machine of `softvm run` with these options applied.
    pub fn config(&self) -> anyhow::Result<MachineConfig> {
        let mut c = MachineConfig::default();
        self.apply(&mut c)?;
        Ok(c)
    }

    /// Apply the options given to `c` (modules are read here).
    pub fn apply(&self, c: &mut MachineConfig) -> anyhow::Result<()> {
        if let Some(v) = self.vcpus {
            c.vcpus = v;
        }
        if let Some(m) = self.memory {
            c.memory = m;
        }
        if let Some(cpu) = &self.cpu {
            for w in config::cpu_model_warnings(cpu) {
                eprintln!("softvm: warning: --cpu {cpu}: {w}");
            }
            c.cpu = cpu.clone();
        }
        if let Some(s) = &self.cmdline {
            c.cmdline = s.clone();
        }
        for p in &self.modules {
            let data = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", p.display()))?;
            c.modules
                .push(loader::Module::new(p.display().to_string(), data));
        }
        if self.timeout.is_some() {
            c.timeout = self.timeout;
        }
        if self.max_instructions.is_some() {
            c.max_instructions = self.max_instructions;
        }
        Ok(())
    }
}

/// `softvm run FILE`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A multiboot kernel (ELF32 or a.out kludge, e.g. kvm-unit-tests .flat) or a bare-metal x86-64 ELF64
    pub file: PathBuf,
    #[command(flatten)]
    pub machine: MachineOpts,
    /// Connect stdin to the receiver of COM1
    #[arg(long)]
    pub stdin: bool,
}

// clap value parsers: the machine library's, with its messages.
fn vcpus(s: &str) -> Result<u32, ConfigError> {
    config::parse_vcpus(s)
}
fn memory(s: &str) -> Result<u64, ConfigError> {
    config::parse_memory(s)
}
fn timeout(s: &str) -> Result<Duration, ConfigError> {
    config::parse_timeout(s)
}
fn count(s: &str) -> Result<u64, ConfigError> {
    config::parse_count(s)
}
fn cpu_model(s: &str) -> Result<String, ConfigError> {
    config::parse_cpu_model(s).map(|_| s.to_string())
}

/// A clap error as one line for stderr, with clap's suggestion kept.
pub fn one_line_error(e: &clap::Error, cmd: &str) -> String {
    let text = e.render().to_string();
    let mut main = Vec::new();
    let mut tips = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            continue;
        }
        match line.strip_prefix("tip: ") {
            Some(t) => tips.push(t.to_string()),
            None => main.push(line.trim_start_matches("error: ").to_string()),
        }
    }
    let mut out = format!("softvm: {}", main.join(" "));
    if !tips.is_empty() {
        out.push_str(&format!(" ({})", tips.join("; ")));
    }
    out.push_str(&format!(" (see {cmd} --help)"));
    out
}

/// Parse `argv` and run the command; returns the process status.
pub fn main(argv: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    status::USAGE
                } else {
                    0
                };
            }
            let cmd = match argv.get(1).map(String::as_str) {
                Some(c @ ("run" | "test" | "trace" | "bench" | "demo")) => format!("softvm {c}"),
                _ => "softvm".to_string(),
            };
            crate::diag(&one_line_error(&e, &cmd));
            return status::USAGE;
        }
    };
    match cli.command {
        Command::Run(a) => crate::run::cmd_run(a),
        Command::Test(a) => crate::suite::cmd_test(a),
        Command::Trace(a) => crate::trace::cmd_trace(a),
        Command::Demo => crate::demo::run(),
        Command::Bench(a) => crate::bench::cmd_bench(a),
        Command::Qemu { args } => crate::qemu::main("softvm", &args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
