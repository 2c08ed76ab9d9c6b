//! The QEMU-compatible front end: `softvm qemu ARGS...`, or softvm invoked
//! through a link named `qemu-system-x86_64`. It takes the command lines
//! test runners give QEMU (kvm-unit-tests' `x86/run`: `--no-reboot
//! -nodefaults -global kvm-pit.lost_tick_policy=discard -device pc-testdev
//! -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none -serial
//! stdio -machine accel=tcg -kernel X -smp N -append ... -initrd ENV`),
//! answers their probes truthfully ([`probes`]) and refuses anything else
//! with one line naming the option.
//!
//! QEMU's option syntax (one dash, `-opt value`, comma-separated
//! properties) is not a getopt style clap models, so it is parsed here, by
//! a table of the options that exist.

mod probes;

use crate::diag;
use softvm_machine::config::{self, DebugExit};
use softvm_machine::{status, with_program_name, Machine, MachineConfig};
use std::path::PathBuf;

/// Where COM1's output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serial {
    Stdout,
    File(PathBuf),
    /// No serial device at all.
    None,
}

/// What a QEMU command line asks for.
#[derive(Debug)]
pub enum Request {
    /// Print this text on stdout and exit 0 (a probe).
    Print(String),
    /// Boot a kernel.
    Run(Box<Launch>),
}

/// A machine to run.
#[derive(Debug)]
pub struct Launch {
    pub kernel: PathBuf,
    pub config: MachineConfig,
    pub serial: Serial,
    /// The multiboot modules of the last `-initrd` (QEMU keeps only the
    /// last one given), read when the machine is built.
    pub initrd: Vec<String>,
    /// Warnings for stderr (what the CPU model line asks for that softvm
    /// does not do), without the program name.
    pub warnings: Vec<String>,
}

/// The value of an option, or a usage error naming it.
fn value<'a>(opt: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a str, String> {
    it.next()
        .map(String::as_str)
        .ok_or_else(|| format!("-{opt}: requires an argument"))
}

/// `key=value` properties after an optional leading word.
fn props(s: &str) -> (Option<&str>, Vec<(&str, &str)>) {
    let mut head = None;
    let mut v = Vec::new();
    for (i, part) in s.split(',').enumerate() {
        match part.split_once('=') {
            Some(kv) => v.push(kv),
            None if i == 0 => head = Some(part),
            None => v.push((part, "on")),
        }
    }
    (head, v)
}

/// A number as QEMU's properties write them: decimal or 0x hex.
fn number(opt: &str, key: &str, v: &str) -> Result<u64, String> {
    let r = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    r.map_err(|_| format!("-{opt}: {key}={v}: not a number"))
}

fn on_off(opt: &str, key: &str, v: &str) -> Result<bool, String> {
    match v {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("-{opt}: {key}={v}: expected on or off")),
    }
}

/// `-smp N[,cpus=N][,sockets=S][,dies=D][,cores=C][,threads=T][,maxcpus=M]`.
fn smp(v: &str) -> Result<u32, String> {
    let (head, kv) = props(v);
    let mut cpus = head.map(|h| number("smp", "cpus", h)).transpose()?;
    let mut topo = Vec::new();
    let mut maxcpus = None;
    for (k, val) in kv {
        let n = number("smp", k, val)?;
        match k {
            "cpus" => cpus = Some(n),
            "sockets" | "dies" | "clusters" | "cores" | "threads" => topo.push(n),
            "maxcpus" => maxcpus = Some(n),
            _ => return Err(format!("-smp: unknown property '{k}'")),
        }
    }
    // Properties left out default from the others, as in QEMU: only a
    // topology given in full (sockets, cores and threads) must match.
    let product = (!topo.is_empty()).then(|| topo.iter().product::<u64>());
    let full = topo.len() >= 3;
    let n = cpus.or(maxcpus).or(product).unwrap_or(1);
    let max = maxcpus.or(product.filter(|_| full)).unwrap_or(n);
    if n == 0 || max == 0 {
        return Err("-smp: the CPU count must be at least 1".into());
    }
    if let (true, Some(p)) = (full, product) {
        if p != max {
            return Err(format!(
                "-smp {v}: sockets * cores * threads ({p}) must equal maxcpus ({max})"
            ));
        }
    }
    if n > max {
        return Err(format!(
            "-smp {v}: the CPU count ({n}) exceeds maxcpus ({max})"
        ));
    }
    if max > u64::from(config::MAX_VCPUS) {
        // QEMU's own words, which runners probing for the limit parse.
        return Err(format!(
            "Invalid SMP CPUs {max}. The max CPUs supported by machine 'pc' is {}",
            config::MAX_VCPUS
        ));
    }
    u32::try_from(n).map_err(|_| format!("-smp {v}: too many CPUs"))
}

