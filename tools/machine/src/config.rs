//! What a machine is built from: [`MachineConfig`], and the parsers and
//! range checks of its values that every front end shares (`softvm run`,
//! `softvm test` manifests, the QEMU-compatible command line), so that a
//! value means the same thing and is refused with the same words wherever
//! it is given.

use emu_core::cpu::model::{CpuModel, Parsed};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The most vCPUs a machine may have: xAPIC IDs are 8 bits and 0xff is the
/// broadcast ID (QEMU's `pc` machine has the same limit).
pub const MAX_VCPUS: u32 = 255;
/// The least guest RAM: the loader's boot data sits below 1 MiB and test
/// kernels put their heap above it.
pub const MIN_MEMORY: u64 = 2 << 20;
/// The most guest RAM: what the ELF64 boot page tables can map (64 GiB).
/// RAM is mapped lazily, so a large size costs nothing until touched.
pub const MAX_MEMORY: u64 = loader::layout::MAX_MEM_SIZE;
/// The longest `--timeout`: about 31 years, far beyond any test, and small
/// enough that a deadline computed from it never overflows the clock.
pub const MAX_TIMEOUT_SECS: f64 = 1e9;

/// A value a front end could not accept. The message names the value and,
/// for numbers, the valid range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A size that is not a number with an optional K/M/G/T suffix.
    #[error("invalid size {0:?}: expected a number of MiB or a size such as 512K, 256M, 1.5G")]
    BadSize(String),
    /// Guest RAM outside the range a machine can have.
    #[error("memory size {given} is out of range: {min} to {max}")]
    MemoryOutOfRange {
        given: String,
        min: String,
        max: String,
    },
    /// A vCPU count outside 1..=255.
    #[error("{0} vCPUs is out of range: 1 to {MAX_VCPUS}")]
    VcpusOutOfRange(String),
    /// A timeout that is not a finite positive number of seconds.
    #[error("invalid timeout {0:?}: expected seconds, a finite number above 0 and at most 1e9")]
    BadTimeout(String),
    /// An instruction budget that is not a positive integer.
    #[error("invalid instruction count {0:?}: expected an integer from 1 to {max}", max = u64::MAX)]
    BadCount(String),
    /// A CPU model line softvm cannot honour (unknown model, feature or
    /// property; see `-cpu help`).
    #[error("{0}")]
    CpuModel(#[from] emu_core::cpu::model::ModelError),
    /// A command line the multiboot information cannot carry.
    #[error("the kernel command line contains a NUL byte")]
    NulInCmdline,
    /// A seed that is not a 64-bit number.
    #[error("invalid seed {0:?}: expected a number from 0 to 2^64-1, decimal or 0x hexadecimal")]
    BadSeed(String),
    /// A clock mode softvm does not have.
    #[error("invalid clock mode {0:?}: expected realtime or deterministic")]
    BadClock(String),
}

/// The seed of a machine that is given none: fixed, so that two runs of
/// the same configuration see the same random numbers.
pub const DEFAULT_SEED: u64 = 0x5eed_0f50_f7e0_0001;

/// How the vCPUs' clock (the TSC and the APIC timer that counts in its
/// ticks) advances, for the CPU to consume (emu-core decides the clock's
/// model; see its documentation and the README's section on time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClockMode {
    /// Time follows the host: a guest that waits a second waits a second.
    #[default]
    Realtime,
    /// Time follows the instructions retired, so that runs repeat exactly.
    Deterministic,
}

impl ClockMode {
    /// The name used on command lines and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            ClockMode::Realtime => "realtime",
            ClockMode::Deterministic => "deterministic",
        }
    }
}

impl fmt::Display for ClockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ClockMode {
    type Err = ConfigError;

    /// `realtime` or `deterministic` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "realtime" => Ok(ClockMode::Realtime),
            "deterministic" => Ok(ClockMode::Deterministic),
            _ => Err(ConfigError::BadClock(s.trim().to_string())),
        }
    }
}

/// Parses a seed: a decimal number or `0x` hexadecimal, 64 bits.
pub fn parse_seed(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    // from_str_radix accepts a sign; a seed has none.
    v.ok()
        .filter(|_| !t.contains(['+', '-']))
        .ok_or_else(|| ConfigError::BadSeed(t.to_string()))
}

