//! Packs with saturation, unpacks (interleaves) and sign/zero extension:
//! PACKSSWB, PACKSSDW, PACKUSWB, PACKUSDW, PUNPCKLBW..PUNPCKHQDQ,
//! UNPCKLPS/UNPCKHPS/UNPCKLPD/UNPCKHPD (the dword and quadword interleaves
//! again), PMOVSX* and PMOVZX*.

use super::lanes::{build, count, get, Lane};
use super::operand::forms;
use crate::exec::table::TableBuilder;

/// The packs: the destination's lanes narrowed by `sat`, then the
/// source's.
#[inline(always)]
fn pack<W: Lane, N: Lane>(a: u128, b: u128, w: usize, sat: impl Fn(W) -> N) -> u128 {
    let n = count::<W>(w);
    build::<N>(2 * n, |i| {
        sat(if i < n { get(a, i) } else { get(b, i - n) })
    })
}

/// PACKSSWB — Pack with Signed Saturation (words to bytes)
fn packsswb(a: u128, b: u128, w: usize) -> u128 {
    pack::<i16, i8>(a, b, w, |v| v.clamp(i8::MIN.into(), i8::MAX.into()) as i8)
}

/// PACKSSDW — Pack with Signed Saturation (dwords to words)
fn packssdw(a: u128, b: u128, w: usize) -> u128 {
    pack::<i32, i16>(a, b, w, |v| {
        v.clamp(i16::MIN.into(), i16::MAX.into()) as i16
    })
}

/// PACKUSWB — Pack with Unsigned Saturation (signed words to bytes)
fn packuswb(a: u128, b: u128, w: usize) -> u128 {
    pack::<i16, u8>(a, b, w, |v| v.clamp(0, u8::MAX.into()) as u8)
}

/// PACKUSDW — Pack with Unsigned Saturation (signed dwords to words)
fn packusdw(a: u128, b: u128, w: usize) -> u128 {
    pack::<i32, u16>(a, b, w, |v| v.clamp(0, u16::MAX.into()) as u16)
}

/// The interleaves of the low (`high` false) or high halves: destination
/// lane, source lane, next destination lane, ...
#[inline(always)]
fn unpack<T: Lane>(a: u128, b: u128, w: usize, high: bool) -> u128 {
    let n = count::<T>(w);
    let base = if high { n / 2 } else { 0 };
    build::<T>(n, |i| get(if i % 2 == 0 { a } else { b }, base + i / 2))
}

/// PUNPCKLBW/WD/DQ, PUNPCKLQDQ, UNPCKLPS, UNPCKLPD — Unpack Low Data
fn punpcklbw(a: u128, b: u128, w: usize) -> u128 {
    unpack::<u8>(a, b, w, false)
}
fn punpcklwd(a: u128, b: u128, w: usize) -> u128 {
    unpack::<u16>(a, b, w, false)
}
fn punpckldq(a: u128, b: u128, w: usize) -> u128 {
    unpack::<u32>(a, b, w, false)
}
fn punpcklqdq(a: u128, b: u128, w: usize) -> u128 {
    unpack::<u64>(a, b, w, false)
}

/// PUNPCKHBW/WD/DQ, PUNPCKHQDQ, UNPCKHPS, UNPCKHPD — Unpack High Data
fn punpckhbw(a: u128, b: u128, w: usize) -> u128 {
    unpack::<u8>(a, b, w, true)
}
fn punpckhwd(a: u128, b: u128, w: usize) -> u128 {
    unpack::<u16>(a, b, w, true)
}
fn punpckhdq(a: u128, b: u128, w: usize) -> u128 {
    unpack::<u32>(a, b, w, true)
}
fn punpckhqdq(a: u128, b: u128, w: usize) -> u128 {
    unpack::<u64>(a, b, w, true)
}

/// PMOVSX/PMOVZX: the low lanes of the source, `S` each, extended to fill
/// the destination with `D` lanes (sign or zero extension as `S` is
/// signed or not).
#[inline(always)]
fn extend<S: Lane + Into<i64>, D: Lane>(b: u128) -> u128 {
    build::<D>(count::<D>(16), |i| {
        D::from_bits(get::<S>(b, i).into() as u128)
    })
}

/// PMOVSXBW/BD/BQ/WD/WQ/DQ — Packed Move with Sign Extend
fn pmovsxbw(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<i8, u16>(b)
}
fn pmovsxbd(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<i8, u32>(b)
}
fn pmovsxbq(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<i8, u64>(b)
}
fn pmovsxwd(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<i16, u32>(b)
}
fn pmovsxwq(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<i16, u64>(b)
}
fn pmovsxdq(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<i32, u64>(b)
}

/// PMOVZXBW/BD/BQ/WD/WQ/DQ — Packed Move with Zero Extend
fn pmovzxbw(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<u8, u16>(b)
}
fn pmovzxbd(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<u8, u32>(b)
}
fn pmovzxbq(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<u8, u64>(b)
}
fn pmovzxwd(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<u16, u32>(b)
}
fn pmovzxwq(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<u16, u64>(b)
}
fn pmovzxdq(_a: u128, b: u128, _w: usize) -> u128 {
    extend::<u32, u64>(b)
}

