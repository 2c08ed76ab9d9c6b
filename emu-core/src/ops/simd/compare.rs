//! Integer compares to lane masks: PCMPEQB/W/D/Q and PCMPGTB/W/D/Q
//! (signed greater-than).

use super::lanes::{all_ones, map2};
use super::operand::forms;
use crate::exec::table::TableBuilder;

/// PCMPEQB/W/D/Q — Compare Packed Data for Equal
fn pcmpeqb(a: u128, b: u128, w: usize) -> u128 {
    map2::<u8>(a, b, w, |a, b| all_ones(a == b))
}
fn pcmpeqw(a: u128, b: u128, w: usize) -> u128 {
    map2::<u16>(a, b, w, |a, b| all_ones(a == b))
}
fn pcmpeqd(a: u128, b: u128, w: usize) -> u128 {
    map2::<u32>(a, b, w, |a, b| all_ones(a == b))
}
fn pcmpeqq(a: u128, b: u128, w: usize) -> u128 {
    map2::<u64>(a, b, w, |a, b| all_ones(a == b))
}

/// PCMPGTB/W/D/Q — Compare Packed Signed Integers for Greater Than
fn pcmpgtb(a: u128, b: u128, w: usize) -> u128 {
    map2::<i8>(a, b, w, |a, b| all_ones(a > b))
}
fn pcmpgtw(a: u128, b: u128, w: usize) -> u128 {
    map2::<i16>(a, b, w, |a, b| all_ones(a > b))
}
fn pcmpgtd(a: u128, b: u128, w: usize) -> u128 {
    map2::<i32>(a, b, w, |a, b| all_ones(a > b))
}
fn pcmpgtq(a: u128, b: u128, w: usize) -> u128 {
    map2::<i64>(a, b, w, |a, b| all_ones(a > b))
}

pub(super) fn register(t: &mut TableBuilder) {
    forms!(t, packed(pcmpeqb), [Pcmpeqb_mm_mmm64, Pcmpeqb_xmm_xmmm128]);
    forms!(t, packed(pcmpeqw), [Pcmpeqw_mm_mmm64, Pcmpeqw_xmm_xmmm128]);
    forms!(t, packed(pcmpeqd), [Pcmpeqd_mm_mmm64, Pcmpeqd_xmm_xmmm128]);
    forms!(t, packed(pcmpeqq), [Pcmpeqq_xmm_xmmm128]);
    forms!(t, packed(pcmpgtb), [Pcmpgtb_mm_mmm64, Pcmpgtb_xmm_xmmm128]);
    forms!(t, packed(pcmpgtw), [Pcmpgtw_mm_mmm64, Pcmpgtw_xmm_xmmm128]);
    forms!(t, packed(pcmpgtd), [Pcmpgtd_mm_mmm64, Pcmpgtd_xmm_xmmm128]);
    forms!(t, packed(pcmpgtq), [Pcmpgtq_xmm_xmmm128]);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ops::simd::host::{check_both, check_xmm};

    #[test]
    fn kernels_match_the_host() {
        check_both!(pcmpeqb, "pcmpeqb");
        check_both!(pcmpeqw, "pcmpeqw");
        check_both!(pcmpeqd, "pcmpeqd");
        check_xmm!(pcmpeqq, "pcmpeqq");
        check_both!(pcmpgtb, "pcmpgtb");
        check_both!(pcmpgtw, "pcmpgtw");
        check_both!(pcmpgtd, "pcmpgtd");
        check_xmm!(pcmpgtq, "pcmpgtq");
    }
}
