//! Random instances of x86-64 instruction forms for differential testing.
//!
//! [`generate`] takes an iced-x86 [`Code`] (one operand form), reads its
//! operand kinds from iced's op-code table and builds one [`Case`]: the
//! encoded instruction, the input registers and flags, and the initial
//! memory image. Values lean toward edges (0, 1, -1, sign and width
//! boundaries). Memory operands are `[base + index*scale + disp]` (also
//! RIP-relative, absolute, moffs and 32-bit address-size forms) whose
//! effective address lands inside the data buffer; the base and index
//! registers get the values that make it so, identically for the host and
//! the emulator.
//!
//! Coordinates come from an [`Env`]: guest and host addresses coincide (see
//! [`crate::native`]), so branch targets, RIP-relative operands and pushed
//! return addresses are the same numbers on both sides.
//!
//! Faults are mostly avoided rather than caught: divisors are non-zero and
//! quotients fit, except for a small share of deliberate #DE cases (the
//! native runner reports those as SIGFPE, compared against the emulator's
//! exception vector). Results the manuals leave undefined are avoided
//! (16-bit SHLD/SHRD counts above 16, BSF/BSR of zero) and flags that are
//! undefined only for some operand values (shift/rotate counts) are masked
//! per case, see [`Case::compare_mask`].

mod build;
pub mod diff;
mod fixup;
mod flags;
pub mod fp;
mod rng;
mod skip;

pub use rng::{width_mask, Rng};
pub use skip::{is_near_branch, skip_reason};

use crate::native::fx::FxImage;
use crate::native::{DF, LOADABLE_FLAGS};
use emu_core::Regs;
use iced_x86::{Code, Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};

/// Where the case will run.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    /// Guest (= host) address of the data buffer.
    pub mem_base: u64,
    /// Its length (at least 8 KiB).
    pub mem_len: usize,
    /// Guest RIP of the instruction.
    pub insn_addr: u64,
    /// Where taken branches must go.
    pub taken_target: u64,
}

/// One generated test input.
#[derive(Clone, Debug)]
pub struct Case {
    pub code: Code,
    /// The encoded instruction.
    pub bytes: Vec<u8>,
    /// `bytes` decoded at `regs.rip`.
    pub instr: Instruction,
    /// Input registers: `rip` is the instruction's address, `rflags` holds
    /// random arithmetic flags and DF, plus IF and bit 1 as in user mode.
    pub regs: Regs,
    /// Initial contents of the data buffer.
    pub mem: Vec<u8>,
    /// Flags that the manuals define for this particular instance although
    /// they are undefined for the form in general (e.g. a shift by 0 leaves
    /// all flags unchanged).
    pub flags_defined: u64,
    /// Flags undefined for this instance although defined for the form in
    /// general (e.g. OF after a shift by more than 1).
    pub flags_undefined: u64,
    /// The x87/MMX/SSE state before the instruction.
    pub fp: FxImage,
    /// Effective address of the explicit memory operand, if any.
    pub mem_ea: Option<u64>,
}

impl Case {
    /// Compare the flags the manuals leave undefined for this instance too
    /// (emu-core computes them as the processors of its CPU model's vendor
    /// do, and the differential tests give it the host's vendor); pass
    /// `u64::MAX` as the form's defined flags to [`Case::compare_mask`].
    pub fn compare_undefined_flags(&mut self) {
        self.flags_undefined = 0;
    }

    /// The RFLAGS bits to compare, given what the emulator says the form
    /// defines. DF is always compared; only the flags the host loads from
    /// the input are considered.
    pub fn compare_mask(&self, defined_for_code: u64) -> u64 {
        (((defined_for_code | self.flags_defined) & !self.flags_undefined) | DF) & LOADABLE_FLAGS
    }

    /// Intel-syntax disassembly.
    pub fn disasm(&self) -> String {
        format_instr(&self.instr)
    }
}

/// Intel-syntax text of an instruction.
pub fn format_instr(instr: &Instruction) -> String {
    let mut out = String::new();
    let mut f = IntelFormatter::new();
    f.options_mut().set_hex_prefix("0x");
    f.options_mut().set_hex_suffix("");
    f.options_mut().set_space_after_operand_separator(true);
    f.format(instr, &mut out);
    out
}

/// Decodes one instruction.
pub fn decode(bytes: &[u8], rip: u64) -> Instruction {
    Decoder::with_ip(64, bytes, rip, DecoderOptions::NONE).decode()
}

/// Why no case could be generated.
#[derive(Debug, Clone)]
pub enum GenError {
    /// The form is not compared against the host (the reason).
    Skipped(&'static str),
    /// The generator gave up (a bug in the generator or an encoding iced
    /// cannot produce).
    Failed(String),
}

impl std::fmt::Display for GenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenError::Skipped(why) => write!(f, "skipped: {why}"),
            GenError::Failed(why) => write!(f, "generator failed: {why}"),
        }
    }
}