/// Parses a clock mode ([`ClockMode`]).
pub fn parse_clock(s: &str) -> Result<ClockMode, ConfigError> {
    s.parse()
}

/// Formats a byte count the way people write sizes (`1536M`, `4G`).
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// Parses a size as QEMU's `-m` does: a plain number is MiB; a `K`, `M`,
/// `G` or `T` suffix (either case) scales by powers of 1024, a `B` suffix
/// means bytes; a fraction is allowed (`1.5G`). The result is rounded down
/// to whole bytes; 0 and overflows are refused.
pub fn parse_size(s: &str) -> Result<u64, ConfigError> {
    let bad = || ConfigError::BadSize(s.to_string());
    let t = s.trim();
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'B' => 0,
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&t[..i], shift)
        }
        _ => (t, 20),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let bytes = match num.split_once('.') {
        None => num
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1u64 << shift)),
        Some((int, frac)) => {
            // Exact decimal arithmetic, so 1.5G is exactly 1536 MiB: the
            // fraction's digits (at most 18 count) over their power of ten.
            let int: u64 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| bad())?
            };
            if frac.contains('.') || (int == 0 && frac.is_empty()) {
                return Err(bad());
            }
            let digits = &frac[..frac.len().min(18)];
            let num: u128 = if digits.is_empty() {
                0
            } else {
                digits.parse().map_err(|_| bad())?
            };
            let den = 10u128.pow(u32::try_from(digits.len()).unwrap_or(18));
            let part = u64::try_from((num << shift) / den).ok();
            int.checked_mul(1u64 << shift)
                .and_then(|i| part.and_then(|p| i.checked_add(p)))
        }
    };
    bytes.filter(|&b| b > 0).ok_or_else(bad)
}

/// Parses and range-checks a guest RAM size ([`MIN_MEMORY`]..=[`MAX_MEMORY`]).
pub fn parse_memory(s: &str) -> Result<u64, ConfigError> {
    let m = parse_size(s)?;
    check_memory(m).map_err(|_| ConfigError::MemoryOutOfRange {
        given: s.trim().to_string(),
        min: format_size(MIN_MEMORY),
        max: format_size(MAX_MEMORY),
    })
}

/// Range-checks a guest RAM size in bytes.
pub fn check_memory(bytes: u64) -> Result<u64, ConfigError> {
    if (MIN_MEMORY..=MAX_MEMORY).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(ConfigError::MemoryOutOfRange {
            given: format_size(bytes),
            min: format_size(MIN_MEMORY),
            max: format_size(MAX_MEMORY),
        })
    }
}

/// Parses a vCPU count (1..=[`MAX_VCPUS`]).
pub fn parse_vcpus(s: &str) -> Result<u32, ConfigError> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_VCPUS).contains(n))
        .ok_or_else(|| ConfigError::VcpusOutOfRange(s.trim().to_string()))
}

/// Parses a timeout in seconds: finite, above 0, at most [`MAX_TIMEOUT_SECS`]
/// (so `inf`, `nan` and `1e300` are refused, never a panic later).
pub fn parse_timeout(s: &str) -> Result<Duration, ConfigError> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= MAX_TIMEOUT_SECS)
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| ConfigError::BadTimeout(s.trim().to_string()))
}

/// Parses a positive instruction count.
pub fn parse_count(s: &str) -> Result<u64, ConfigError> {
    s.trim()
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ConfigError::BadCount(s.trim().to_string()))
}

/// The one place a CPU model string (`--cpu`, QEMU's `-cpu`) is checked:
/// QEMU's syntax, parsed by emu-core's CPU model (named models, `+feat`,
/// `-feat`, `vendor=`, `phys-bits=`, ...).
pub fn parse_cpu_model(s: &str) -> Result<Parsed, ConfigError> {
    Ok(CpuModel::parse(s)?)
}

