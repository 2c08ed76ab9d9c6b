//! FSIN, FCOS, FSINCOS, FPTAN: the argument reduced modulo π/2 exactly
//! enough (π/2 to 448 bits against arguments below 2^63, so the reduced
//! argument keeps more than 128 significant bits however close the
//! argument comes to a multiple of π/2), then Taylor series in 128-bit
//! arithmetic on [0, π/4].

use super::super::big::Big;
use super::super::env::Fp;
use super::super::format::{Float, Val, F80};

/// Limbs of a 512-bit fixed-point number (least significant first).
type Limbs = [u64; 8];

/// floor(π/2 · 2^448).
const PIO2: Limbs = [
    0x6056_14db_e4be_286e,
    0xdf2a_3367_9a74_8636,
    0xa294_10f3_1c68_09bb,
    0x0417_7d4c_7627_3644,
    0x5204_9c11_14cf_98e8,
    0x898c_c517_01b8_39a2,
    0x921f_b544_42d1_8469,
    0x0000_0000_0000_0001,
];
/// Fraction bits of [`PIO2`] and of the reduced argument.
const FRAC: u32 = 448;
/// 2/π to 128 bits (for the quotient's estimate).
const TWO_OVER_PI: (u128, i32) = (0xa2f9_836e_4e44_1529_fc27_57d1_f534_ddc0, -1);

fn shl_into(v: u64, shift: u32) -> Limbs {
    let mut out = [0u64; 8];
    let (w, b) = ((shift / 64) as usize, shift % 64);
    out[w] = v << b;
    if b > 0 && w + 1 < 8 {
        out[w + 1] = v >> (64 - b);
    }
    out
}

fn mul_small(a: &Limbs, k: u64) -> Limbs {
    let mut out = [0u64; 8];
    let mut carry = 0u128;
    for i in 0..8 {
        let t = u128::from(a[i]) * u128::from(k) + carry;
        out[i] = t as u64;
        carry = t >> 64;
    }
    out
}

/// a - b (two's complement, wrapping) and whether it borrowed.
fn sub(a: &Limbs, b: &Limbs) -> (Limbs, bool) {
    let mut out = [0u64; 8];
    let mut borrow = false;
    for i in 0..8 {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        out[i] = d2;
        borrow = b1 || b2;
    }
    (out, borrow)
}

fn add(a: &Limbs, b: &Limbs) -> Limbs {
    let mut out = [0u64; 8];
    let mut carry = false;
    for i in 0..8 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        out[i] = s2;
        carry = c1 || c2;
    }
    out
}

fn ge(a: &Limbs, b: &Limbs) -> bool {
    !sub(a, b).1
}

/// A non-negative fixed-point value with [`FRAC`] fraction bits as a
/// [`Big`] (its top 128 bits, the rest as a sticky bit).
fn to_big(a: &Limbs) -> Big {
    let Some(top) = (0..8).rev().find(|&i| a[i] != 0) else {
        return Big::ZERO;
    };
    let msb = 64 * top as u32 + 63 - a[top].leading_zeros();
    // The 128 bits below and including the most significant one.
    let mut sig = 0u128;
    let mut sticky = false;
    for bit in 0..=msb {
        let set = a[(bit / 64) as usize] >> (bit % 64) & 1 != 0;
        if bit + 128 > msb {
            sig |= u128::from(set) << (bit + 127 - msb);
        } else {
            sticky |= set;
        }
    }
    Big::new(false, sig | u128::from(sticky), msb as i32 - FRAC as i32)
}

/// `|x| = k·π/2 + r` with `r` in [0, π/2), for `|x| < 2^63` given as
/// `sig · 2^(exp - 63)`: the quadrant `k mod 4`, and `r` or, when it is
/// above π/4, `π/2 - r` (computed in fixed point, where it is exact) with
/// `true`.
fn reduce(sig: u64, exp: i32) -> (u32, Big, bool) {
    let x = Big::from_parts(false, sig, exp);
    if exp < -1 {
        // Below 1/2 < π/4.
        return (0, x, false);
    }
    let xf = shl_into(sig, (exp - 63 + FRAC as i32) as u32);
    // The quotient from 128-bit arithmetic is right or one off.
    let est = x.mul(Big::constant(TWO_OVER_PI));
    let mut k = if est.exp < 0 {
        0
    } else {
        (est.sig >> (127 - est.exp)) as u64
    };
    let (mut r, mut neg) = sub(&xf, &mul_small(&PIO2, k));
    while neg {
        r = add(&r, &PIO2);
        k -= 1;
        neg = r[7] >> 63 != 0;
    }
    while ge(&r, &PIO2) {
        r = sub(&r, &PIO2).0;
        k += 1;
    }
    let q = (k & 3) as u32;
    // Above π/4 when 2r > π/2.
    if ge(&add(&r, &r), &PIO2) {
        (q, to_big(&sub(&PIO2, &r).0), true)
    } else {
        (q, to_big(&r), false)
    }
}

