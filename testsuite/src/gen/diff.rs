//! Run a [`Case`] on the host CPU and in emu-core, and compare.

use super::{decode, Case, Env};
use crate::native::{
    gprs, Exit, NativeRunner, Outcome, FLAGS_FIXED, GPR_NAMES, IF, LOADABLE_FLAGS,
};
use emu_core::testing::{step64, FlatMem, StepError};
use emu_core::Regs;
use std::fmt::Write as _;

/// The environment of a runner.
pub fn env_of(runner: &NativeRunner) -> Env {
    Env {
        mem_base: runner.mem_base(),
        mem_len: runner.mem().len(),
        insn_addr: runner.insn_addr(),
        taken_target: runner.taken_target(),
    }
}

impl Case {
    /// A hand-written case (for edge-case tests): `bytes` run at
    /// `env.insn_addr` with `regs` (rip is overwritten) and `mem`.
    pub fn from_parts(env: &Env, bytes: &[u8], mut regs: Regs, mem: Vec<u8>) -> Case {
        assert_eq!(mem.len(), env.mem_len);
        regs.rip = env.insn_addr;
        regs.rflags = (regs.rflags & LOADABLE_FLAGS) | IF | FLAGS_FIXED;
        let instr = decode(bytes, env.insn_addr);
        assert!(
            !instr.is_invalid(),
            "invalid instruction bytes {bytes:02x?}"
        );
        assert_eq!(
            instr.len(),
            bytes.len(),
            "trailing bytes after the instruction"
        );
        let (flags_defined, flags_undefined) = super::flags::instance_flags(&instr, &regs);
        Case {
            code: instr.code(),
            bytes: bytes.to_vec(),
            instr,
            regs,
            mem,
            flags_defined,
            flags_undefined,
        }
    }
}

/// What the emulator did with a case.
#[derive(Debug)]
pub struct EmuOutcome {
    pub result: Result<(), StepError>,
    pub regs: Regs,
    pub mem: Vec<u8>,
}

/// Both sides' results for one case.
#[derive(Debug)]
pub struct Run {
    /// Guest address of the data buffer.
    pub mem_base: u64,
    pub native: Outcome,
    pub native_mem: Vec<u8>,
    pub emu: EmuOutcome,
}

/// How a comparison came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// The differences, one per line.
    Mismatch(Vec<String>),
    /// emu-core does not implement the instruction.
    Unimplemented(String),
}

/// Runs `case` on both sides.
pub fn run_both(runner: &mut NativeRunner, case: &Case) -> Run {
    runner.mem_mut().copy_from_slice(&case.mem);
    let native = runner.run(&case.bytes, &case.regs).expect("native run");
    let native_mem = runner.mem().to_vec();
    let mut regs = case.regs;
    let mut mem = FlatMem {
        base: runner.mem_base(),
        bytes: case.mem.clone(),
    };
    let result = step64(&mut regs, &case.bytes, &mut mem);
    Run {
        mem_base: runner.mem_base(),
        native,
        native_mem,
        emu: EmuOutcome {
            result,
            regs,
            mem: mem.bytes,
        },
    }
}

