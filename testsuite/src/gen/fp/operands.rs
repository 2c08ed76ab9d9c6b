//! Operands of MMX, SSE and x87 forms: register choice, immediates that
//! mean something to the form (rounding controls, compare predicates,
//! string-compare modes, shift counts at the element width), typed memory
//! contents (floats, integers, BCD, environment and FXSAVE images), the
//! implicit lengths of PCMPESTRx, and operand pairs made equal or
//! sign-flipped so that compares, MIN/MAX and subtractions hit their ties.

use super::values::{self, Elem};
use super::{elem_of, state, unit, Unit};
use crate::gen::build::{Builder, Mem, Op};
use crate::gen::Rng;
use crate::native::fx::FX_SIZE;
use iced_x86::{Code, MemorySize, Mnemonic, Register};

const RAX: usize = 0;
const RDX: usize = 2;
const RDI: usize = 7;

/// A random MMX register.
pub fn mm(b: &mut Builder) -> Register {
    reg_from(Register::MM0, b.rng.below(8))
}

/// A random XMM register (XMM0..XMM15).
pub fn xmm(b: &mut Builder) -> Register {
    reg_from(Register::XMM0, b.rng.below(16))
}

/// A random ST(i).
pub fn sti(b: &mut Builder) -> Register {
    reg_from(Register::ST0, b.rng.below(8))
}

fn reg_from(first: Register, n: u64) -> Register {
    Register::try_from(first as usize + n as usize).expect("register exists")
}

/// Registers an instruction addresses implicitly, before its operands:
/// PCMPESTRx string lengths (EAX/EDX or RAX/RDX), MASKMOVQ/MASKMOVDQU's
/// destination in rDI.
pub fn before_operands(b: &mut Builder) {
    use Mnemonic::*;
    match b.mnemonic {
        Pcmpestri | Pcmpestrm | Pcmpestri64 | Pcmpestrm64 => {
            for n in [RAX, RDX] {
                let len = match b.rng.below(10) {
                    0..=5 => b.rng.range(-20, 20) as u64,
                    6 => b
                        .rng
                        .pick(&[0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 1 << 32]),
                    _ => b.rng.reg_value(64),
                };
                b.pin(n, len);
            }
        }
        Maskmovq | Maskmovdqu => {
            b.addr32 = b.rng.chance(20);
            let at = b.env.mem_base + 0x400 + b.rng.below(0x1000);
            let high = if b.addr32 && b.rng.chance(50) {
                b.rng.next_u64() << 32
            } else {
                0
            };
            b.pin(RDI, at | high);
        }
        _ => {}
    }
}

/// An 8-bit immediate of an MMX/SSE form.
pub fn imm8(b: &mut Builder) -> u64 {
    imm8_for(b.code, b.rng)
}

/// An 8-bit immediate for `code`: rounding controls, compare predicates,
/// string-compare modes and shift counts biased to what they mean.
pub fn imm8_for(code: Code, rng: &mut Rng) -> u64 {
    use Mnemonic::*;
    let any = rng.below(256);
    let elem_bits = match elem_of(code) {
        Elem::Int(n) => n as u64 * 8,
        _ => 64,
    };
    match code.mnemonic() {
        // imm8[3:0]: rounding mode, MXCSR.RC or not, precision exception
        // suppressed; the upper bits are reserved.
        Roundps | Roundpd | Roundss | Roundsd => {
            if rng.chance(90) {
                any & 0xf
            } else {
                any
            }
        }
        // Legacy-encoded compares use imm8[2:0]; the rest is ignored.
        Cmpps | Cmppd | Cmpss | Cmpsd => {
            if rng.chance(85) {
                any & 7
            } else {
                any
            }
        }
        Pcmpestri | Pcmpestrm | Pcmpistri | Pcmpistrm | Pcmpestri64 | Pcmpestrm64 => {
            if rng.chance(90) {
                any & 0x7f
            } else {
                any
            }
        }
        Psrlw | Psraw | Psllw | Psrld | Psrad | Pslld | Psrlq | Psllq => {
            let w = elem_bits;
            rng.pick(&[0, 1, 2, w - 1, w, w + 1, 31, 32, 63, 64, 127, 128, 255, any])
        }
        Psrldq | Pslldq | Palignr => {
            let small = rng.below(34);
            rng.pick(&[0, 1, 7, 8, 15, 16, 17, 31, 32, 255, small, small, any])
        }
        _ => {
            if rng.chance(75) {
                any
            } else {
                rng.edge(8)
            }
        }
    }
}

