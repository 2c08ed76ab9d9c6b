//! Integer add and subtract, with wrap-around and with signed or unsigned
//! saturation; average, minimum, maximum, absolute value, sign, and the
//! SSSE3 horizontal adds and subtracts. MM and XMM forms share each
//! kernel (`w` = 8 or 16 bytes).

use super::lanes::{build, count, get, map1, map2, Lane};
use super::operand::forms;
use crate::exec::table::TableBuilder;

/// PADDB/W/D/Q — Add Packed Integers
fn paddb(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u8::wrapping_add)
}
fn paddw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u16::wrapping_add)
}
fn paddd(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u32::wrapping_add)
}
fn paddq(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u64::wrapping_add)
}

/// PADDSB/W — Add Packed Signed Integers with Signed Saturation
fn paddsb(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i8::saturating_add)
}
fn paddsw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i16::saturating_add)
}

/// PADDUSB/W — Add Packed Unsigned Integers with Unsigned Saturation
fn paddusb(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u8::saturating_add)
}
fn paddusw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u16::saturating_add)
}

/// PSUBB/W/D/Q — Subtract Packed Integers
fn psubb(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u8::wrapping_sub)
}
fn psubw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u16::wrapping_sub)
}
fn psubd(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u32::wrapping_sub)
}
fn psubq(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u64::wrapping_sub)
}

/// PSUBSB/W — Subtract Packed Signed Integers with Signed Saturation
fn psubsb(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i8::saturating_sub)
}
fn psubsw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i16::saturating_sub)
}

/// PSUBUSB/W — Subtract Packed Unsigned Integers with Unsigned Saturation
fn psubusb(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u8::saturating_sub)
}
fn psubusw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u16::saturating_sub)
}

/// PAVGB/W — Average Packed Integers (rounded up: `(a + b + 1) >> 1`)
fn pavgb(a: u128, b: u128, w: usize) -> u128 {
    map2::<u8>(a, b, w, |a, b| {
        ((u16::from(a) + u16::from(b) + 1) >> 1) as u8
    })
}
fn pavgw(a: u128, b: u128, w: usize) -> u128 {
    map2::<u16>(a, b, w, |a, b| {
        ((u32::from(a) + u32::from(b) + 1) >> 1) as u16
    })
}

/// PMINUB/UW/UD, PMINSB/SW/SD — Minimum of Packed Integers
fn pminub(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u8::min)
}
fn pminuw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u16::min)
}
fn pminud(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u32::min)
}
fn pminsb(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i8::min)
}
fn pminsw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i16::min)
}
fn pminsd(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i32::min)
}

/// PMAXUB/UW/UD, PMAXSB/SW/SD — Maximum of Packed Integers
fn pmaxub(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u8::max)
}
fn pmaxuw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u16::max)
}
fn pmaxud(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, u32::max)
}
fn pmaxsb(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i8::max)
}
fn pmaxsw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i16::max)
}
fn pmaxsd(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, i32::max)
}

/// PABSB/W/D — Packed Absolute Value (of the source; the most negative
/// value stays as it is, read as unsigned it is its own absolute value)
fn pabsb(_a: u128, b: u128, w: usize) -> u128 {
    map1(b, w, i8::wrapping_abs)
}
fn pabsw(_a: u128, b: u128, w: usize) -> u128 {
    map1(b, w, i16::wrapping_abs)
}
fn pabsd(_a: u128, b: u128, w: usize) -> u128 {
    map1(b, w, i32::wrapping_abs)
}

/// The PSIGN rule for one lane: negate, zero or keep `a` as `b` is
/// negative, zero or positive.
macro_rules! sign_of {
    ($t:ty) => {
        |a: $t, b: $t| match b.signum() {
            -1 => a.wrapping_neg(),
            0 => 0,
            _ => a,
        }
    };
}

/// PSIGNB/W/D — Packed SIGN
fn psignb(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, sign_of!(i8))
}
fn psignw(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, sign_of!(i16))
}
fn psignd(a: u128, b: u128, w: usize) -> u128 {
    map2(a, b, w, sign_of!(i32))
}

