//! Command-line parsing and the commands.

use crate::machine::{self, RunConfig};
use crate::status;
use std::time::Duration;

const HELP: &str = "softvm — a software x86-64 virtual machine

Usage:
  softvm run FILE [options]     run a test kernel (multiboot ELF32 or ELF64)
  softvm demo                   run the built-in demo guest
  softvm help                   this text

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

fn cmd_run(args: &[String]) -> i32 {
    let (file, cfg) = match parse_run(args) {
        Ok(x) => x,
        Err(m) => return usage_error(&m),
    };
    let stdout = std::io::stdout().lock();
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

pub fn main(args: &[String]) -> i32 {
    let r = std::panic::catch_unwind(|| match args.first().map(String::as_str) {
        Some("run") => cmd_run(&args[1..]),
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