/// Required alignment of the memory operand: the 16-byte operands of SSE
/// forms and FXSAVE/FXRSTOR images are aligned most of the time (a
/// misaligned one is #GP for the aligned forms, which is compared too).
pub fn mem_align(b: &mut Builder, size: usize) -> usize {
    if (size == 16 || size == FX_SIZE) && b.rng.chance(90) {
        16
    } else {
        1
    }
}

/// The bytes of a random x87 environment (FLDENV, and the head of FRSTOR)
/// in the 28-byte (32-bit) or 14-byte (16-bit) protected-mode format.
fn environment(b: &mut Builder, wide: bool) -> Vec<u8> {
    let n = if wide { 28 } else { 14 };
    let mut out = vec![0u8; n];
    b.rng.fill(&mut out);
    if b.rng.chance(20) {
        return out;
    }
    let cw = state::fcw(b.rng);
    let pending = b.rng.chance(10);
    let sw = state::fsw(b.rng, cw, pending);
    let tags = b.rng.next_u64() as u16;
    let step = if wide { 4 } else { 2 };
    out[0..2].copy_from_slice(&cw.to_le_bytes());
    out[step..step + 2].copy_from_slice(&sw.to_le_bytes());
    out[2 * step..2 * step + 2].copy_from_slice(&tags.to_le_bytes());
    out
}

/// An MXCSR bit that is reserved on every processor: 16 or 18..=31. Bit 17
/// is AMD's misaligned-exception mask (MM), writable on this host but not
/// in softvm's model (no misaligned SSE mode).
fn reserved_mxcsr_bit(rng: &mut Rng) -> u64 {
    let bit = 17 + rng.below(15);
    if bit == 17 {
        16
    } else {
        bit
    }
}

/// A typed value for the memory operand at `m`.
pub fn fill_mem(b: &mut Builder, m: Mem) {
    use MemorySize as M;
    let ms = b.code.op_code().memory_size();
    let mut bytes = vec![0u8; m.size];
    match ms {
        M::FpuEnv14 | M::FpuEnv28 => {
            bytes = environment(b, ms == M::FpuEnv28);
        }
        M::FpuState94 | M::FpuState108 => {
            bytes = environment(b, ms == M::FpuState108);
            for _ in 0..8 {
                let (se, sig) = values::f80(b.rng);
                bytes.extend_from_slice(&sig.to_le_bytes());
                bytes.extend_from_slice(&se.to_le_bytes());
            }
        }
        M::Fxsave_512Byte | M::Fxsave64_512Byte => {
            let fx = state::random_state(b.rng, Code::Fninit);
            bytes.copy_from_slice(&fx.0);
            b.rng.fill(&mut bytes[464..]);
            if b.rng.chance(8) {
                // A reserved MXCSR bit: FXRSTOR raises #GP.
                let bit = reserved_mxcsr_bit(b.rng);
                bytes[24..28].copy_from_slice(&(fx.mxcsr() | 1 << bit).to_le_bytes());
            }
        }
        _ => match b.mnemonic {
            Mnemonic::Ldmxcsr => {
                let mut v = state::mxcsr(b.rng);
                if b.rng.chance(8) {
                    v |= 1 << reserved_mxcsr_bit(b.rng); // #GP
                }
                bytes.copy_from_slice(&v.to_le_bytes());
            }
            Mnemonic::Fldcw => {
                let v = if b.rng.chance(90) {
                    state::fcw(b.rng)
                } else {
                    b.rng.next_u64() as u16
                };
                bytes.copy_from_slice(&v.to_le_bytes());
            }
            _ => values::fill(b.rng, elem_of(b.code), &mut bytes),
        },
    }
    let off = (m.ea - b.env.mem_base) as usize;
    b.mem[off..off + m.size].copy_from_slice(&bytes);
}

