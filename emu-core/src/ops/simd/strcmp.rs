//! PCMPESTRI, PCMPESTRM, PCMPISTRI, PCMPISTRM — Packed Compare Explicit or
//! Implicit Length Strings, Return Index or Mask (SDM Vol. 2, 4.1).
//!
//! imm8 bits 1:0 choose the elements (unsigned bytes, unsigned words,
//! signed bytes, signed words); bits 3:2 the aggregation (equal any,
//! ranges, equal each, equal ordered); bits 5:4 the polarity (positive,
//! negative, masked positive, masked negative); bit 6 the least or most
//! significant index, or a bit or element mask. The first operand (an XMM
//! register) is the set, range list or needle; the second (XMM or m128,
//! with no alignment requirement) the text. Lengths are EAX/EDX (RAX/RDX
//! with REX.W), as absolute values capped at the element count, or up to
//! the first zero element.
//!
//! Flags: CF = result not zero, ZF = the second operand is shorter than a
//! full vector, SF = the first one is, OF = result bit 0; AF and PF clear.

use super::lanes::{build, get};
use super::operand::{add_all, Align};
use crate::cpu::flags::{ARITH, CF, OF, SF, ZF};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction};

/// The element format of `imm8[1:0]`.
#[derive(Clone, Copy)]
struct Format {
    words: bool,
    signed: bool,
}

impl Format {
    fn of(imm: u8) -> Format {
        Format {
            words: imm & 1 != 0,
            signed: imm & 2 != 0,
        }
    }

    /// Elements in a vector: 16 bytes or 8 words.
    fn count(self) -> usize {
        if self.words {
            8
        } else {
            16
        }
    }

    /// Element `i` of `v`, extended to i32 as the format says.
    fn elem(self, v: u128, i: usize) -> i32 {
        match (self.words, self.signed) {
            (false, false) => get::<u8>(v, i).into(),
            (false, true) => get::<i8>(v, i).into(),
            (true, false) => get::<u16>(v, i).into(),
            (true, true) => get::<i16>(v, i).into(),
        }
    }

    /// The implicit length: the index of the first zero element.
    fn implicit_len(self, v: u128) -> usize {
        (0..self.count())
            .find(|&i| self.elem(v, i) == 0)
            .unwrap_or(self.count())
    }

    /// The explicit length in a register of `bytes` bytes: its absolute
    /// value as a signed number, capped at the element count.
    fn explicit_len(self, r: u64, bytes: usize) -> usize {
        let abs = if bytes == 8 {
            (r as i64).unsigned_abs()
        } else {
            u64::from((r as i32).unsigned_abs())
        };
        abs.min(self.count() as u64) as usize
    }
}

/// IntRes1: the aggregation of `imm8[3:2]` over `a` (length `la`) and `b`
/// (length `lb`), bit `j` for element `j` of `b`.
fn aggregate(f: Format, agg: u8, a: u128, la: usize, b: u128, lb: usize) -> u32 {
    let n = f.count();
    let (ea, eb) = (|i| f.elem(a, i), |j| f.elem(b, j));
    let bit = |j: usize| -> bool {
        match agg {
            // Equal any: b[j] is one of a's elements.
            0 => j < lb && (0..la).any(|i| ea(i) == eb(j)),
            // Ranges: a[i] <= b[j] <= a[i+1] for some pair of a.
            1 => j < lb && (0..la / 2).any(|p| ea(2 * p) <= eb(j) && eb(j) <= ea(2 * p + 1)),
            // Equal each: both valid and equal, or both invalid.
            2 => match (j < la, j < lb) {
                (true, true) => ea(j) == eb(j),
                (false, false) => true,
                _ => false,
            },
            // Equal ordered: a occurs in b at j (a's invalid tail matches
            // anything; b's invalid tail matches nothing of a).
            _ => (0..n - j).all(|k| k >= la || (j + k < lb && ea(k) == eb(j + k))),
        }
    };
    (0..n).fold(0, |r, j| r | u32::from(bit(j)) << j)
}