/// Compares the two sides of `run`. `defined` is emu-core's
/// `defined_flags` for the form; see [`Case::compare_mask`].
pub fn verdict(case: &Case, run: &Run, defined: u64) -> Verdict {
    let mut diffs = Vec::new();
    let n = &run.native;
    match (&n.exit, &run.emu.result) {
        (_, Err(StepError::Unimplemented(what))) => return Verdict::Unimplemented(what.clone()),
        (_, Err(StepError::Other(what))) => diffs.push(format!("emulator error: {what}")),
        (Exit::Fault { signal, .. }, Err(StepError::Exception { vector, .. })) => {
            if !n.exit.vectors().contains(vector) {
                diffs.push(format!(
                    "exception: host signal {signal} (vectors {:?}), emulator vector {vector}",
                    n.exit.vectors()
                ));
            }
        }
        (Exit::Fault { signal, addr, .. }, Ok(())) => diffs.push(format!(
            "host faulted (signal {signal}, address {addr:#x}, vectors {:?}), emulator completed",
            n.exit.vectors()
        )),
        (_, Err(StepError::Exception { vector, error_code })) => diffs.push(format!(
            "emulator raised vector {vector} (error code {error_code:?}), host completed"
        )),
        (_, Ok(())) => {
            let (hg, eg) = (gprs(&n.regs), gprs(&run.emu.regs));
            for i in 0..16 {
                if hg[i] != eg[i] {
                    diffs.push(format!(
                        "{}: host {:#018x} emulator {:#018x}",
                        GPR_NAMES[i], hg[i], eg[i]
                    ));
                }
            }
            if n.regs.rip != run.emu.regs.rip {
                diffs.push(format!(
                    "rip: host {:#x} emulator {:#x} (instruction at {:#x})",
                    n.regs.rip, run.emu.regs.rip, case.regs.rip
                ));
            }
            let mask = case.compare_mask(defined);
            let (hf, ef) = (n.regs.rflags & mask, run.emu.regs.rflags & mask);
            if hf != ef {
                diffs.push(format!(
                    "rflags (mask {mask:#x}): host {hf:#x} emulator {ef:#x} [{}]",
                    flag_names(hf ^ ef)
                ));
            }
            diffs.extend(mem_diffs(&run.native_mem, &run.emu.mem, run.mem_base));
        }
    }
    if diffs.is_empty() {
        Verdict::Match
    } else {
        Verdict::Mismatch(diffs)
    }
}

fn mem_diffs(host: &[u8], emu: &[u8], base: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < host.len() {
        if host[i] == emu[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < host.len() && host[i] != emu[i] && i - start < 16 {
            i += 1;
        }
        if out.len() == 8 {
            out.push("memory: more differences ...".to_string());
            break;
        }
        out.push(format!(
            "memory [{:#x}] (+{start:#x}): host {:02x?} emulator {:02x?}",
            base + start as u64,
            &host[start..i],
            &emu[start..i]
        ));
    }
    out
}

/// Names of the set bits among the loadable flags.
pub fn flag_names(bits: u64) -> String {
    const NAMES: [(u64, &str); 7] = [
        (1, "CF"),
        (1 << 2, "PF"),
        (1 << 4, "AF"),
        (1 << 6, "ZF"),
        (1 << 7, "SF"),
        (1 << 10, "DF"),
        (1 << 11, "OF"),
    ];
    NAMES
        .iter()
        .filter(|(b, _)| bits & b & LOADABLE_FLAGS != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

fn regs_line(r: &Regs) -> String {
    let g = gprs(r);
    let mut s = String::new();
    for (i, v) in g.iter().enumerate() {
        let _ = write!(s, "{}={v:#x} ", GPR_NAMES[i]);
    }
    let _ = write!(
        s,
        "rip={:#x} rflags={:#x} [{}]",
        r.rip,
        r.rflags,
        flag_names(r.rflags)
    );
    s
}

/// A full report of one mismatching case.
pub fn report(case: &Case, run: &Run, seed: u64, index: u32, diffs: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "MISMATCH {:?} `{}` bytes {:02x?} (seed {seed:#x}, case {index})",
        case.code,
        case.disasm(),
        case.bytes
    );
    let _ = writeln!(s, "  input:    {}", regs_line(&case.regs));
    let _ = writeln!(
        s,
        "  host:     {} exit {:?}",
        regs_line(&run.native.regs),
        run.native.exit
    );
    let _ = writeln!(
        s,
        "  emulator: {} result {:?}",
        regs_line(&run.emu.regs),
        run.emu.result
    );
    for d in diffs {
        let _ = writeln!(s, "  - {d}");
    }
    s
}
