//! Benchmark guests: multiboot images (built with the [guest kit](crate::guest))
//! that each do a fixed amount of work and print a checksum over serial, so
//! no emulator can skip the work and softvm and QEMU can be compared on the
//! same image.
//!
//! Every guest prints `checksum: XXXXXXXXXXXXXXXX` (16 hex digits) and exits
//! through the isa-debug-exit port with value 0 (process status 1). A guest
//! that cannot run on the machine it finds (the SMP guests without APs)
//! prints `skip: REASON` and exits with value 38 (status 77, "skipped").
//!
//! [`all`] builds the set; [`write_dir`] writes it with a `manifest.txt`
//! that `softvm bench DIR` and `tools/bench/compare.sh` read.

mod cpu;
mod exits;
mod memops;
mod memsse;
mod paging;
mod smp;

use crate::guest;
use iced_x86::code_asm::*;
use std::path::Path;

/// How much work the guests do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Benchmark size: a second or so of softvm time each.
    Full,
    /// A few million instructions at most, for tests.
    Test,
}

/// One benchmark guest.
#[derive(Clone, Debug)]
pub struct Bench {
    /// Short name (file name without `.elf`).
    pub name: &'static str,
    /// What it measures.
    pub about: &'static str,
    /// The multiboot ELF image.
    pub image: Vec<u8>,
    /// Guest RAM it needs, in MiB.
    pub memory_mib: u64,
    /// vCPUs it runs on.
    pub vcpus: u32,
    /// The checksum it must print, when a model computes it.
    pub expected: Option<u64>,
}

/// Guest exit-port value of a skipped benchmark (process status 77).
pub const SKIP_EXIT: u32 = 38;

/// Every benchmark guest.
pub fn all(scale: Scale) -> Vec<Bench> {
    vec![
        exits::hello(),
        cpu::sieve(scale),
        cpu::xorshift(scale),
        memops::mem(scale, true),
        memops::mem(scale, false),
        memsse::mem_sse(scale),
        cpu::recursion(scale),
        paging::random_access(scale),
        exits::port_mmio(scale),
        smp::lock(scale, 2),
        smp::lock(scale, 4),
    ]
}

/// Writes `NAME.elf` for each guest and `manifest.txt`, one line per guest:
/// `NAME memory=SIZE vcpus=N checksum=HEX|-`.
pub fn write_dir(dir: &Path, benches: &[Bench]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = String::from("# name memory vcpus checksum (written by testsuite::bench)\n");
    for b in benches {
        std::fs::write(dir.join(format!("{}.elf", b.name)), &b.image)?;
        let sum = b
            .expected
            .map_or_else(|| "-".to_string(), |c| format!("{c:016X}"));
        manifest.push_str(&format!(
            "{} memory={}M vcpus={} checksum={}\n",
            b.name, b.memory_mib, b.vcpus, sum
        ));
    }
    std::fs::write(dir.join("manifest.txt"), manifest)
}

/// The checksum a guest printed, if it printed one.
pub fn parse_checksum(serial: &str) -> Option<u64> {
    serial
        .lines()
        .find_map(|l| l.strip_prefix("checksum: "))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
}

/// Builds a long-mode guest whose body leaves its checksum in RAX; the
/// common epilogue prints it and exits with 0.
fn build(
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        body(a)?;
        a.mov(r15, rax)?;
        guest::print(a, "checksum: ")?;
        a.mov(rax, r15)?;
        let puthex = guest::puthex_routine_after_jump(a)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
}

/// Assembly of the guests is deterministic and cannot fail for the code
/// written here; a failure is a bug in this module.
fn must(r: Result<Vec<u8>, IcedError>, name: &str) -> Vec<u8> {
    r.unwrap_or_else(|e| panic!("benchmark guest {name} does not assemble: {e}"))
}

/// One xorshift64 step (the generator several guests use).
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Emits one xorshift64 step on `x`, using `tmp`.
fn emit_xorshift(
    a: &mut CodeAssembler,
    x: AsmRegister64,
    tmp: AsmRegister64,
) -> Result<(), IcedError> {
    a.mov(tmp, x)?;
    a.shl(tmp, 13)?;
    a.xor(x, tmp)?;
    a.mov(tmp, x)?;
    a.shr(tmp, 7)?;
    a.xor(x, tmp)?;
    a.mov(tmp, x)?;
    a.shl(tmp, 17)?;
    a.xor(x, tmp)?;
    Ok(())
}
