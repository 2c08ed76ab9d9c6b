//! Shifts: PSLLW/D/Q, PSRLW/D/Q, PSRAW/D by a count in a register, in
//! memory or in an imm8 (MM and XMM forms), and the byte shifts PSLLDQ and
//! PSRLDQ. The count is the whole low quadword of the source: a count
//! beyond the lane width clears each lane (the arithmetic shifts fill it
//! with the sign bit instead).

use super::lanes::{map1, Lane};
use super::operand::forms;
use crate::exec::table::TableBuilder;

/// A logical shift of every `T` lane by the count in `b`'s low quadword.
#[inline(always)]
fn logical<T: Lane>(a: u128, b: u128, w: usize, left: bool) -> u128 {
    let c = b as u64;
    let bits = T::BYTES as u64 * 8;
    map1::<T>(a, w, |v| {
        let v = v.bits();
        T::from_bits(match (c >= bits, left) {
            (true, _) => 0,
            (false, true) => v << c,
            (false, false) => v >> c,
        })
    })
}

/// PSLLW/D/Q — Shift Packed Data Left Logical
fn psllw(a: u128, b: u128, w: usize) -> u128 {
    logical::<u16>(a, b, w, true)
}
fn pslld(a: u128, b: u128, w: usize) -> u128 {
    logical::<u32>(a, b, w, true)
}
fn psllq(a: u128, b: u128, w: usize) -> u128 {
    logical::<u64>(a, b, w, true)
}

/// PSRLW/D/Q — Shift Packed Data Right Logical
fn psrlw(a: u128, b: u128, w: usize) -> u128 {
    logical::<u16>(a, b, w, false)
}
fn psrld(a: u128, b: u128, w: usize) -> u128 {
    logical::<u32>(a, b, w, false)
}
fn psrlq(a: u128, b: u128, w: usize) -> u128 {
    logical::<u64>(a, b, w, false)
}

/// PSRAW/D — Shift Packed Data Right Arithmetic (counts past the lane
/// width act as width - 1)
fn psraw(a: u128, b: u128, w: usize) -> u128 {
    let c = (b as u64).min(15) as u32;
    map1::<i16>(a, w, |v| v >> c)
}
fn psrad(a: u128, b: u128, w: usize) -> u128 {
    let c = (b as u64).min(31) as u32;
    map1::<i32>(a, w, |v| v >> c)
}

/// PSLLDQ — Shift Double Quadword Left Logical (by imm8 bytes)
fn pslldq(a: u128, b: u128, _w: usize) -> u128 {
    a.checked_shl(b as u32 * 8).filter(|_| b < 16).unwrap_or(0)
}

/// PSRLDQ — Shift Double Quadword Right Logical (by imm8 bytes)
fn psrldq(a: u128, b: u128, _w: usize) -> u128 {
    a.checked_shr(b as u32 * 8).filter(|_| b < 16).unwrap_or(0)
}

pub(super) fn register(t: &mut TableBuilder) {
    forms!(
        t,
        packed(psllw),
        [
            Psllw_mm_mmm64,
            Psllw_xmm_xmmm128,
            Psllw_mm_imm8,
            Psllw_xmm_imm8
        ]
    );
    forms!(
        t,
        packed(pslld),
        [
            Pslld_mm_mmm64,
            Pslld_xmm_xmmm128,
            Pslld_mm_imm8,
            Pslld_xmm_imm8
        ]
    );
    forms!(
        t,
        packed(psllq),
        [
            Psllq_mm_mmm64,
            Psllq_xmm_xmmm128,
            Psllq_mm_imm8,
            Psllq_xmm_imm8
        ]
    );
    forms!(
        t,
        packed(psrlw),
        [
            Psrlw_mm_mmm64,
            Psrlw_xmm_xmmm128,
            Psrlw_mm_imm8,
            Psrlw_xmm_imm8
        ]
    );
    forms!(
        t,
        packed(psrld),
        [
            Psrld_mm_mmm64,
            Psrld_xmm_xmmm128,
            Psrld_mm_imm8,
            Psrld_xmm_imm8
        ]
    );
    forms!(
        t,
        packed(psrlq),
        [
            Psrlq_mm_mmm64,
            Psrlq_xmm_xmmm128,
            Psrlq_mm_imm8,
            Psrlq_xmm_imm8
        ]
    );
    forms!(
        t,
        packed(psraw),
        [
            Psraw_mm_mmm64,
            Psraw_xmm_xmmm128,
            Psraw_mm_imm8,
            Psraw_xmm_imm8
        ]
    );
    forms!(
        t,
        packed(psrad),
        [
            Psrad_mm_mmm64,
            Psrad_xmm_xmmm128,
            Psrad_mm_imm8,
            Psrad_xmm_imm8
        ]
    );
    forms!(t, packed(pslldq), [Pslldq_xmm_imm8]);
    forms!(t, packed(psrldq), [Psrldq_xmm_imm8]);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ops::simd::host::{check_both, hw_xmm, Hw, Rng};
    use crate::ops::simd::operand::Kernel;

    #[test]
    fn register_counts_match_the_host() {
        // Random counts are mostly huge; the checks below add small ones.
        check_both!(psllw, "psllw");
        check_both!(pslld, "pslld");
        check_both!(psllq, "psllq");
        check_both!(psrlw, "psrlw");
        check_both!(psrld, "psrld");
        check_both!(psrlq, "psrlq");
        check_both!(psraw, "psraw");
        check_both!(psrad, "psrad");
    }

    #[test]
    fn small_counts_match_the_host() {
        if !crate::ops::simd::host::usable() {
            return;
        }
        let mut rng = Rng::new(7);
        let kernels: [(Kernel, Hw); 8] = [
            (psllw, hw_xmm!("psllw")),
            (pslld, hw_xmm!("pslld")),
            (psllq, hw_xmm!("psllq")),
            (psrlw, hw_xmm!("psrlw")),
            (psrld, hw_xmm!("psrld")),
            (psrlq, hw_xmm!("psrlq")),
            (psraw, hw_xmm!("psraw")),
            (psrad, hw_xmm!("psrad")),
        ];
        for (k, hw) in kernels {
            for c in 0..70u128 {
                let a = rng.vector();
                // Bits above the low quadword must not matter.
                let b = c | u128::from(rng.next()) << 64;
                assert_eq!(k(a, b, 16), hw(a, b), "count {c} of {a:#x}");
            }
        }
    }

    #[test]
    fn byte_shifts() {
        let a = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
        assert_eq!(pslldq(a, 1, 16), a << 8);
        assert_eq!(psrldq(a, 15, 16), 0x0f);
        assert_eq!(psrldq(a, 16, 16), 0);
        assert_eq!(pslldq(a, 200, 16), 0);
        assert_eq!(pslldq(a, 0, 16), a);
    }
}