/// The horizontal operations: adjacent pairs of the destination, then of
/// the source, combined by `f` (`f(even, odd)`).
#[inline(always)]
fn horizontal<T: Lane>(a: u128, b: u128, w: usize, f: impl Fn(T, T) -> T) -> u128 {
    let half = count::<T>(w) / 2;
    build::<T>(2 * half, |i| {
        let (v, j) = if i < half {
            (a, 2 * i)
        } else {
            (b, 2 * (i - half))
        };
        f(get(v, j), get(v, j + 1))
    })
}

/// PHADDW/D — Packed Horizontal Add
fn phaddw(a: u128, b: u128, w: usize) -> u128 {
    horizontal(a, b, w, u16::wrapping_add)
}
fn phaddd(a: u128, b: u128, w: usize) -> u128 {
    horizontal(a, b, w, u32::wrapping_add)
}

/// PHADDSW — Packed Horizontal Add and Saturate
fn phaddsw(a: u128, b: u128, w: usize) -> u128 {
    horizontal(a, b, w, i16::saturating_add)
}

/// PHSUBW/D — Packed Horizontal Subtract (even lane minus odd lane)
fn phsubw(a: u128, b: u128, w: usize) -> u128 {
    horizontal(a, b, w, u16::wrapping_sub)
}
fn phsubd(a: u128, b: u128, w: usize) -> u128 {
    horizontal(a, b, w, u32::wrapping_sub)
}

/// PHSUBSW — Packed Horizontal Subtract and Saturate
fn phsubsw(a: u128, b: u128, w: usize) -> u128 {
    horizontal(a, b, w, i16::saturating_sub)
}

