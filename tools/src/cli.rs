//! Command-line parsing and the commands.

use crate::machine::{self, RunConfig};
use crate::status;
use std::time::Duration;

const HELP: &str = "softvm — a software x86-64 virtual machine

Usage:
  softvm run FILE [options]     run a test kernel (multiboot ELF32 or ELF64)
  softvm test PATH... [options] run many test kernels in parallel and report
                                (progress, PASS/FAIL lines, TAP, JUnit XML)
  softvm trace FILE [options]   run and explain every instruction, page walk,
                                fault and MMIO decision in words
  softvm demo                   run the built-in demo guest
  softvm bench DIR [--filter NAME] [--json]
                                run benchmark guests: instructions, MIPS, time
  softvm help                   this text
  softvm COMMAND --help         the usage of one command (also: help COMMAND)

Options of run:
  --vcpus N                number of vCPUs (default 1)
  --memory SIZE            guest RAM, e.g. 128M, 1G (default 128M)
  --cmdline STR            kernel command line (multiboot)
  --module FILE            a multiboot boot module (repeatable)
  --initrd FILE            same as --module
  --timeout SECS           stop with status 124 after SECS seconds
  --max-instructions N     stop with status 8 after N instructions

Exit status: (v << 1) | 1 when the guest writes v to port 0xf4; 0 on guest
power-off; 2 usage or load error; 4 triple fault; 6 unsupported instruction;
8 instruction budget exhausted; 10 guest halted forever; 12 internal error;
124 timeout.
";

/// Parse a size like `128M`, `1G`, `65536` (bytes without suffix? No: like
/// QEMU, a bare number means MiB).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        'T' | 't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1 << 20),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("softvm: {msg} (see softvm help)");
    status::USAGE
}

fn parse_run(args: &[String]) -> Result<(String, RunConfig), String> {
    let mut cfg = RunConfig::default();
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--vcpus" | "-smp" => {
                let v = val(a)?;
                cfg.vcpus = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=255).contains(n))
                    .ok_or(format!("bad --vcpus: {v}"))?;
            }
            "--memory" | "-m" => {
                let v = val(a)?;
                cfg.memory = parse_size(&v)
                    .filter(|&m| m >= 2 << 20)
                    .ok_or(format!("bad --memory: {v}"))?;
            }
            "--cmdline" | "-append" => cfg.cmdline = val(a)?,
            "--stdin" => cfg.serial_stdin = true,
            "--module" | "--initrd" | "-initrd" => {
                let p = val(a)?;
                let data = std::fs::read(&p).map_err(|e| format!("{p}: {e}"))?;
                cfg.modules.push(loader::Module { name: p, data });
            }
            "--timeout" => {
                let v = val(a)?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0)
                    .ok_or(format!("bad --timeout: {v}"))?;
                cfg.timeout = Some(Duration::from_secs_f64(s));
            }
            "--max-instructions" => {
                let v = val(a)?;
                cfg.max_instructions = Some(
                    v.parse()
                        .map_err(|_| format!("bad --max-instructions: {v}"))?,
                );
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => {
                if file.replace(s.to_string()).is_some() {
                    return Err("more than one FILE".into());
                }
            }
        }
    }
    Ok((file.ok_or("run needs a FILE")?, cfg))
}

const RUN_HELP: &str = "softvm run — run one test kernel, like qemu-system-x86_64 -kernel FILE
with -device isa-debug-exit,iobase=0xf4,iosize=4 -serial stdio

Usage:
  softvm run FILE [options]

FILE is a multiboot v1 kernel (ELF32, or any file with an a.out-kludge
header; kvm-unit-tests .flat images) or a bare-metal x86-64 ELF64 program,
entered in long mode. The guest's serial port (COM1) goes to stdout.

Options:
  --vcpus N                number of vCPUs (default 1)      [alias -smp]
  --memory SIZE            guest RAM, e.g. 128M, 1G; a bare number is MiB
                           (default 128M)                   [alias -m]
  --cmdline STR            kernel command line (multiboot)  [alias -append]
  --module FILE            a multiboot boot module (repeatable)
  --initrd FILE            same as --module
  --timeout SECS           stop with status 124 after SECS seconds
  --max-instructions N     stop with status 8 after N instructions
  --stdin                  connect stdin to the receiver of COM1
  -h, --help               this text

Exit status: odd statuses are the guest's: (v << 1) | 1 when it writes v to
port 0xf4 (1 = pass, 77 = skip, 3 = fail by convention). softvm's own are
even, each with one line on stderr: 0 guest power-off (no line); 2 usage or
load error; 4 triple fault; 6 unsupported instruction (RIP, bytes,
disassembly); 8 instruction budget exhausted; 10 guest halted forever;
12 internal error; 124 timeout.
";

