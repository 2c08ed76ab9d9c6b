//! Integer multiplies, multiply-adds and sums of absolute differences:
//! PMULLW, PMULHW, PMULHUW, PMULLD, PMULUDQ, PMULDQ, PMADDWD, PMADDUBSW,
//! PMULHRSW, PSADBW, MPSADBW, PHMINPOSUW.

use super::lanes::{build, count, get, map2};
use super::operand::forms;
use crate::exec::table::TableBuilder;

/// PMULLW — Multiply Packed Signed Integers and Store Low Result
fn pmullw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u16::wrapping_mul)
}

/// PMULHW — Multiply Packed Signed Integers and Store High Result
fn pmulhw(a: u128, b: u128, w: usize) -> u128 {
    map2::<i16>(a, b, w, |a, b| ((i32::from(a) * i32::from(b)) >> 16) as i16)
}

/// PMULHUW — Multiply Packed Unsigned Integers and Store High Result
fn pmulhuw(a: u128, b: u128, w: usize) -> u128 {
    map2::<u16>(a, b, w, |a, b| ((u32::from(a) * u32::from(b)) >> 16) as u16)
}

/// PMULLD — Multiply Packed Signed Dword Integers and Store Low Result
fn pmulld(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u32::wrapping_mul)
}

/// PMULUDQ — Multiply Packed Unsigned Doubleword Integers (the low dword
/// of each quadword, to a quadword product)
fn pmuludq(a: u128, b: u128, w: usize) -> u128 {
    map2::<u64>(a, b, w, |a, b| (a & 0xffff_ffff) * (b & 0xffff_ffff))
}

/// PMULDQ — Multiply Packed Doubleword Integers (signed, as PMULUDQ)
fn pmuldq(a: u128, b: u128, w: usize) -> u128 {
    map2::<i64>(a, b, w, |a, b| i64::from(a as i32) * i64::from(b as i32))
}

/// PMADDWD — Multiply and Add Packed Integers: each dword is the sum of
/// the two signed word products below it (wrapping: only 0x8000 * 0x8000
/// twice overflows, to 0x80000000).
fn pmaddwd(a: u128, b: u128, w: usize) -> u128 {
    map2::<u32>(a, b, w, |a, b| {
        let p = |s: u32| i32::from((a >> s) as i16) * i32::from((b >> s) as i16);
        p(0).wrapping_add(p(16)) as u32
    })
}

/// PMADDUBSW — Multiply and Add Packed Signed and Unsigned Bytes: the
/// destination's bytes are unsigned, the source's signed; each word is the
/// signed-saturated sum of two products.
fn pmaddubsw(a: u128, b: u128, w: usize) -> u128 {
    map2::<u16>(a, b, w, |a, b| {
        let p = |s: u32| i32::from((a >> s) as u8) * i32::from((b >> s) as i8);
        (p(0) + p(8)).clamp(i16::MIN.into(), i16::MAX.into()) as u16
    })
}

/// PMULHRSW — Packed Multiply High with Round and Scale: bits 30..=15 of
/// the product, rounded.
fn pmulhrsw(a: u128, b: u128, w: usize) -> u128 {
    map2::<i16>(a, b, w, |a, b| {
        ((((i32::from(a) * i32::from(b)) >> 14) + 1) >> 1) as i16
    })
}

/// PSADBW — Compute Sum of Absolute Differences: per quadword, the sum of
/// the eight byte differences in its low word, the rest zero.
fn psadbw(a: u128, b: u128, w: usize) -> u128 {
    map2::<u64>(a, b, w, |a, b| {
        (0..8)
            .map(|i| u64::from(((a >> (8 * i)) as u8).abs_diff((b >> (8 * i)) as u8)))
            .sum()
    })
}

/// MPSADBW — Compute Multiple Packed Sums of Absolute Difference: eight
/// sums of four byte differences between consecutive 4-byte windows of
/// the destination (from byte 4 * `imm8[2]`) and the source's 4-byte block
/// `imm8[1:0]`.
fn mpsadbw(a: u128, b: u128, _w: usize, imm: u8) -> u128 {
    let a_off = usize::from(imm >> 2 & 1) * 4;
    let b_off = usize::from(imm & 3) * 4;
    build::<u16>(8, |i| {
        (0..4)
            .map(|k| {
                let x: u8 = get(a, a_off + i + k);
                let y: u8 = get(b, b_off + k);
                u16::from(x.abs_diff(y))
            })
            .sum()
    })
}

/// PHMINPOSUW — Packed Horizontal Word Minimum: the smallest unsigned word
/// of the source in word 0, its index (the lowest on ties) in bits
/// 16..=18, zeros above.
fn phminposuw(_a: u128, b: u128, _w: usize) -> u128 {
    let (idx, min) = (0..count::<u16>(16))
        .map(|i| (i, get::<u16>(b, i)))
        .min_by_key(|&(i, v)| (v, i))
        .unwrap_or((0, 0));
    u128::from(min) | (idx as u128) << 16
}

pub(super) fn register(t: &mut TableBuilder) {
    forms!(t, packed(pmullw), [Pmullw_mm_mmm64, Pmullw_xmm_xmmm128]);
    forms!(t, packed(pmulhw), [Pmulhw_mm_mmm64, Pmulhw_xmm_xmmm128]);
    forms!(t, packed(pmulhuw), [Pmulhuw_mm_mmm64, Pmulhuw_xmm_xmmm128]);
    forms!(t, packed(pmulld), [Pmulld_xmm_xmmm128]);
    forms!(t, packed(pmuludq), [Pmuludq_mm_mmm64, Pmuludq_xmm_xmmm128]);
    forms!(t, packed(pmuldq), [Pmuldq_xmm_xmmm128]);
    forms!(t, packed(pmaddwd), [Pmaddwd_mm_mmm64, Pmaddwd_xmm_xmmm128]);
    forms!(
        t,
        packed(pmaddubsw),
        [Pmaddubsw_mm_mmm64, Pmaddubsw_xmm_xmmm128]
    );
    forms!(
        t,
        packed(pmulhrsw),
        [Pmulhrsw_mm_mmm64, Pmulhrsw_xmm_xmmm128]
    );
    forms!(t, packed(psadbw), [Psadbw_mm_mmm64, Psadbw_xmm_xmmm128]);
    forms!(t, packed_imm(mpsadbw), [Mpsadbw_xmm_xmmm128_imm8]);
    forms!(t, packed(phminposuw), [Phminposuw_xmm_xmmm128]);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ops::simd::host::{check_both, check_imm, check_xmm};

    #[test]
    fn kernels_match_the_host() {
        check_both!(pmullw, "pmullw");
        check_both!(pmulhw, "pmulhw");
        check_both!(pmulhuw, "pmulhuw");
        check_xmm!(pmulld, "pmulld");
        check_both!(pmuludq, "pmuludq");
        check_xmm!(pmuldq, "pmuldq");
        check_both!(pmaddwd, "pmaddwd");
        check_both!(pmaddubsw, "pmaddubsw");
        check_both!(pmulhrsw, "pmulhrsw");
        check_both!(psadbw, "psadbw");
        check_xmm!(phminposuw, "phminposuw");
        check_imm!(mpsadbw, "mpsadbw", xmm);
    }

    #[test]
    fn phminposuw_takes_the_lowest_index_on_ties() {
        let v = 0x0005_0003_0007_0003_0009_0009_0009_0009u128;
        assert_eq!(phminposuw(0, v, 16), 0x0004_0003);
    }
}