/// `-m [size=]SIZE[,slots=..][,maxmem=..]`.
fn memory(v: &str) -> Result<u64, String> {
    let (head, kv) = props(v);
    let mut size = head;
    for (k, val) in kv {
        match k {
            "size" => size = Some(val),
            "slots" | "maxmem" => {}
            _ => return Err(format!("-m: unknown property '{k}'")),
        }
    }
    let size = size.ok_or("-m: no size given")?;
    config::parse_memory(size).map_err(|e| format!("-m {v}: {e}"))
}

/// `-device DRIVER[,props]`.
fn device(v: &str, cfg: &mut MachineConfig) -> Result<Option<Request>, String> {
    let (head, kv) = props(v);
    let name = head.unwrap_or("");
    match name {
        "help" | "?" => return Ok(Some(Request::Print(probes::devices()))),
        "isa-debug-exit" => {
            let mut d = DebugExit {
                iobase: 0x501,
                iosize: 2,
            };
            for (k, val) in kv {
                let n = number("device", k, val)?;
                let small = u16::try_from(n)
                    .map_err(|_| format!("-device {v}: {k}={val} does not fit 16 bits"))?;
                match k {
                    "iobase" => d.iobase = small,
                    "iosize" if (1..=4).contains(&n) => d.iosize = small,
                    "iosize" => return Err(format!("-device {v}: iosize must be 1 to 4")),
                    _ => return Err(format!("-device isa-debug-exit: no property '{k}'")),
                }
            }
            cfg.debug_exit = Some(d);
        }
        "pc-testdev" => {
            if let Some((k, _)) = kv.first() {
                return Err(format!("-device pc-testdev: no property '{k}'"));
            }
            cfg.pc_testdev = true;
        }
        other => {
            return Err(format!(
                "-device {other}: softvm has no device '{other}' (-device help lists the devices it has)"
            ))
        }
    }
    Ok(None)
}

/// `-machine [type=]pc[,accel=tcg|kvm][,pit=on|off]`.
fn machine(v: &str, cfg: &mut MachineConfig) -> Result<Option<Request>, String> {
    let (head, kv) = props(v);
    let check_type = |t: &str| match t {
        "pc" | "" => Ok(()),
        "help" | "?" => Err(None),
        other => Err(Some(format!(
            "-machine {other}: softvm has only the machine 'pc' (-machine help)"
        ))),
    };
    let mut types = head.into_iter().collect::<Vec<_>>();
    for (k, val) in kv {
        match k {
            "type" => types.push(val),
            "accel" => {
                for a in val.split(':') {
                    accel_name(a)?;
                }
            }
            "pit" => cfg.pit = on_off("machine", k, val)?,
            _ => return Err(format!("-machine: softvm's 'pc' has no property '{k}'")),
        }
    }
    for t in types {
        match check_type(t) {
            Ok(()) => {}
            Err(None) => return Ok(Some(Request::Print(probes::machines()))),
            Err(Some(e)) => return Err(e),
        }
    }
    Ok(None)
}

fn accel_name(a: &str) -> Result<(), String> {
    match a {
        "tcg" | "kvm" => Ok(()),
        other => Err(format!(
            "-accel {other}: softvm accepts 'tcg' and 'kvm' (both run softvm's interpreter)"
        )),
    }
}

