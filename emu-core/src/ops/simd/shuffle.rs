//! Shuffles: PSHUFW, PSHUFD, PSHUFHW, PSHUFLW, PSHUFB, SHUFPS, SHUFPD,
//! PALIGNR, and the SSE3 duplicating moves MOVSLDUP, MOVSHDUP, MOVDDUP.

use super::lanes::{build, get, trunc};
use super::operand::forms;
use crate::exec::table::TableBuilder;

/// Two-bit field `i` of `imm`.
#[inline(always)]
fn sel2(imm: u8, i: usize) -> usize {
    usize::from(imm >> (2 * i) & 3)
}

/// PSHUFW (MM) and PSHUFD (XMM) — Shuffle Packed Words / Doublewords:
/// lane `i` of the result is the source's lane `imm8[2i+1:2i]` (words of
/// the 64-bit form, dwords of the 128-bit one).
fn pshufw(_a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    build::<u16>(4, |i| get(b, sel2(imm, i)))
}
fn pshufd(_a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    build::<u32>(4, |i| get(b, sel2(imm, i)))
}

/// PSHUFLW — Shuffle Packed Low Words (the high quadword is copied)
fn pshuflw(_a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    (b >> 64 << 64) | pshufw(0, b, 8, imm)
}

/// PSHUFHW — Shuffle Packed High Words (the low quadword is copied)
fn pshufhw(_a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    (pshufw(0, b >> 64, 8, imm) << 64) | (b & u128::from(u64::MAX))
}

/// PSHUFB — Packed Shuffle Bytes: byte `i` is zero if the source's byte
/// `i` has bit 7 set, else the destination's byte selected by its low 3
/// (MM) or 4 (XMM) bits.
fn pshufb(a: u128, b: u128, w: usize) -> u128 {
    build::<u8>(w, |i| {
        let s: u8 = get(b, i);
        if s & 0x80 != 0 {
            0
        } else {
            get(a, usize::from(s) & (w - 1))
        }
    })
}

/// SHUFPS — Packed Interleave Shuffle of Single-Precision Values: dwords
/// 0 and 1 from the destination, 2 and 3 from the source.
fn shufps(a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    build::<u32>(4, |i| get(if i < 2 { a } else { b }, sel2(imm, i)))
}

/// SHUFPD — Packed Interleave Shuffle of Double-Precision Values
fn shufpd(a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    build::<u64>(2, |i| {
        get(if i == 0 { a } else { b }, usize::from(imm >> i & 1))
    })
}

/// PALIGNR — Packed Align Right: the destination:source concatenation
/// (2w bytes) shifted right by imm8 bytes, its low `w` bytes kept (zero
/// once the shift passes the whole concatenation).
fn palignr(a: u128, b: u128, w: usize, imm: u8) -> u128 {
    let n = usize::from(imm);
    build::<u8>(w, |i| match i + n {
        j if j < w => get(b, j),
        j if j < 2 * w => get(a, j - w),
        _ => 0,
    })
}

/// MOVSLDUP — Replicate Single FP Values (even dwords)
fn movsldup(_a: u128, b: u128, _w: usize) -> u128 {
    build::<u32>(4, |i| get(b, i & !1))
}

/// MOVSHDUP — Replicate Single FP Values (odd dwords)
fn movshdup(_a: u128, b: u128, _w: usize) -> u128 {
    build::<u32>(4, |i| get(b, i | 1))
}

/// MOVDDUP — Replicate Double FP Values (the low quadword twice)
fn movddup(_a: u128, b: u128, _w: usize) -> u128 {
    let q = trunc(b, 8);
    q | q << 64
}

pub(super) fn register(t: &mut TableBuilder) {
    forms!(t, packed_imm(pshufw), [Pshufw_mm_mmm64_imm8]);
    forms!(t, packed_imm(pshufd), [Pshufd_xmm_xmmm128_imm8]);
    forms!(t, packed_imm(pshuflw), [Pshuflw_xmm_xmmm128_imm8]);
    forms!(t, packed_imm(pshufhw), [Pshufhw_xmm_xmmm128_imm8]);
    forms!(t, packed(pshufb), [Pshufb_mm_mmm64, Pshufb_xmm_xmmm128]);
    forms!(t, packed_imm(shufps), [Shufps_xmm_xmmm128_imm8]);
    forms!(t, packed_imm(shufpd), [Shufpd_xmm_xmmm128_imm8]);
    forms!(
        t,
        packed_imm(palignr),
        [Palignr_mm_mmm64_imm8, Palignr_xmm_xmmm128_imm8]
    );
    forms!(t, packed(movsldup), [Movsldup_xmm_xmmm128]);
    forms!(t, packed(movshdup), [Movshdup_xmm_xmmm128]);
    forms!(t, packed(movddup), [Movddup_xmm_xmmm64]);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ops::simd::host::{check_both, check_imm, check_xmm};

    #[test]
    fn kernels_match_the_host() {
        check_both!(pshufb, "pshufb");
        check_xmm!(movsldup, "movsldup");
        check_xmm!(movshdup, "movshdup");
        check_xmm!(movddup, "movddup");
        check_imm!(pshufw, "pshufw", mm);
        check_imm!(pshufd, "pshufd", xmm);
        check_imm!(pshuflw, "pshuflw", xmm);
        check_imm!(pshufhw, "pshufhw", xmm);
        check_imm!(shufps, "shufps", xmm);
        check_imm!(shufpd, "shufpd", xmm);
        check_imm!(palignr, "palignr", xmm);
        check_imm!(palignr, "palignr", mm);
    }
}