pub(super) fn register(t: &mut TableBuilder) {
    forms!(t, packed(paddb), [Paddb_mm_mmm64, Paddb_xmm_xmmm128]);
    forms!(t, packed(paddw), [Paddw_mm_mmm64, Paddw_xmm_xmmm128]);
    forms!(t, packed(paddd), [Paddd_mm_mmm64, Paddd_xmm_xmmm128]);
    forms!(t, packed(paddq), [Paddq_mm_mmm64, Paddq_xmm_xmmm128]);
    forms!(t, packed(paddsb), [Paddsb_mm_mmm64, Paddsb_xmm_xmmm128]);
    forms!(t, packed(paddsw), [Paddsw_mm_mmm64, Paddsw_xmm_xmmm128]);
    forms!(t, packed(paddusb), [Paddusb_mm_mmm64, Paddusb_xmm_xmmm128]);
    forms!(t, packed(paddusw), [Paddusw_mm_mmm64, Paddusw_xmm_xmmm128]);
    forms!(t, packed(psubb), [Psubb_mm_mmm64, Psubb_xmm_xmmm128]);
    forms!(t, packed(psubw), [Psubw_mm_mmm64, Psubw_xmm_xmmm128]);
    forms!(t, packed(psubd), [Psubd_mm_mmm64, Psubd_xmm_xmmm128]);
    forms!(t, packed(psubq), [Psubq_mm_mmm64, Psubq_xmm_xmmm128]);
    forms!(t, packed(psubsb), [Psubsb_mm_mmm64, Psubsb_xmm_xmmm128]);
    forms!(t, packed(psubsw), [Psubsw_mm_mmm64, Psubsw_xmm_xmmm128]);
    forms!(t, packed(psubusb), [Psubusb_mm_mmm64, Psubusb_xmm_xmmm128]);
    forms!(t, packed(psubusw), [Psubusw_mm_mmm64, Psubusw_xmm_xmmm128]);
    forms!(t, packed(pavgb), [Pavgb_mm_mmm64, Pavgb_xmm_xmmm128]);
    forms!(t, packed(pavgw), [Pavgw_mm_mmm64, Pavgw_xmm_xmmm128]);
    forms!(t, packed(pminub), [Pminub_mm_mmm64, Pminub_xmm_xmmm128]);
    forms!(t, packed(pminuw), [Pminuw_xmm_xmmm128]);
    forms!(t, packed(pminud), [Pminud_xmm_xmmm128]);
    forms!(t, packed(pminsb), [Pminsb_xmm_xmmm128]);
    forms!(t, packed(pminsw), [Pminsw_mm_mmm64, Pminsw_xmm_xmmm128]);
    forms!(t, packed(pminsd), [Pminsd_xmm_xmmm128]);
    forms!(t, packed(pmaxub), [Pmaxub_mm_mmm64, Pmaxub_xmm_xmmm128]);
    forms!(t, packed(pmaxuw), [Pmaxuw_xmm_xmmm128]);
    forms!(t, packed(pmaxud), [Pmaxud_xmm_xmmm128]);
    forms!(t, packed(pmaxsb), [Pmaxsb_xmm_xmmm128]);
    forms!(t, packed(pmaxsw), [Pmaxsw_mm_mmm64, Pmaxsw_xmm_xmmm128]);
    forms!(t, packed(pmaxsd), [Pmaxsd_xmm_xmmm128]);
    forms!(t, packed(pabsb), [Pabsb_mm_mmm64, Pabsb_xmm_xmmm128]);
    forms!(t, packed(pabsw), [Pabsw_mm_mmm64, Pabsw_xmm_xmmm128]);
    forms!(t, packed(pabsd), [Pabsd_mm_mmm64, Pabsd_xmm_xmmm128]);
    forms!(t, packed(psignb), [Psignb_mm_mmm64, Psignb_xmm_xmmm128]);
    forms!(t, packed(psignw), [Psignw_mm_mmm64, Psignw_xmm_xmmm128]);
    forms!(t, packed(psignd), [Psignd_mm_mmm64, Psignd_xmm_xmmm128]);
    forms!(t, packed(phaddw), [Phaddw_mm_mmm64, Phaddw_xmm_xmmm128]);
    forms!(t, packed(phaddd), [Phaddd_mm_mmm64, Phaddd_xmm_xmmm128]);
    forms!(t, packed(phaddsw), [Phaddsw_mm_mmm64, Phaddsw_xmm_xmmm128]);
    forms!(t, packed(phsubw), [Phsubw_mm_mmm64, Phsubw_xmm_xmmm128]);
    forms!(t, packed(phsubd), [Phsubd_mm_mmm64, Phsubd_xmm_xmmm128]);
    forms!(t, packed(phsubsw), [Phsubsw_mm_mmm64, Phsubsw_xmm_xmmm128]);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ops::simd::host::{check_both, check_xmm};

    #[test]
    fn kernels_match_the_host() {
        check_both!(paddb, "paddb");
        check_both!(paddw, "paddw");
        check_both!(paddd, "paddd");
        check_both!(paddq, "paddq");
        check_both!(paddsb, "paddsb");
        check_both!(paddsw, "paddsw");
        check_both!(paddusb, "paddusb");
        check_both!(paddusw, "paddusw");
        check_both!(psubb, "psubb");
        check_both!(psubw, "psubw");
        check_both!(psubd, "psubd");
        check_both!(psubq, "psubq");
        check_both!(psubsb, "psubsb");
        check_both!(psubsw, "psubsw");
        check_both!(psubusb, "psubusb");
        check_both!(psubusw, "psubusw");
        check_both!(pavgb, "pavgb");
        check_both!(pavgw, "pavgw");
        check_both!(pminub, "pminub");
        check_xmm!(pminuw, "pminuw");
        check_xmm!(pminud, "pminud");
        check_xmm!(pminsb, "pminsb");
        check_both!(pminsw, "pminsw");
        check_xmm!(pminsd, "pminsd");
        check_both!(pmaxub, "pmaxub");
        check_xmm!(pmaxuw, "pmaxuw");
        check_xmm!(pmaxud, "pmaxud");
        check_xmm!(pmaxsb, "pmaxsb");
        check_both!(pmaxsw, "pmaxsw");
        check_xmm!(pmaxsd, "pmaxsd");
        check_both!(pabsb, "pabsb");
        check_both!(pabsw, "pabsw");
        check_both!(pabsd, "pabsd");
        check_both!(psignb, "psignb");
        check_both!(psignw, "psignw");
        check_both!(psignd, "psignd");
        check_both!(phaddw, "phaddw");
        check_both!(phaddd, "phaddd");
        check_both!(phaddsw, "phaddsw");
        check_both!(phsubw, "phsubw");
        check_both!(phsubd, "phsubd");
        check_both!(phsubsw, "phsubsw");
    }
}
