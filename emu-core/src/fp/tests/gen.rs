//! Random operands for the comparisons with the host: uniformly random
//! encodings would almost never hit the cases that matter, so values are
//! drawn from classes — the special values, denormals, the ends of the
//! normal range, values near integers and integer limits, and second
//! operands related to the first (close exponents for cancellation,
//! exponents that put sums, products and quotients near overflow and
//! underflow).

use crate::fp::format::{Float, Val, INT, QUIET};
use crate::fp::F80;

/// xorshift64*: small, fast, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    pub fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + self.below((hi - lo + 1) as u64) as i32
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bool(&mut self) -> bool {
        self.next() >> 63 != 0
    }

    /// A significand with bit 63 set: random, or with long runs of ones or
    /// zeros (which is where rounding carries and ties live).
    pub fn sig(&mut self) -> u64 {
        let r = self.next();
        let s = match self.below(6) {
            0 => u64::MAX << self.below(64),
            1 => (u64::MAX << self.below(64)) | (1 << self.below(64)),
            2 => r & (u64::MAX << self.below(64)),
            3 => r | ((1u64 << self.below(64)) - 1),
            _ => r,
        };
        s | INT
    }
}

/// `sig * 2^(exp - 63)` packed into `F` (low significand bits truncated,
/// the exponent clamped into the format's range, denormals included).
pub fn num<F: Float>(sign: bool, exp: i32, sig: u64) -> F {
    let fmt = F::FMT;
    let lo = fmt.emin - fmt.p as i32 + 1;
    let exp = exp.clamp(lo, fmt.emax);
    F::pack(Val::Num {
        sign,
        exp,
        sig: sig | INT,
        denormal: false,
    })
}

/// A random value of `F`; `other` (an operand already chosen) makes some
/// values close to it or scaled against it.
pub fn value<F: Float>(rng: &mut Rng, other: Option<F>) -> F {
    let fmt = F::FMT;
    let p = fmt.p as i32;
    let sign = rng.bool();
    let sig = rng.sig();
    if let (Some(o), true) = (other, rng.chance(35)) {
        if let Val::Num { exp, sig: osig, .. } = o.unpack() {
            return match rng.below(6) {
                // Nearly the same value: cancellation in subtraction.
                0 => num(sign, exp, osig ^ (rng.next() >> rng.range(0, 63))),
                // Overlapping significands.
                1 => num(sign, exp + rng.range(-p - 2, p + 2), sig),
                // Sum, product or quotient at the top of the range.
                2 => num(sign, fmt.emax - exp + rng.range(-2, 1), sig),
                3 => num(sign, exp - fmt.emax + rng.range(-1, 2), sig),
                // ... or at the bottom.
                4 => num(sign, fmt.emin - exp + rng.range(-p - 1, 2), sig),
                _ => num(sign, exp - fmt.emin + rng.range(-2, p + 1), sig),
            };
        }
    }
    match rng.below(100) {
        0..=2 => F::zero(sign),
        3..=4 => F::inf(sign),
        5..=6 => F::nan(sign, INT | QUIET | (rng.next() >> rng.range(2, 63))),
        7..=8 => F::nan(sign, INT | (rng.next() >> rng.range(2, 63)).max(1)),
        9 => F::default_nan(),
        10..=17 => {
            // Denormal: below the smallest normal.
            num(sign, fmt.emin - rng.range(1, p - 1), sig)
        }
        18..=22 => {
            // The ends of the normal range.
            let e = if rng.bool() { fmt.emin } else { fmt.emax };
            let s = if rng.bool() { INT } else { u64::MAX };
            num(sign, e, s ^ (rng.below(4) << (64 - p)))
        }
        23..=37 => near_integer(rng, sign),
        38..=44 => num(sign, rng.range(fmt.emin - p, fmt.emax), sig),
        // Near the ends of the narrower formats' ranges (conversions).
        45..=50 => {
            let ends = [127, -126, -149, 1023, -1022, -1074];
            num(sign, ends[rng.below(6) as usize] + rng.range(-2, 2), sig)
        }
        _ => num(sign, rng.range(-40, 40), sig),
    }
}

/// An integer, a half-integer, or a value just off either, up to the
/// 64-bit integer range and a little beyond.
fn near_integer<F: Float>(rng: &mut Rng, sign: bool) -> F {
    let bits = match rng.below(4) {
        0 => rng.range(1, 5),
        1 => [15, 16, 31, 32, 63, 64][rng.below(6) as usize],
        _ => rng.range(1, 66),
    };
    let exp = bits - 1;
    let n = match rng.below(5) {
        0 => INT,
        1 => u64::MAX,
        _ => rng.sig(),
    };
    // Keep `exp + 1` integer bits, then a fraction of 0, 1/2 or near them.
    let keep = (exp + 1).clamp(1, 64) as u32;
    let int_part = if keep >= 64 {
        n
    } else {
        n & !(u64::MAX >> keep)
    };
    let frac_bit = if keep >= 64 { 0 } else { 1u64 << (63 - keep) };
    let s = match rng.below(5) {
        0 => int_part,
        1 => int_part | frac_bit,
        2 => int_part | frac_bit.saturating_sub(1),
        3 => (int_part | frac_bit) + 1,
        _ => int_part | (rng.next() & (frac_bit.wrapping_mul(2).wrapping_sub(1))),
    };
    num(sign, exp, s)
}

/// An F80 in any encoding: the values `value` gives plus the encodings
/// only the extended format has (pseudo-denormals, unnormals, pseudo-NaNs
/// and pseudo-infinities).
pub fn f80(rng: &mut Rng, other: Option<F80>) -> F80 {
    let sign = (rng.bool() as u16) << 15;
    match rng.below(100) {
        0..=1 => F80::new(sign, rng.next() | INT),
        2 => F80::new(sign | rng.range(1, 0x7ffe) as u16, rng.next() & !INT),
        3 => F80::new(sign | 0x7fff, rng.next() & !INT),
        // Values exactly representable in the narrower formats.
        4..=9 => {
            let v = value::<crate::fp::F32>(rng, None);
            let mut fp = crate::fp::Fp::new(crate::fp::Env::x87(0x037f));
            fp.convert(v)
        }
        10..=14 => {
            let v = value::<crate::fp::F64>(rng, None);
            let mut fp = crate::fp::Fp::new(crate::fp::Env::x87(0x037f));
            fp.convert(v)
        }
        _ => value(rng, other),
    }
}
