//! Tests of the SSE floating-point family: every form's faults (CR0/CR4,
//! #MF, alignment, unmasked SIMD exceptions), known answers for each
//! sub-family, and the RCP/RSQRT tables. Results of the arithmetic are
//! compared with the host by the host differential test (testsuite's
//! `host_diff_fp`) and the soft-float core's own tests.

mod approx;
mod forms;
mod values;

use crate::api_types::{Fpu, Regs};
use crate::cpu::state::{CR0_MP, CR0_NE, CR4_OSFXSR, CR4_OSXMMEXCPT};
use crate::testing::{step64_cr, FlatMem, StepError};
use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};

/// Where the code and the data buffer live.
const RIP: u64 = 0x1000;
const BUF: u64 = 0x10_0000;

/// CR0 and CR4 bits of an operating system with SSE enabled.
const CR0: u64 = CR0_NE | CR0_MP;
const CR4: u64 = CR4_OSFXSR | CR4_OSXMMEXCPT;

/// One instruction to run: its bytes and the state around it.
struct Setup {
    code: Vec<u8>,
    fpu: Fpu,
    regs: Regs,
    mem: Vec<u8>,
    cr0: u64,
    cr4: u64,
}

/// What running it left, or the exception vector it raised.
struct After {
    fault: Option<u8>,
    fpu: Fpu,
    regs: Regs,
    mem: Vec<u8>,
}

impl Setup {
    fn new(code: Vec<u8>) -> Setup {
        Setup {
            code,
            fpu: Fpu::default(),
            regs: Regs {
                rip: RIP,
                rflags: 2,
                rbx: BUF,
                ..Regs::default()
            },
            mem: vec![0; 64],
            cr0: CR0,
            cr4: CR4,
        }
    }

    fn run(&self) -> After {
        let mut regs = self.regs;
        let mut fpu = self.fpu;
        let mut mem = FlatMem {
            base: BUF,
            bytes: self.mem.clone(),
        };
        let r = step64_cr(
            &mut regs, &mut fpu, self.cr0, self.cr4, &self.code, &mut mem,
        );
        let fault = match r {
            Ok(()) => None,
            Err(StepError::Exception { vector, .. }) => Some(vector),
            Err(e) => panic!("{e:?}"),
        };
        After {
            fault,
            fpu,
            regs,
            mem: mem.bytes,
        }
    }

    fn set_xmm(&mut self, i: usize, v: u128) {
        self.fpu.xmm[i] = v.to_le_bytes();
    }

    /// MMi: physical register i, which is ST((i - TOP) mod 8).
    fn set_mm(&mut self, i: usize, v: u64) {
        let top = usize::from(self.fpu.fsw >> 11 & 7);
        let st = &mut self.fpu.fpr[(i + 8 - top) & 7];
        st[..8].copy_from_slice(&v.to_le_bytes());
        st[8..10].copy_from_slice(&0xffffu16.to_le_bytes());
        self.fpu.ftwx |= 1 << i;
    }
}

impl After {
    fn xmm(&self, i: usize) -> u128 {
        u128::from_le_bytes(self.fpu.xmm[i])
    }
}

/// An operand of a form, from its `Code` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Xmm,
    Mm,
    Gpr32,
    Gpr64,
    /// Register or memory: the memory operand's size in bytes.
    XmmOrMem(usize),
    MmOrMem,
    Gpr32OrMem,
    Gpr64OrMem,
    Mem32,
    Imm8,
}

/// The operands of `code`, parsed from its name (`Cvtsi2ss_xmm_rm32`).
fn kinds(code: Code) -> Vec<Kind> {
    let name = format!("{code:?}");
    name.split('_')
        .skip(1)
        .map(|p| match p {
            "xmm" => Kind::Xmm,
            "mm" => Kind::Mm,
            "r32" => Kind::Gpr32,
            "r64" => Kind::Gpr64,
            "xmmm128" => Kind::XmmOrMem(16),
            "xmmm64" => Kind::XmmOrMem(8),
            "xmmm32" => Kind::XmmOrMem(4),
            "mmm64" => Kind::MmOrMem,
            "rm32" => Kind::Gpr32OrMem,
            "rm64" => Kind::Gpr64OrMem,
            "m32" => Kind::Mem32,
            "imm8" => Kind::Imm8,
            _ => panic!("operand {p} of {name}"),
        })
        .collect()
}

/// The bytes of `code` with destination register 1, source register 2
/// (XMM, MM or rCX/eCX for general registers; rAX/eAX as a general
/// destination) or the memory operand `[rbx + disp]`, and `imm`.
fn encode(code: Code, mem: bool, disp: i64, imm: u32) -> Vec<u8> {
    let m = MemoryOperand::with_base_displ(Register::RBX, disp);
    let reg = |k: Kind, dest: bool| match k {
        Kind::Xmm | Kind::XmmOrMem(_) => Register::XMM1 + u32::from(!dest),
        Kind::Mm | Kind::MmOrMem => Register::MM1 + u32::from(!dest),
        Kind::Gpr32 | Kind::Gpr32OrMem => {
            if dest {
                Register::EAX
            } else {
                Register::ECX
            }
        }
        _ => {
            if dest {
                Register::RAX
            } else {
                Register::RCX
            }
        }
    };
    let k = kinds(code);
    let ins = match k.as_slice() {
        [Kind::Mem32] => Instruction::with1(code, m),
        [a, _] if mem => Instruction::with2(code, reg(*a, true), m),
        [a, b] => Instruction::with2(code, reg(*a, true), reg(*b, false)),
        [a, _, Kind::Imm8] if mem => Instruction::with3(code, reg(*a, true), m, imm),
        [a, b, Kind::Imm8] => Instruction::with3(code, reg(*a, true), reg(*b, false), imm),
        _ => panic!("{code:?}"),
    }
    .unwrap();
    let mut e = Encoder::new(64);
    e.encode(&ins, RIP).unwrap();
    e.take_buffer()
}

/// Whether the form has only a memory operand (LDMXCSR, STMXCSR).
fn memory_only(code: Code) -> bool {
    kinds(code) == [Kind::Mem32]
}

/// The family's forms.
fn all_forms() -> Vec<Code> {
    super::forms().map(|(c, _)| c).collect()
}