/// What a CPU model line asks for that softvm will not do, as warnings for
/// the user (QEMU's TCG warns about the features it lacks the same way).
pub fn cpu_model_warnings(s: &str) -> Vec<String> {
    let Ok(p) = CpuModel::parse(s) else {
        return Vec::new();
    };
    let mut w = Vec::new();
    if !p.dropped.is_empty() {
        let names: Vec<&str> = p.dropped.iter().map(|f| f.name()).collect();
        w.push(format!(
            "CPU feature(s) not implemented by softvm, not advertised: {}",
            names.join(", ")
        ));
    }
    if !p.ignored.is_empty() {
        w.push(format!(
            "CPU feature(s) softvm does not model, ignored: {}",
            p.ignored.join(", ")
        ));
    }
    w
}

/// QEMU's isa-debug-exit device: a write of `v` to any of its ports ends
/// the run with status `(v << 1) | 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugExit {
    pub iobase: u16,
    pub iosize: u16,
}

impl DebugExit {
    /// Whether `port` is one of the device's ports.
    pub fn claims(&self, port: u16) -> bool {
        port.wrapping_sub(self.iobase) < self.iosize
    }
}

impl Default for DebugExit {
    /// Where test kernels expect it: four bytes at port 0xf4.
    fn default() -> Self {
        DebugExit {
            iobase: 0xf4,
            iosize: 4,
        }
    }
}

/// Everything a machine is built from. `Default` is the machine of
/// `softvm run`: one vCPU, 128 MiB, COM1, isa-debug-exit at 0xf4,
/// pc-testdev and the PIT.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// vCPUs (1..=[`MAX_VCPUS`]); vCPU 0 boots, the others wait for SIPI.
    pub vcpus: u32,
    /// Guest RAM in bytes ([`MIN_MEMORY`]..=[`MAX_MEMORY`]), laid out by
    /// [`loader::layout::RamLayout`].
    pub memory: u64,
    /// The CPU model, as given (checked by [`parse_cpu_model`]).
    pub cpu: String,
    /// The kernel command line (multiboot).
    pub cmdline: String,
    /// Multiboot boot modules (`--module`, `-initrd`).
    pub modules: Vec<loader::Module>,
    /// Stop every vCPU and end with status 124 after this long.
    pub timeout: Option<Duration>,
    /// Stop when a vCPU has retired this many instructions (status 8).
    pub max_instructions: Option<u64>,
    /// A 16550 UART at 0x3f8 (COM1). Without it the ports read as all ones.
    pub serial: bool,
    /// The isa-debug-exit device, if any.
    pub debug_exit: Option<DebugExit>,
    /// QEMU's pc-testdev (ports 0xe0 and 0x2000.., MMIO at 0xff000000).
    pub pc_testdev: bool,
    /// The 8254 PIT at 0x40-0x43 and port 0x61 (QEMU's `-machine pit=off`
    /// removes it).
    pub pit: bool,
    /// The seed of the CPU's random numbers (RDRAND, RDSEED), for the CPU
    /// to consume: the same seed, the same numbers.
    pub seed: u64,
    /// How the vCPUs' clock (TSC) advances, for the CPU to consume.
    /// Device time (PIT, PM timer, RTC) follows the host either way
    /// ([`crate::clock`]).
    pub clock: ClockMode,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            vcpus: 1,
            memory: 128 << 20,
            cpu: "max".into(),
            cmdline: String::new(),
            modules: Vec::new(),
            timeout: None,
            max_instructions: None,
            serial: true,
            debug_exit: Some(DebugExit::default()),
            pc_testdev: true,
            pit: true,
            seed: DEFAULT_SEED,
            clock: ClockMode::Realtime,
        }
    }
}