/// IntRes2 and the flags.
fn compare(imm: u8, a: u128, la: usize, b: u128, lb: usize) -> (u32, u64) {
    let f = Format::of(imm);
    let n = f.count();
    let res1 = aggregate(f, imm >> 2 & 3, a, la, b, lb);
    let all = (1u32 << n) - 1;
    let res2 = match imm >> 4 & 3 {
        1 => !res1 & all,
        // Masked negative: only the valid elements of b are negated.
        3 => res1 ^ ((1u32 << lb) - 1),
        _ => res1,
    };
    let mut flags = 0;
    if res2 != 0 {
        flags |= CF;
    }
    if lb < n {
        flags |= ZF;
    }
    if la < n {
        flags |= SF;
    }
    if res2 & 1 != 0 {
        flags |= OF;
    }
    (res2, flags)
}

/// The index output: the least (`imm8[6]` = 0) or most significant set bit,
/// or the element count when none is set.
fn index(imm: u8, res2: u32) -> u32 {
    match (res2, imm & 0x40 != 0) {
        (0, _) => Format::of(imm).count() as u32,
        (r, false) => r.trailing_zeros(),
        (r, true) => 31 - r.leading_zeros(),
    }
}

/// The mask output: the bits themselves (`imm8[6]` = 0) or each bit
/// expanded to its element.
fn mask(imm: u8, res2: u32) -> u128 {
    if imm & 0x40 == 0 {
        return u128::from(res2);
    }
    let on = |i: usize| res2 >> i & 1 != 0;
    if Format::of(imm).words {
        build::<u16>(8, |i| if on(i) { u16::MAX } else { 0 })
    } else {
        build::<u8>(16, |i| if on(i) { u8::MAX } else { 0 })
    }
}