fn st_index(r: Register) -> Option<usize> {
    let n = r as usize;
    let first = Register::ST0 as usize;
    (first..first + 8).contains(&n).then(|| n - first)
}

fn mm_index(r: Register) -> Option<usize> {
    let n = r as usize;
    let first = Register::MM0 as usize;
    (first..first + 8).contains(&n).then(|| n - first)
}

/// The exact 80-bit image of an integer.
fn int_to_f80(v: i64) -> (u16, u64) {
    if v == 0 {
        return (0, 0);
    }
    let sign = if v < 0 { 0x8000 } else { 0 };
    let mag = v.unsigned_abs();
    let lz = mag.leading_zeros();
    (sign | (0x3fff + 63 - lz) as u16, mag << lz)
}

/// The bytes of operand `o` (`len` of them), if it is an XMM, MMX or
/// memory operand.
fn operand_bytes(b: &Builder, o: Op, len: usize) -> Option<Vec<u8>> {
    match o {
        Op::Reg(r) if r.is_xmm() => {
            Some(b.fp.xmm(r as usize - Register::XMM0 as usize).to_le_bytes()[..len].to_vec())
        }
        Op::Reg(r) => mm_index(r).map(|i| b.fp.mm(i).to_le_bytes()[..len.min(8)].to_vec()),
        Op::Mem(m) => {
            let off = (m.ea - b.env.mem_base) as usize;
            Some(b.mem[off..off + len.min(m.size)].to_vec())
        }
        _ => None,
    }
}

fn set_operand_bytes(b: &mut Builder, o: Op, bytes: &[u8]) {
    match o {
        Op::Reg(r) if r.is_xmm() => {
            let i = r as usize - Register::XMM0 as usize;
            let mut v = b.fp.xmm(i).to_le_bytes();
            v[..bytes.len()].copy_from_slice(bytes);
            b.fp.set_xmm(i, u128::from_le_bytes(v));
        }
        Op::Reg(r) => {
            if let Some(i) = mm_index(r) {
                let mut v = b.fp.mm(i).to_le_bytes();
                let n = bytes.len().min(8);
                v[..n].copy_from_slice(&bytes[..n]);
                let se = b.fp.phys_parts(i).0;
                b.fp.set_phys_parts(i, se, u64::from_le_bytes(v));
            }
        }
        Op::Mem(m) => {
            let off = (m.ea - b.env.mem_base) as usize;
            let n = bytes.len().min(m.size);
            b.mem[off..off + n].copy_from_slice(&bytes[..n]);
        }
        _ => {}
    }
}

/// Characters of the strings PCMPxSTRx compare: a small alphabet with the
/// terminating zero, so that matches, ranges and ends happen.
fn string_bytes(b: &mut Builder) -> Vec<u8> {
    (0..16)
        .map(|_| {
            b.rng
                .pick(&[0u8, b'a', b'a', b'b', b'c', b'z', 0x80, 0xff, 1])
        })
        .collect()
}

/// Value tweaks once the operands are known.
pub fn before_encoding(b: &mut Builder) {
    let ops = b.ops.clone();
    // An explicit ST(i) operand is mostly valid.
    for o in &ops {
        if let Op::Reg(r) = *o {
            if let Some(i) = st_index(r) {
                if b.rng.chance(90) {
                    let p = (b.fp.top() + i) & 7;
                    b.fp.set_ftw(b.fp.ftw() | 1 << p);
                }
            }
        }
    }
    if matches!(
        b.mnemonic,
        Mnemonic::Pcmpestri
            | Mnemonic::Pcmpestrm
            | Mnemonic::Pcmpistri
            | Mnemonic::Pcmpistrm
            | Mnemonic::Pcmpestri64
            | Mnemonic::Pcmpestrm64
    ) && b.rng.chance(60)
    {
        for o in ops.iter().take(2) {
            let s = string_bytes(b);
            set_operand_bytes(b, *o, &s);
        }
        return;
    }
    match b.mnemonic {
        Mnemonic::F2xm1 => st0_within(b, 1.0),
        Mnemonic::Fyl2xp1 => st0_within(b, 1.0 - std::f64::consts::SQRT_2 / 2.0),
        _ => {}
    }
    if !b.rng.chance(15) {
        return;
    }
    match unit(b.code) {
        Unit::X87 => x87_tie(b, &ops),
        _ if ops.len() >= 2 => simd_tie(b, ops[0], ops[1]),
        _ => {}
    }
}