impl MachineConfig {
    /// Checks every value against its range (a configuration built in
    /// code bypasses the parsers above).
    pub fn validate(&self) -> Result<Parsed, ConfigError> {
        if !(1..=MAX_VCPUS).contains(&self.vcpus) {
            return Err(ConfigError::VcpusOutOfRange(self.vcpus.to_string()));
        }
        check_memory(self.memory)?;
        if let Some(t) = self.timeout {
            if t.is_zero() || t.as_secs_f64() > MAX_TIMEOUT_SECS {
                return Err(ConfigError::BadTimeout(format!("{}", t.as_secs_f64())));
            }
        }
        if self.max_instructions == Some(0) {
            return Err(ConfigError::BadCount("0".into()));
        }
        if self.cmdline.contains('\0') {
            return Err(ConfigError::NulInCmdline);
        }
        parse_cpu_model(&self.cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_every_qemu_form() {
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("256"), Ok(256 << 20));
        assert_eq!(parse_size("1.5G"), Ok(1536 << 20));
        assert_eq!(parse_size("0.5g"), Ok(512 << 20));
        assert_eq!(parse_size("65536K"), Ok(64 << 20));
        assert_eq!(parse_size("4194304B"), Ok(4 << 20));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        for bad in [
            "",
            "x",
            "1Q",
            "-1",
            "1..5G",
            "0",
            "0M",
            "99999999999999999999",
            "1e3",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_are_named_in_errors() {
        let e = parse_memory("1M").unwrap_err().to_string();
        assert_eq!(e, "memory size 1M is out of range: 2M to 64G");
        assert!(parse_memory("65G").is_err());
        assert_eq!(parse_memory("64G"), Ok(64 << 30));
        let e = parse_vcpus("1000").unwrap_err().to_string();
        assert_eq!(e, "1000 vCPUs is out of range: 1 to 255");
        assert_eq!(parse_vcpus("255"), Ok(255));
        assert!(parse_vcpus("0").is_err());
    }

    #[test]
    fn timeouts_are_finite() {
        assert_eq!(parse_timeout("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("0.25"), Ok(Duration::from_millis(250)));
        for bad in ["inf", "1e300", "nan", "-1", "0", "", "x", "1e10"] {
            let e = parse_timeout(bad).unwrap_err().to_string();
            assert!(e.contains("finite"), "{bad}: {e}");
        }
    }

    #[test]
    fn cpu_models() {
        assert_eq!(parse_cpu_model("max").unwrap().model.name, "max");
        assert!(parse_cpu_model("qemu64,+x2apic,-pcid").is_ok());
        let e = parse_cpu_model("qemu65").unwrap_err().to_string();
        assert!(e.contains("qemu65") && e.contains("qemu64"), "{e}");
        let e = parse_cpu_model("max,+warp").unwrap_err().to_string();
        assert!(e.contains("warp"), "{e}");
        let w = cpu_model_warnings("max,+vmx,+vmx-mbec");
        assert!(w[0].contains("vmx") && w[1].contains("vmx-mbec"), "{w:?}");
        assert!(cpu_model_warnings("qemu64").is_empty());
    }

    #[test]
    fn seeds_and_clock_modes() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed("0x2A"), Ok(42));
        assert_eq!(parse_seed(" 18446744073709551615 "), Ok(u64::MAX));
        for bad in [
            "",
            "-1",
            "+1",
            "0x",
            "0x+1",
            "1e3",
            "18446744073709551616",
            "seed",
        ] {
            let e = parse_seed(bad).unwrap_err().to_string();
            assert!(e.contains("invalid seed"), "{bad}: {e}");
        }
        assert_eq!(parse_clock("realtime"), Ok(ClockMode::Realtime));
        assert_eq!(parse_clock("Deterministic"), Ok(ClockMode::Deterministic));
        let e = parse_clock("fast").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid clock mode \"fast\": expected realtime or deterministic"
        );
        assert_eq!(ClockMode::Deterministic.to_string(), "deterministic");
        let c = MachineConfig::default();
        assert_eq!((c.seed, c.clock), (DEFAULT_SEED, ClockMode::Realtime));
    }

    #[test]
    fn debug_exit_ports() {
        let d = DebugExit {
            iobase: 0x501,
            iosize: 2,
        };
        assert!(!d.claims(0x500));
        assert!(d.claims(0x501) && d.claims(0x502));
        assert!(!d.claims(0x503));
        let top = DebugExit {
            iobase: 0xffff,
            iosize: 1,
        };
        assert!(top.claims(0xffff) && !top.claims(0));
    }

    #[test]
    fn validate_checks_code_built_configs() {
        assert!(MachineConfig::default().validate().is_ok());
        let c = MachineConfig {
            vcpus: 0,
            ..MachineConfig::default()
        };
        assert!(c.validate().is_err());
        let c = MachineConfig {
            cpu: "pentium".into(),
            ..MachineConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