pub(super) fn register(t: &mut TableBuilder) {
    forms!(
        t,
        packed(packsswb),
        [Packsswb_mm_mmm64, Packsswb_xmm_xmmm128]
    );
    forms!(
        t,
        packed(packssdw),
        [Packssdw_mm_mmm64, Packssdw_xmm_xmmm128]
    );
    forms!(
        t,
        packed(packuswb),
        [Packuswb_mm_mmm64, Packuswb_xmm_xmmm128]
    );
    forms!(t, packed(packusdw), [Packusdw_xmm_xmmm128]);
    forms!(
        t,
        packed(punpcklbw),
        [Punpcklbw_mm_mmm32, Punpcklbw_xmm_xmmm128]
    );
    forms!(
        t,
        packed(punpcklwd),
        [Punpcklwd_mm_mmm32, Punpcklwd_xmm_xmmm128]
    );
    forms!(
        t,
        packed(punpckldq),
        [
            Punpckldq_mm_mmm32,
            Punpckldq_xmm_xmmm128,
            Unpcklps_xmm_xmmm128
        ]
    );
    forms!(
        t,
        packed(punpcklqdq),
        [Punpcklqdq_xmm_xmmm128, Unpcklpd_xmm_xmmm128]
    );
    forms!(
        t,
        packed(punpckhbw),
        [Punpckhbw_mm_mmm64, Punpckhbw_xmm_xmmm128]
    );
    forms!(
        t,
        packed(punpckhwd),
        [Punpckhwd_mm_mmm64, Punpckhwd_xmm_xmmm128]
    );
    forms!(
        t,
        packed(punpckhdq),
        [
            Punpckhdq_mm_mmm64,
            Punpckhdq_xmm_xmmm128,
            Unpckhps_xmm_xmmm128
        ]
    );
    forms!(
        t,
        packed(punpckhqdq),
        [Punpckhqdq_xmm_xmmm128, Unpckhpd_xmm_xmmm128]
    );
    forms!(t, packed(pmovsxbw), [Pmovsxbw_xmm_xmmm64]);
    forms!(t, packed(pmovsxbd), [Pmovsxbd_xmm_xmmm32]);
    forms!(t, packed(pmovsxbq), [Pmovsxbq_xmm_xmmm16]);
    forms!(t, packed(pmovsxwd), [Pmovsxwd_xmm_xmmm64]);
    forms!(t, packed(pmovsxwq), [Pmovsxwq_xmm_xmmm32]);
    forms!(t, packed(pmovsxdq), [Pmovsxdq_xmm_xmmm64]);
    forms!(t, packed(pmovzxbw), [Pmovzxbw_xmm_xmmm64]);
    forms!(t, packed(pmovzxbd), [Pmovzxbd_xmm_xmmm32]);
    forms!(t, packed(pmovzxbq), [Pmovzxbq_xmm_xmmm16]);
    forms!(t, packed(pmovzxwd), [Pmovzxwd_xmm_xmmm64]);
    forms!(t, packed(pmovzxwq), [Pmovzxwq_xmm_xmmm32]);
    forms!(t, packed(pmovzxdq), [Pmovzxdq_xmm_xmmm64]);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ops::simd::host::{check_both, check_xmm};

    #[test]
    fn kernels_match_the_host() {
        check_both!(packsswb, "packsswb");
        check_both!(packssdw, "packssdw");
        check_both!(packuswb, "packuswb");
        check_xmm!(packusdw, "packusdw");
        check_both!(punpcklbw, "punpcklbw");
        check_both!(punpcklwd, "punpcklwd");
        check_both!(punpckldq, "punpckldq");
        check_xmm!(punpcklqdq, "punpcklqdq");
        check_xmm!(punpckldq, "unpcklps");
        check_xmm!(punpcklqdq, "unpcklpd");
        check_both!(punpckhbw, "punpckhbw");
        check_both!(punpckhwd, "punpckhwd");
        check_both!(punpckhdq, "punpckhdq");
        check_xmm!(punpckhqdq, "punpckhqdq");
        check_xmm!(punpckhdq, "unpckhps");
        check_xmm!(punpckhqdq, "unpckhpd");
        check_xmm!(pmovsxbw, "pmovsxbw");
        check_xmm!(pmovsxbd, "pmovsxbd");
        check_xmm!(pmovsxbq, "pmovsxbq");
        check_xmm!(pmovsxwd, "pmovsxwd");
        check_xmm!(pmovsxwq, "pmovsxwq");
        check_xmm!(pmovsxdq, "pmovsxdq");
        check_xmm!(pmovzxbw, "pmovzxbw");
        check_xmm!(pmovzxbd, "pmovzxbd");
        check_xmm!(pmovzxbq, "pmovzxbq");
        check_xmm!(pmovzxwd, "pmovzxwd");
        check_xmm!(pmovzxwq, "pmovzxwq");
        check_xmm!(pmovzxdq, "pmovzxdq");
    }
}
