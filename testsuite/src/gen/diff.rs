//! Run a [`Case`] on the host CPU and in emu-core, and compare.

use super::fp::check::{self, FpDiffs, Vendors};
use super::{decode, Case, Env};
use crate::native::fx::FxImage;
use crate::native::fx::OFF_MXCSR_MASK;
use crate::native::{
    gprs, Exit, NativeRunner, Outcome, FLAGS_FIXED, GPR_NAMES, IF, LOADABLE_FLAGS,
};
use emu_core::testing::{step64, step64_fp, FlatMem, StepError};
use emu_core::Regs;
use std::fmt::Write as _;
use std::sync::OnceLock;

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
            fp: FxImage::default(),
            mem_ea: None,
        }
    }
}

/// What the emulator did with a case.
#[derive(Debug)]
pub struct EmuOutcome {
    pub result: Result<(), StepError>,
    pub regs: Regs,
    pub mem: Vec<u8>,
    /// The x87/MMX/SSE state after the instruction (or at its fault).
    pub fp: FxImage,
    /// After #XM: the result of the same case with CR4.OSXMMEXCPT clear,
    /// which must be #UD.
    pub without_osxmmexcpt: Option<Result<(), StepError>>,
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

/// #XM's vector; #UD's.
const XM: u8 = 19;
const UD: u8 = 6;

/// Runs `case` in emu-core; `osxmmexcpt` is CR4.OSXMMEXCPT.
fn run_emu(
    case: &Case,
    base: u64,
    osxmmexcpt: bool,
) -> (Result<(), StepError>, Regs, FlatMem, FxImage) {
    let mut regs = case.regs;
    let mut mem = FlatMem {
        base,
        bytes: case.mem.clone(),
    };
    let mut fpu = case.fp.to_fpu();
    let result = step64_fp(&mut regs, &mut fpu, osxmmexcpt, &case.bytes, &mut mem);
    (result, regs, mem, FxImage::from_fpu(&fpu))
}

/// Runs `case` on both sides. The emulator runs with CR4.OSXMMEXCPT set,
/// as Linux runs the host's user programs; when that gives #XM, it runs
/// again without, expecting #UD.
pub fn run_both(runner: &mut NativeRunner, case: &Case) -> Run {
    runner.mem_mut().copy_from_slice(&case.mem);
    let native = runner
        .run_fp(&case.bytes, &case.regs, &case.fp)
        .expect("native run");
    let native_mem = runner.mem().to_vec();
    let base = runner.mem_base();
    let (result, regs, mem, fp) = run_emu(case, base, true);
    let without_osxmmexcpt = matches!(result, Err(StepError::Exception { vector: XM, .. }))
        .then(|| run_emu(case, base, false).0);
    Run {
        mem_base: base,
        native,
        native_mem,
        emu: EmuOutcome {
            result,
            regs,
            mem: mem.bytes,
            fp,
            without_osxmmexcpt,
        },
    }
}

/// The vendors of the host CPU and of softvm's model (CPUID leaf 0 run
/// on each), computed once.
pub fn vendors() -> Vendors {
    static V: OnceLock<Vendors> = OnceLock::new();
    *V.get_or_init(|| {
        let cpuid = [0x0f, 0xa2];
        let name = |r: &Regs| {
            let mut v = [0u8; 12];
            v[..4].copy_from_slice(&(r.rbx as u32).to_le_bytes());
            v[4..8].copy_from_slice(&(r.rdx as u32).to_le_bytes());
            v[8..].copy_from_slice(&(r.rcx as u32).to_le_bytes());
            v
        };
        let host = NativeRunner::new(1)
            .and_then(|mut r| r.run(&cpuid, &Regs::default()))
            .map(|o| name(&o.regs))
            .unwrap_or([b'?'; 12]);
        let mut regs = Regs {
            rip: 0x10_0000,
            ..Regs::default()
        };
        let mut mem = FlatMem {
            base: 0x20_0000,
            bytes: vec![0; 4096],
        };
        let emu = match step64(&mut regs, &cpuid, &mut mem) {
            Ok(()) => name(&regs),
            Err(_) => [b'?'; 12],
        };
        Vendors { host, emu }
    })
}

/// The floating-point state of both sides compared.
pub fn fp_compare(case: &Case, run: &Run) -> FpDiffs {
    check::compare(
        case.code,
        case.mem_ea.is_some(),
        &case.fp,
        &run.native.fp,
        &run.emu.fp,
        &vendors(),
    )
}

/// Memory bytes not compared for this case, as buffer offsets. In the
/// image FXSAVE stores:
/// - MXCSR_MASK, when the host reports MXCSR features softvm's model does
///   not have (AMD's misaligned-exception mask MM, bit 17);
/// - FOP, FIP and FDP (bytes 6..24), when softvm's model has another
///   vendor than the host and no exception is pending: AMD processors
///   store them as zero then (AMD APM Vol. 5, FXSAVE), Intel ones store
///   the last x87 instruction's.
fn ignored_mem(case: &Case, run: &Run) -> Vec<usize> {
    use iced_x86::Mnemonic::{Fnsave, Fnstenv, Fxsave, Fxsave64};
    if let (Fnstenv | Fnsave, Some(ea)) = (case.code.mnemonic(), case.mem_ea) {
        return lost_pointers(case, run, (ea - run.mem_base) as usize);
    }
    let host_mask = u32::from_le_bytes(
        run.native.fp.0[OFF_MXCSR_MASK..OFF_MXCSR_MASK + 4]
            .try_into()
            .expect("4 bytes"),
    );
    let (Fxsave | Fxsave64, Some(ea)) = (case.code.mnemonic(), case.mem_ea) else {
        return Vec::new();
    };
    let at = (ea - run.mem_base) as usize;
    let mut out = Vec::new();
    if host_mask != 0xffff {
        out.extend(at + OFF_MXCSR_MASK..at + OFF_MXCSR_MASK + 4);
    }
    if !vendors().same() && run.native.fp.fsw() & check::ES == 0 {
        out.extend(at + 6..at + 24);
    }
    out
}

/// The FIP, FOP and FDP fields of an FNSTENV/FNSAVE image when the host
/// stored them as zero on an AMD processor without a pending exception.
/// The operating system may switch tasks between the runner's FXRSTOR64
/// and the instruction, and on AMD processors the XSAVE of a task switch
/// does not save these pointers unless an exception is pending (AMD APM
/// Vol. 5, FXSAVE): they come back as zero, about once in 40 000 runs.
fn lost_pointers(case: &Case, run: &Run, at: usize) -> Vec<usize> {
    let amd = vendors().host == *b"AuthenticAMD";
    if !amd || case.fp.fsw() & check::ES != 0 {
        return Vec::new();
    }
    use iced_x86::MemorySize::{FpuEnv28, FpuState108};
    let wide = matches!(case.instr.memory_size(), FpuEnv28 | FpuState108);
    let fields: &[std::ops::Range<usize>] = if wide {
        &[12..16, 18..24]
    } else {
        &[6..8, 10..12]
    };
    let zero = fields.iter().all(|r| {
        run.native_mem[at + r.start..at + r.end]
            .iter()
            .all(|&b| b == 0)
    });
    if !zero {
        return Vec::new();
    }
    fields
        .iter()
        .flat_map(|r| at + r.start..at + r.end)
        .collect()
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
            match &run.emu.without_osxmmexcpt {
                Some(Err(StepError::Exception { vector: UD, .. })) | None => {}
                Some(other) => diffs.push(format!(
                    "#XM with CR4.OSXMMEXCPT, but without it {other:?} instead of #UD"
                )),
            }
            diffs.extend(fp_compare(case, run).diffs);
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
                if hg[i] != eg[i] && !cpu_model_difference(case, i, hg[i], eg[i]) {
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
            diffs.extend(fp_compare(case, run).diffs);
            let mut emu_mem = run.emu.mem.clone();
            for off in ignored_mem(case, run) {
                emu_mem[off] = run.native_mem[off];
            }
            diffs.extend(mem_diffs(&run.native_mem, &emu_mem, run.mem_base));
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
    if super::fp::is_fp_form(case.code) {
        let _ = writeln!(s, "  input fp:    {:?}", case.fp);
        let _ = writeln!(s, "  host fp:     {:?}", run.native.fp);
        let _ = writeln!(s, "  emulator fp: {:?}", run.emu.fp);
        if let Some(ea) = case.mem_ea {
            let off = (ea - run.mem_base) as usize;
            let n = case.instr.memory_size().size().clamp(1, 32);
            let end = (off + n).min(case.mem.len());
            let _ = writeln!(
                s,
                "  memory operand at {ea:#x}: {:02x?}",
                &case.mem[off..end]
            );
        }
    }
    for d in diffs {
        let _ = writeln!(s, "  - {d}");
    }
    s
}

/// Results on which x86-64 processors themselves disagree, so the host CPU
/// is not the reference. softvm follows the reference hardware of
/// ../shared/conformance (its README): a failed `CMPXCHG r32, r32` writes
/// the destination register back, zero-extending it. Some processors (this
/// project's CI host among them) leave the destination untouched. Only that
/// exact difference is accepted: same low 32 bits, upper half cleared by
/// softvm and kept by the host.
pub fn cpu_model_difference(case: &Case, gpr: usize, host: u64, emu: u64) -> bool {
    use iced_x86::{Code, OpKind};
    if case.code != Code::Cmpxchg_rm32_r32 || case.instr.op0_kind() != OpKind::Register {
        return false;
    }
    let dest = case.instr.op0_register().full_register().number();
    dest == gpr && host == gprs(&case.regs)[gpr] && emu == host & 0xffff_ffff
}