/// The four instructions: operands, lengths, compare, output, flags.
fn pcmpstr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.sse_check()?;
    let imm = ins.immediate8();
    let b = x.vsrc(ins, 1, Align::Unaligned)?;
    let a = x.xmm(ins.op0_register());
    let f = Format::of(imm);
    let code = ins.code();
    let explicit = matches!(
        code,
        Code::Pcmpestri_xmm_xmmm128_imm8
            | Code::Pcmpestri64_xmm_xmmm128_imm8
            | Code::Pcmpestrm_xmm_xmmm128_imm8
            | Code::Pcmpestrm64_xmm_xmmm128_imm8
    );
    let (la, lb) = if explicit {
        let bytes = if matches!(
            code,
            Code::Pcmpestri64_xmm_xmmm128_imm8 | Code::Pcmpestrm64_xmm_xmmm128_imm8
        ) {
            8
        } else {
            4
        };
        (
            f.explicit_len(x.cpu.gpr[0], bytes),
            f.explicit_len(x.cpu.gpr[2], bytes),
        )
    } else {
        (f.implicit_len(a), f.implicit_len(b))
    };
    let (res2, flags) = compare(imm, a, la, b, lb);
    let to_index = matches!(
        code,
        Code::Pcmpestri_xmm_xmmm128_imm8
            | Code::Pcmpestri64_xmm_xmmm128_imm8
            | Code::Pcmpistri_xmm_xmmm128_imm8
    );
    if to_index {
        x.set_gpr(1, 4, u64::from(index(imm, res2)));
    } else {
        x.cpu.fpu.xmm[0] = mask(imm, res2);
    }
    x.cpu.flags.set_arith(ARITH, flags);
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use iced_x86::Code::*;
    add_all(
        t,
        &[
            Pcmpestri_xmm_xmmm128_imm8,
            Pcmpestri64_xmm_xmmm128_imm8,
            Pcmpestrm_xmm_xmmm128_imm8,
            Pcmpestrm64_xmm_xmmm128_imm8,
            Pcmpistri_xmm_xmmm128_imm8,
            Pcmpistrm_xmm_xmmm128_imm8,
        ],
        pcmpstr,
    );
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ops::simd::host::{imm_table, Rng};

    /// The native results for one imm8: PCMPESTRI (ECX, flags), the same
    /// with REX.W, PCMPESTRM (XMM0, flags), PCMPISTRI, PCMPISTRM.
    type Hw = fn(u128, u128, u64, u64) -> [u128; 10];

    fn hw<const I: u8>(a: u128, b: u128, rax: u64, rdx: u64) -> [u128; 10] {
        let mut out = [0u128; 10];
        let o = out.as_mut_ptr();
        // SAFETY: the asm writes only `out` (ten u128 slots through `o`)
        // and the registers it declares; pushfq/pop are balanced.
        unsafe {
            std::arch::asm!(
                "movdqu xmm1, [{a}]",
                "movdqu xmm2, [{b}]",
                "pcmpestri xmm1, xmm2, {i}",
                "mov [{o}], rcx",
                "pushfq",
                "pop qword ptr [{o} + 16]",
                // pcmpestri xmm1, xmm2, imm with REX.W
                ".byte 0x66, 0x48, 0x0f, 0x3a, 0x61, 0xca, {i}",
                "mov [{o} + 32], rcx",
                "pushfq",
                "pop qword ptr [{o} + 48]",
                "pcmpestrm xmm1, xmm2, {i}",
                "movdqu [{o} + 64], xmm0",
                "pushfq",
                "pop qword ptr [{o} + 80]",
                "pcmpistri xmm1, xmm2, {i}",
                "mov [{o} + 96], rcx",
                "pushfq",
                "pop qword ptr [{o} + 112]",
                "pcmpistrm xmm1, xmm2, {i}",
                "movdqu [{o} + 128], xmm0",
                "pushfq",
                "pop qword ptr [{o} + 144]",
                a = in(reg) &a,
                b = in(reg) &b,
                o = in(reg) o,
                i = const I,
                in("rax") rax,
                in("rdx") rdx,
                out("rcx") _,
                out("xmm0") _,
                out("xmm1") _,
                out("xmm2") _,
            );
        }
        out
    }

    /// What the handler computes, in the same layout.
    fn model(imm: u8, a: u128, b: u128, rax: u64, rdx: u64) -> [u128; 10] {
        let f = Format::of(imm);
        let mut out = [0u128; 10];
        let e = |bytes| {
            compare(
                imm,
                a,
                f.explicit_len(rax, bytes),
                b,
                f.explicit_len(rdx, bytes),
            )
        };
        let i = compare(imm, a, f.implicit_len(a), b, f.implicit_len(b));
        for (k, (res, fl), to_index) in [
            (0, e(4), true),
            (2, e(8), true),
            (4, e(4), false),
            (6, i, true),
            (8, i, false),
        ] {
            out[k] = if to_index {
                u128::from(index(imm, res))
            } else {
                mask(imm, res)
            };
            out[k + 1] = u128::from(fl);
        }
        out
    }

    /// Text made of few distinct characters (so that matches, ranges and
    /// substrings occur), with zeros for the implicit lengths.
    fn text(rng: &mut Rng) -> u128 {
        const CHARS: [u8; 8] = [0, b'a', b'b', b'c', b'z', 0x80, 0xff, 0x7f];
        let zero_odds = rng.next() % 8;
        let mut v = [0u8; 16];
        for byte in v.iter_mut() {
            let r = rng.next();
            *byte = if r % 32 < zero_odds {
                0
            } else {
                CHARS[1 + (r >> 8) as usize % 7]
            };
        }
        u128::from_le_bytes(v)
    }

    fn length(rng: &mut Rng) -> u64 {
        match rng.next() % 8 {
            0 => rng.next(),
            1 => 0x8000_0000 | (rng.next() & 0xff_ffff_0000_0000) | (rng.next() % 20),
            2 => (rng.next() % 40).wrapping_neg(),
            _ => rng.next() % 20,
        }
    }

    #[test]
    fn every_mode_matches_the_host() {
        if !crate::ops::simd::host::usable() {
            return;
        }
        let table: [[Hw; 16]; 16] = imm_table!(hw, Hw);
        let mut rng = Rng::new(0x57);
        for imm in 0..=255u8 {
            let hw = table[usize::from(imm >> 4)][usize::from(imm & 15)];
            for _ in 0..200 {
                let (a, b) = (text(&mut rng), text(&mut rng));
                let b = if rng.next().is_multiple_of(4) {
                    a.rotate_right(8 * (rng.next() % 16) as u32)
                } else {
                    b
                };
                let (rax, rdx) = (length(&mut rng), length(&mut rng));
                let mut want = hw(a, b, rax, rdx);
                for k in [1, 3, 5, 7, 9] {
                    want[k] &= u128::from(ARITH);
                }
                // ECX/RCX: the index, zero-extended.
                let got = model(imm, a, b, rax, rdx);
                assert_eq!(
                    got, want,
                    "imm {imm:#04x}, a {a:#034x}, b {b:#034x}, rax {rax:#x}, rdx {rdx:#x}"
                );
            }
        }
    }
}