/// Below this exponent the series' first correction is beyond 128 bits:
/// sin t and tan t are t just below and just above, cos t just below 1.
const TINY: i32 = -40;

/// sin t and cos t for t in [0, π/4].
fn sin_cos_small(t: Big) -> (Big, Big) {
    if t.is_zero() {
        return (Big::ZERO, Big::ONE);
    }
    if t.exp < TINY {
        return (t.nudge(false), Big::ONE.nudge(false));
    }
    let t2 = t.mul(t);
    let (mut s, mut term) = (t, t);
    let mut n = 1u32;
    while term.exp > s.exp - 132 {
        term = t2.mul(term).div_small((2 * n) * (2 * n + 1)).neg();
        s = s.add(term);
        n += 1;
    }
    let (mut c, mut term) = (Big::ONE, Big::ONE);
    let mut n = 1u32;
    while term.exp > -132 {
        term = t2.mul(term).div_small((2 * n - 1) * (2 * n)).neg();
        c = c.add(term);
        n += 1;
    }
    (s, c)
}

/// sin |x| and cos |x|, from the reduced argument: the pair for r (or
/// for π/2 - r, with the roles swapped) rotated by the quadrant.
fn sin_cos_abs(sig: u64, exp: i32) -> (Big, Big) {
    let (q, r, swapped) = reduce(sig, exp);
    let (s, c) = sin_cos_small(r);
    let (s, c) = if swapped { (c, s) } else { (s, c) };
    match q {
        0 => (s, c),
        1 => (c, s.neg()),
        2 => (s.neg(), c.neg()),
        _ => (c.neg(), s),
    }
}

/// Which function of the argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Trig {
    Sin,
    Cos,
    Tan,
}

impl Fp {
    /// FSIN, FCOS and FPTAN's tangent of `a`; `None` when `|a| >= 2^63`
    /// (the processor leaves the operand unchanged and sets C2).
    pub(super) fn trig(&mut self, a: F80, f: Trig) -> Option<F80> {
        let v = self.operand(a);
        if let Some(n) = self.nan1::<F80>(v) {
            return Some(n);
        }
        match v {
            Val::Inf { .. } => Some(self.invalid()),
            Val::Zero { sign } => Some(match f {
                Trig::Cos => F80::new(0x3fff, 1 << 63),
                _ => F80::zero(sign),
            }),
            Val::Num { exp, .. } if exp >= 63 => None,
            Val::Num { sign, exp, sig, .. } => {
                self.check_denormal(&[v]);
                let r = match f {
                    Trig::Tan if exp < TINY => Big::from_parts(false, sig, exp).nudge(true),
                    _ => {
                        let (s, c) = sin_cos_abs(sig, exp);
                        match f {
                            Trig::Sin => s,
                            Trig::Cos => c,
                            Trig::Tan => s.div(c),
                        }
                    }
                };
                let r = if sign && f != Trig::Cos { r.neg() } else { r };
                Some(self.round_big(r))
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_near_multiples_of_half_pi() {
        // π/2 to 64 bits, truncated: just below π/2, so quadrant 0 with
        // π/2 - r tiny (about 0.77 · 2^-63).
        let (q, r, swapped) = reduce(0xc90f_daa2_2168_c234, 0);
        assert_eq!((q, swapped), (0, true));
        let want = 0.76865_f64 * 2f64.powi(-63);
        assert!((r.to_f64() / want - 1.0).abs() < 1e-3, "{}", r.to_f64());
        // Rounded up: just above, quadrant 1, r about 0.23 · 2^-63.
        let (q, r, swapped) = reduce(0xc90f_daa2_2168_c235, 0);
        assert_eq!((q, swapped), (1, false));
        let want = (1.0 - 0.76865_f64) * 2f64.powi(-63);
        assert!((r.to_f64() / want - 1.0).abs() < 1e-3, "{}", r.to_f64());
        // 3 = π/2 + 1.429..: quadrant 1, π/2 - r = 0.1415...
        let (q, r, swapped) = reduce(0xc000_0000_0000_0000, 1);
        assert_eq!((q, swapped), (1, true));
        assert!((r.to_f64() - (std::f64::consts::PI - 3.0)).abs() < 1e-15);
    }
}