/// The first line of `-h` (and `--version`), which runners parse for
/// QEMU's version.
pub fn version_line() -> String {
    probes::version()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Parse a QEMU command line (without `argv[0]`).
pub fn parse(args: &[String]) -> Result<Request, String> {
    let mut cfg = MachineConfig {
        debug_exit: None,
        pc_testdev: false,
        ..MachineConfig::default()
    };
    let mut kernel = None;
    let mut serial = None;
    let mut nographic = false;
    let mut nodefaults = false;
    let mut initrd = Vec::new();
    let mut warnings = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(opt) = arg.strip_prefix('-') else {
            return Err(format!(
                "{arg}: softvm takes no disk images: give the kernel with -kernel"
            ));
        };
        // QEMU takes `--opt` for every `-opt`.
        let opt = opt.strip_prefix('-').unwrap_or(opt);
        match opt {
            "version" => return Ok(Request::Print(probes::version())),
            "h" | "help" => return Ok(Request::Print(probes::help("qemu-system-x86_64"))),
            "kernel" => kernel = Some(PathBuf::from(value(opt, &mut it)?)),
            "append" => cfg.cmdline = value(opt, &mut it)?.to_string(),
            // A later -initrd replaces an earlier one, as in QEMU (a runner
            // appending its own, as kvm-unit-tests' does, relies on it).
            "initrd" => {
                initrd = value(opt, &mut it)?
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "m" => cfg.memory = memory(value(opt, &mut it)?)?,
            "smp" => cfg.vcpus = smp(value(opt, &mut it)?)?,
            "cpu" => {
                let v = value(opt, &mut it)?;
                if v == "help" || v == "?" {
                    return Ok(Request::Print(probes::cpus()));
                }
                config::parse_cpu_model(v).map_err(|e| format!("-cpu {v}: {e}"))?;
                warnings.extend(
                    config::cpu_model_warnings(v)
                        .into_iter()
                        .map(|w| format!("-cpu {v}: {w}")),
                );
                cfg.cpu = v.to_string();
            }
            "serial" => {
                let v = value(opt, &mut it)?;
                if serial.is_some() {
                    return Err(format!("-serial {v}: softvm has one serial port (COM1)"));
                }
                serial = Some(match v {
                    "stdio" | "mon:stdio" => Serial::Stdout,
                    "none" | "null" => Serial::None,
                    f if f.starts_with("file:") => Serial::File(PathBuf::from(&f[5..])),
                    other => {
                        return Err(format!(
                            "-serial {other}: softvm takes stdio, file:PATH or none"
                        ))
                    }
                });
            }
            "display" => match value(opt, &mut it)? {
                "none" => {}
                other => {
                    return Err(format!(
                        "-display {other}: softvm has no display (use -display none)"
                    ))
                }
            },
            "vga" | "vnc" | "monitor" => match value(opt, &mut it)? {
                "none" => {}
                other => return Err(format!("-{opt} {other}: softvm takes only -{opt} none")),
            },
            "nographic" => nographic = true,
            "nodefaults" => nodefaults = true,
            // A triple fault ends the run in softvm anyway.
            "no-reboot" => {}
            "enable-kvm" => {}
            "name" => {
                value(opt, &mut it)?;
            }
            "device" => {
                if let Some(r) = device(value(opt, &mut it)?, &mut cfg)? {
                    return Ok(r);
                }
            }
            "machine" | "M" => {
                if let Some(r) = machine(value(opt, &mut it)?, &mut cfg)? {
                    return Ok(r);
                }
            }
            "accel" => {
                let v = value(opt, &mut it)?;
                let (head, kv) = props(v);
                match head {
                    Some("help" | "?") => return Ok(Request::Print(probes::accels())),
                    Some(a) => accel_name(a)?,
                    None => return Err(format!("-accel {v}: no accelerator named")),
                }
                if let Some((k, _)) = kv.first() {
                    return Err(format!(
                        "-accel {v}: softvm takes no accelerator property '{k}'"
                    ));
                }
            }
            "global" => match value(opt, &mut it)? {
                // Lost PIT ticks are never re-injected by softvm's PIT.
                "kvm-pit.lost_tick_policy=discard" => {}
                other => return Err(format!("-global {other}: not supported by softvm")),
            },
            "overcommit" => {
                let v = value(opt, &mut it)?;
                for (k, val) in props(v).1 {
                    match k {
                        // Nothing to lock or pass through in an interpreter.
                        "mem-lock" | "cpu-pm" => {
                            on_off(opt, k, val)?;
                        }
                        _ => return Err(format!("-overcommit: unknown property '{k}'")),
                    }
                }
            }
            "S" | "s" | "gdb" => {
                return Err(format!(
                    "-{opt}: softvm has no gdb stub yet, so it cannot wait for a debugger"
                ))
            }
            other => return Err(format!("-{other}: option not supported by softvm (see -h)")),
        }
    }
    let kernel = kernel.ok_or("no -kernel given: softvm boots kernels only (see -h)")?;
    let serial = serial.unwrap_or(if nographic {
        Serial::Stdout
    } else {
        // QEMU's default serial is a virtual console, which has no output
        // without a display; -nodefaults removes it altogether.
        let _ = nodefaults;
        Serial::None
    });
    cfg.serial = serial != Serial::None;
    Ok(Request::Run(Box::new(Launch {
        kernel,
        config: cfg,
        serial,
        initrd,
        warnings,
    })))
}

/// Run a QEMU command line; `prog` is the name diagnostics start with.
pub fn main(prog: &str, args: &[String]) -> i32 {
    let launch = match parse(args) {
        Ok(Request::Print(text)) => {
            crate::out(&text);
            return 0;
        }
        Ok(Request::Run(l)) => l,
        Err(e) => {
            diag(&format!("{prog}: {e}"));
            return status::USAGE;
        }
    };
    let Launch {
        kernel,
        mut config,
        serial,
        initrd,
        warnings,
    } = *launch;
    for w in &warnings {
        diag(&format!("{prog}: warning: {w}"));
    }
    let shown = kernel.display().to_string();
    let image = match std::fs::read(&kernel) {
        Ok(i) => i,
        Err(e) => {
            // QEMU's words, which runners look for.
            diag(&format!(
                "{prog}: could not load kernel '{shown}': {}",
                io_words(&e)
            ));
            return status::USAGE;
        }
    };
    match load_modules(&initrd) {
        Ok(mut mods) => config.modules.append(&mut mods),
        Err(e) => {
            diag(&format!("{prog}: {e}"));
            return status::USAGE;
        }
    }
    let config = with_program_name(&image, &kernel, &config);
    let mut m = match Machine::boot(&config, &image) {
        Ok(m) => m,
        Err(e) => {
            diag(&format!("{prog}: could not load kernel '{shown}': {e}"));
            return status::USAGE;
        }
    };
    match serial {
        Serial::Stdout => m.set_serial_output(std::io::BufWriter::new(std::io::stdout())),
        Serial::File(p) => match std::fs::File::create(&p) {
            Ok(f) => m.set_serial_output(std::io::BufWriter::new(f)),
            Err(e) => {
                diag(&format!("{prog}: -serial file:{}: {e}", p.display()));
                return status::USAGE;
            }
        },
        Serial::None => {}
    }
    crate::run::report(&shown, &m.run())
}

/// The multiboot modules of `-initrd` items (`FILE` or `FILE ARGS`: the
/// whole item is the module's string, as QEMU passes it); an unreadable
/// file is an error in QEMU's words.
pub fn load_modules(initrd: &[String]) -> Result<Vec<loader::Module>, String> {
    initrd
        .iter()
        .map(|item| {
            let file = item.split_whitespace().next().unwrap_or(item);
            std::fs::read(file)
                .map(|data| loader::Module::new(item.clone(), data))
                .map_err(|e| format!("could not load initrd '{file}': {}", io_words(&e)))
        })
        .collect()
}

/// An I/O error as the C library words it ("No such file or directory"),
/// without Rust's "(os error N)".
fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn launch(s: &str) -> Launch {
        match parse(&args(s)) {
            Ok(Request::Run(l)) => *l,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn kvm_unit_tests_command_line() {
        let l = launch(
            "--no-reboot -nodefaults -global kvm-pit.lost_tick_policy=discard -device pc-testdev \
             -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none -serial stdio \
             -machine accel=tcg -kernel x86/apic.flat -smp 2 -m 256 -cpu max -initrd /tmp/env",
        );
        assert_eq!(l.kernel, PathBuf::from("x86/apic.flat"));
        assert_eq!(l.config.vcpus, 2);
        assert_eq!(l.config.memory, 256 << 20);
        assert_eq!(l.serial, Serial::Stdout);
        assert_eq!(
            l.config.debug_exit,
            Some(DebugExit {
                iobase: 0xf4,
                iosize: 4
            })
        );
        assert!(l.config.pc_testdev && l.config.pit && l.config.serial);
        assert_eq!(l.initrd, ["/tmp/env"]);
    }

    #[test]
    fn sizes_topologies_and_switches() {
        assert_eq!(launch("-kernel k -m 1.5G").config.memory, 1536 << 20);
        assert_eq!(launch("-kernel k -m size=4G").config.memory, 4 << 30);
        assert_eq!(launch("-kernel k -m 256M").config.memory, 256 << 20);
        assert_eq!(launch("-kernel k -smp 2,sockets=1").config.vcpus, 2);
        assert_eq!(
            launch("-kernel k -smp sockets=2,cores=2,threads=1")
                .config
                .vcpus,
            4
        );
        assert_eq!(launch("-kernel k -smp 1,maxcpus=4").config.vcpus, 1);
        assert!(!launch("-kernel k -machine pit=off").config.pit);
        assert!(!launch("-kernel k -nodefaults").config.serial);
        assert_eq!(launch("-kernel k -nographic").serial, Serial::Stdout);
        assert_eq!(
            launch("-kernel k -serial file:/tmp/out").serial,
            Serial::File("/tmp/out".into())
        );
        let d = launch("-kernel k -device isa-debug-exit").config.debug_exit;
        assert_eq!(
            d,
            Some(DebugExit {
                iobase: 0x501,
                iosize: 2
            })
        );
        for ok in [
            "-kernel k -enable-kvm -accel kvm -M pc,accel=kvm:tcg -overcommit cpu-pm=on",
            "-kernel k -vga none -vnc none -monitor none -name t -cpu host -no-reboot",
        ] {
            launch(ok);
        }
    }

    #[test]
    fn the_last_initrd_wins_and_warnings_are_returned() {
        assert_eq!(launch("-kernel k -initrd a,b -initrd c").initrd, ["c"]);
        assert_eq!(launch("-kernel k -initrd a,b").initrd, ["a", "b"]);
        assert!(launch("-kernel k -cpu max").warnings.is_empty());
        let w = launch("-kernel k -cpu max,+vmx").warnings;
        assert!(
            w.len() == 1 && w[0].starts_with("-cpu max,+vmx: ") && w[0].contains("vmx"),
            "{w:?}"
        );
    }

    #[test]
    fn probes_print() {
        for (line, want) in [
            ("-device ?", "name \"pc-testdev\""),
            ("-device help", "name \"isa-debug-exit\""),
            ("-machine help", "Supported machines are:"),
            ("-cpu help", "x86 max"),
            ("--version", "QEMU emulator version 7.2.0"),
            ("-h", "QEMU emulator version"),
            ("-accel help", "tcg"),
        ] {
            match parse(&args(line)) {
                Ok(Request::Print(t)) => assert!(t.contains(want), "{line}: {t}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        let Ok(Request::Print(d)) = parse(&args("-device help")) else {
            panic!()
        };
        assert!(!d.contains("pci-testdev") && !d.contains("\"testdev\""));
    }

    #[test]
    fn everything_else_is_refused_by_name() {
        for (line, want) in [
            ("-kernel k -device pci-testdev", "pci-testdev"),
            ("-kernel k -cpu max,+warp-drive", "warp-drive"),
            ("-kernel k -cpu pentium9", "pentium9"),
            ("-kernel k -smp 300", "Invalid SMP CPUs 300"),
            (
                "-kernel k -smp 2,sockets=1,cores=1,threads=1,maxcpus=4",
                "maxcpus",
            ),
            ("-kernel k -smp 4,maxcpus=2", "exceeds maxcpus"),
            ("-kernel k -m 1Q", "-m 1Q"),
            ("-kernel k -m 100G", "out of range"),
            ("-kernel k -S", "gdb stub"),
            ("-kernel k -s", "gdb stub"),
            ("-kernel k -frobnicate", "-frobnicate"),
            ("-kernel k -serial tcp::4444", "tcp::4444"),
            ("-kernel k -machine q35", "q35"),
            ("-kernel k -accel hvf", "hvf"),
            ("-kernel k -display gtk", "display"),
            ("-kernel", "-kernel: requires an argument"),
            ("disk.img", "disk.img"),
            ("-m 256", "no -kernel"),
            ("-kernel k -global foo.bar=1", "foo.bar=1"),
        ] {
            match parse(&args(line)) {
                Err(e) => assert!(e.contains(want), "{line}: {e}"),
                Ok(r) => panic!("{line}: accepted as {r:?}"),
            }
        }
    }
}