/// Builds one random instance of `code`.
pub fn generate(code: Code, env: &Env, rng: &mut Rng) -> Result<Case, GenError> {
    if let Some(why) = skip_reason(code) {
        return Err(GenError::Skipped(why));
    }
    assert!(env.mem_len >= 8192, "the generator needs an 8 KiB buffer");
    let mut last = String::new();
    for _ in 0..64 {
        match build::Builder::new(code, env, rng).build() {
            Ok(case) => return Ok(case),
            Err(build::Retry(why)) => last = why,
        }
    }
    Err(GenError::Failed(format!("{code:?}: {last}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            mem_base: 0x4000_2000,
            mem_len: 8192,
            insn_addr: 0x4000_1800,
            taken_target: 0x4000_17e0,
        }
    }

    /// Every comparable integer form gets valid, re-decodable cases whose
    /// memory operands land in the buffer.
    #[test]
    fn generates_every_comparable_form() {
        let env = env();
        let mut forms = 0;
        for code in Code::values() {
            if skip_reason(code).is_some() {
                continue;
            }
            forms += 1;
            for i in 0..20 {
                let mut rng = Rng::for_case(99, code as u32, i);
                let case =
                    generate(code, &env, &mut rng).unwrap_or_else(|e| panic!("{code:?}: {e}"));
                assert_eq!(case.instr.code(), code);
                assert_eq!(case.instr.len(), case.bytes.len());
                assert_eq!(case.mem.len(), env.mem_len);
                assert_eq!(case.regs.rip, env.insn_addr);
                let info = iced_x86::InstructionInfoFactory::new()
                    .info(&case.instr)
                    .used_memory()
                    .to_vec();
                for m in info {
                    if m.access() == iced_x86::OpAccess::NoMemAccess {
                        continue;
                    }
                    let regs = case.regs;
                    let ea = m.virtual_address(0, |reg, _, _| {
                        Some(match reg {
                            iced_x86::Register::RIP | iced_x86::Register::EIP => {
                                env.insn_addr + case.bytes.len() as u64
                            }
                            r => build::read_reg(&regs, r),
                        })
                    });
                    let ea = ea.expect("address computable");
                    let size = m.memory_size().size() as u64;
                    let s = case.disasm();
                    assert!(
                        ea >= env.mem_base && ea + size <= env.mem_base + env.mem_len as u64,
                        "{code:?} {s}: ea {ea:#x} outside the buffer"
                    );
                }
            }
        }
        assert!(forms > 500, "only {forms} forms");
    }

    /// Every generated case runs natively without a fault, except the
    /// deliberate #DE cases of DIV/IDIV, misaligned CMPXCHG16B, the
    /// floating-point faults the generator provokes, and the register form
    /// of 0F 0D on AMD hosts; branches end at the pad or the next
    /// instruction.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn generated_cases_run_natively() {
        use crate::native::{Exit, NativeRunner};
        let mut runner = NativeRunner::new(2).unwrap();
        let env = Env {
            mem_base: runner.mem_base(),
            mem_len: runner.mem().len(),
            insn_addr: runner.insn_addr(),
            taken_target: runner.taken_target(),
        };
        let mut faults = 0;
        let mut taken = 0;
        for code in Code::values() {
            if skip_reason(code).is_some() {
                continue;
            }
            for i in 0..20 {
                let mut rng = Rng::for_case(7, code as u32, i);
                let case = generate(code, &env, &mut rng).unwrap();
                runner.mem_mut().copy_from_slice(&case.mem);
                let out = runner.run_fp(&case.bytes, &case.regs, &case.fp).unwrap();
                match out.exit {
                    Exit::FallThrough => {}
                    Exit::Taken => taken += 1,
                    Exit::Fault { signal, .. } => {
                        // Floating point: unmasked exceptions (#XM, #MF)
                        // and #GP for misaligned 16-byte operands or
                        // reserved MXCSR bits.
                        let expected = matches!(
                            code.mnemonic(),
                            iced_x86::Mnemonic::Div | iced_x86::Mnemonic::Idiv
                        ) && signal == libc::SIGFPE
                            || code == Code::Cmpxchg16b_m128 && signal == libc::SIGSEGV
                            || fp::is_fp_form(code)
                                && (signal == libc::SIGFPE || signal == libc::SIGSEGV)
                            || skip::is_reserved_nop_0f0d(code)
                                && signal == libc::SIGILL
                                && diff::vendors().host == *b"AuthenticAMD";
                        assert!(
                            expected,
                            "{code:?} `{}` case {i}: {:?}\ninput {:x?}",
                            case.disasm(),
                            out.exit,
                            case.regs
                        );
                        faults += 1;
                    }
                }
            }
        }
        assert!(taken > 100, "{taken} taken branches");
        assert!(faults > 0);
    }
}