/// Whether `--help`/`-h` appears among `run`'s arguments as an option (not
/// as the value of one, e.g. `--cmdline -h`).
fn run_wants_help(args: &[String]) -> bool {
    const TAKES_VALUE: &[&str] = &[
        "--vcpus",
        "-smp",
        "--memory",
        "-m",
        "--cmdline",
        "-append",
        "--module",
        "--initrd",
        "-initrd",
        "--timeout",
        "--max-instructions",
    ];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--help" | "-h" => return true,
            a if TAKES_VALUE.contains(&a) => {
                it.next();
            }
            _ => {}
        }
    }
    false
}

/// `softvm help COMMAND`.
fn command_help(cmd: &str) -> i32 {
    match cmd {
        "run" => print!("{RUN_HELP}"),
        "test" => print!("{}", crate::suite::HELP),
        "trace" => print!("{TRACE_HELP}"),
        "bench" => print!("{}", crate::bench::HELP),
        "help" | "demo" => print!("{HELP}"),
        c => return usage_error(&format!("no help for unknown command {c}")),
    }
    0
}

fn cmd_run(args: &[String]) -> i32 {
    if run_wants_help(args) {
        print!("{RUN_HELP}");
        return 0;
    }
    let (file, cfg) = match parse_run(args) {
        Ok(x) => x,
        Err(m) => return usage_error(&m),
    };
    let stdout = std::io::BufWriter::new(std::io::stdout());
    match machine::run_file(std::path::Path::new(&file), &cfg, stdout) {
        Ok(o) => {
            if let Some(m) = o.message {
                eprintln!("softvm: {file}: {m}");
            }
            o.status
        }
        Err(e) => {
            eprintln!("softvm: {e:#}");
            status::USAGE
        }
    }
}

const TRACE_HELP: &str =
    "Usage: softvm trace FILE [--insn] [--mmu] [--limit N] [--json] [run options]

Runs FILE like `softvm run` and prints what happens, one event a line:
  insn    each instruction, disassembled, with its address
  mmu     page walks level by level (entry address, value, bits), page
          faults with the error code explained, shadow-page (spte) installs,
          MMIO spte hits and generation misses, memslot installs
  cpu     exceptions raised and delivered through the IDT
  serial  the guest's serial output
  end     how the run ended
--insn or --mmu select one kind (default: both). --limit N stops after N
instructions (default 100000). --json prints one JSON object a line.
";

fn cmd_trace(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{TRACE_HELP}");
        return 0;
    }
    let mut opts = crate::trace::TraceOptions {
        insn: false,
        mmu: false,
        json: false,
    };
    let mut limit = 100_000u64;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--insn" => opts.insn = true,
            "--mmu" => opts.mmu = true,
            "--json" => opts.json = true,
            "--limit" => match it.next().and_then(|v| v.parse().ok()) {
                Some(n) => limit = n,
                None => return usage_error("--limit needs a number"),
            },
            _ => rest.push(a.clone()),
        }
    }
    if !opts.insn && !opts.mmu {
        opts.insn = true;
        opts.mmu = true;
    }
    let (file, mut cfg) = match parse_run(&rest) {
        Ok(x) => x,
        Err(m) => return usage_error(&m),
    };
    cfg.max_instructions = Some(cfg.max_instructions.map_or(limit, |m| m.min(limit)));
    let image = match std::fs::read(&file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("softvm: {file}: cannot read: {e}");
            return status::USAGE;
        }
    };
    let tracer = crate::trace::Tracer::new(Box::new(std::io::stdout()), opts);
    // The guest sees the same command line as under `softvm run`.
    let cfg = machine::with_program_name(&image, std::path::Path::new(&file), &cfg);
    match crate::trace::trace_image(&image, &cfg, tracer) {
        Ok(o) => o.status,
        Err(e) => {
            eprintln!("softvm: {file}: {e:#}");
            status::USAGE
        }
    }
}

pub fn main(args: &[String]) -> i32 {
    let r = std::panic::catch_unwind(|| match args.first().map(String::as_str) {
        Some("run") => cmd_run(&args[1..]),
        Some("test") => crate::suite::cmd_test(&args[1..]),
        Some("help") if args.len() > 1 => command_help(&args[1]),
        Some("trace") => cmd_trace(&args[1..]),
        Some("demo") => crate::demo::run(),
        Some("bench") => crate::bench::cmd_bench(&args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            print!("{HELP}");
            0
        }
        Some(c) => usage_error(&format!("unknown command {c}")),
    });
    match r {
        Ok(code) => code,
        Err(_) => {
            eprintln!("softvm: internal error (a bug in softvm)");
            status::INTERNAL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("128M"), Some(128 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("64"), Some(64 << 20));
        assert_eq!(parse_size("x"), None);
    }
}