/// Keeps a finite ST(0) inside (-max, max): outside, F2XM1's and
/// FYL2XP1's results are undefined (Intel SDM Vol. 2A).
fn st0_within(b: &mut Builder, max: f64) {
    let (se, m) = b.fp.st_parts(0);
    let v = values::f80_to_f64(se, m);
    if v.is_finite() && v.abs() >= max {
        let frac = (b.rng.below(1 << 52) as f64) / (1u64 << 52) as f64;
        let sign = if b.rng.chance(50) { -1.0 } else { 1.0 };
        let (se, m) = values::f64_to_f80(sign * frac * max);
        b.fp.set_st_parts(0, se, m);
    }
}

/// Makes the second operand equal to the first, with some elements'
/// signs flipped (±0, ±x).
fn simd_tie(b: &mut Builder, dst: Op, src: Op) {
    let Some(mut v) = operand_bytes(b, dst, 16) else {
        return;
    };
    let n = match elem_of(b.code) {
        Elem::F32 => 4,
        Elem::F64 => 8,
        _ => 0,
    };
    if n > 0 {
        for chunk in v.chunks_mut(n) {
            if b.rng.chance(30) {
                chunk[n - 1] ^= 0x80;
            }
        }
    }
    if operand_bytes(b, src, 16).is_some() {
        set_operand_bytes(b, src, &v);
    }
}

/// x87: ST(0) equal to the other operand (ST(i) or memory), or ST(1)
/// equal to ST(0) for the implicit two-operand forms.
fn x87_tie(b: &mut Builder, ops: &[Op]) {
    let st0 = b.fp.st_parts(0);
    let sti = ops
        .iter()
        .filter_map(|o| match o {
            Op::Reg(r) => st_index(*r).filter(|i| *i != 0),
            _ => None,
        })
        .next();
    if let Some(i) = sti.or(super::reads_st1(b.mnemonic).then_some(1)) {
        let flip = if b.rng.chance(30) { 0x8000 } else { 0 };
        b.fp.set_st_parts(i, st0.0 ^ flip, st0.1);
        return;
    }
    let Some(m) = ops.iter().find_map(|o| match o {
        Op::Mem(m) => Some(*m),
        _ => None,
    }) else {
        return;
    };
    let off = (m.ea - b.env.mem_base) as usize;
    let bytes = &b.mem[off..off + m.size];
    let image = match elem_of(b.code) {
        Elem::F32 => {
            let v = f32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
            values::f64_to_f80(f64::from(v))
        }
        Elem::F64 => {
            values::f64_to_f80(f64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")))
        }
        Elem::Int(2) => int_to_f80(i64::from(i16::from_le_bytes([bytes[0], bytes[1]]))),
        Elem::Int(4) => int_to_f80(i64::from(i32::from_le_bytes(
            bytes[..4].try_into().expect("4 bytes"),
        ))),
        Elem::Int(8) => int_to_f80(i64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))),
        _ => return,
    };
    // NaN images of f32/f64 are quiet or signalling as the source was.
    b.fp.set_st_parts(0, image.0, image.1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_images() {
        assert_eq!(int_to_f80(1), (0x3fff, 1 << 63));
        assert_eq!(int_to_f80(-2), (0xc000, 1 << 63));
        assert_eq!(int_to_f80(i64::MIN), (0xc03e, 1 << 63));
        assert_eq!(int_to_f80(3), (0x4000, 0xc000_0000_0000_0000));
    }
}
