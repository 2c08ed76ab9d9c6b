//! A binary floating-point number with a 128-bit significand and an
//! unbounded exponent: the working precision of the x87 transcendentals,
//! twice the 64 bits their results are rounded to, so that one rounding
//! of the final value gives the correctly rounded result except in cases
//! closer to a rounding boundary than 2^-120 or so.
//!
//! Every operation truncates, ORing whatever it drops into the lowest
//! bit (a sticky bit), and additions align with the same sticky shift: a
//! value that is "just below" or "just above" a short one stays on the
//! right side of it, which the directed roundings of the result need.

use super::arith::shift_right_jam;
use std::cmp::Ordering;

/// `(-1)^neg * sig * 2^(exp - 127)`; `sig` has bit 127 set, or is 0 for
/// zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Big {
    pub neg: bool,
    pub exp: i32,
    pub sig: u128,
}

impl Big {
    pub const ZERO: Big = Big {
        neg: false,
        exp: 0,
        sig: 0,
    };
    pub const ONE: Big = Big {
        neg: false,
        exp: 0,
        sig: 1 << 127,
    };

    /// `(-1)^neg * sig * 2^(exp - 127)` for any `sig`, normalized.
    pub fn new(neg: bool, sig: u128, exp: i32) -> Big {
        if sig == 0 {
            return Big::ZERO;
        }
        let lz = sig.leading_zeros();
        Big {
            neg,
            exp: exp - lz as i32,
            sig: sig << lz,
        }
    }

    /// `sig * 2^(exp - 63)`: a finite x87 value taken apart.
    pub fn from_parts(neg: bool, sig: u64, exp: i32) -> Big {
        Big::new(neg, u128::from(sig) << 64, exp)
    }

    /// A constant given to 128 bits (significand with bit 127 set, and
    /// exponent), as in `x87.rs`.
    pub fn constant(c: (u128, i32)) -> Big {
        Big::new(false, c.0, c.1)
    }

    pub fn from_u64(n: u64) -> Big {
        Big::new(false, u128::from(n), 127)
    }

    pub fn is_zero(self) -> bool {
        self.sig == 0
    }

    pub fn neg(self) -> Big {
        Big {
            neg: !self.neg && !self.is_zero(),
            ..self
        }
    }

    /// `self * 2^k`.
    pub fn scale(self, k: i32) -> Big {
        if self.is_zero() {
            return self;
        }
        Big {
            exp: self.exp + k,
            ..self
        }
    }

    /// The same value moved by a fraction of its last place: just above
    /// (`up`) or just below it in magnitude, for a result known to lie
    /// beyond 128 bits on that side of `self`.
    pub fn nudge(self, up: bool) -> Big {
        if self.is_zero() {
            return self;
        }
        if up {
            Big {
                sig: self.sig | 1,
                ..self
            }
        } else if self.sig & 1 != 0 {
            // Already a sticky bit below: it stands for "just below".
            self
        } else {
            Big::new(self.neg, self.sig - 1, self.exp)
        }
    }

    /// Compare magnitudes.
    pub fn cmp_abs(self, o: Big) -> Ordering {
        match (self.is_zero(), o.is_zero()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => self.exp.cmp(&o.exp).then(self.sig.cmp(&o.sig)),
        }
    }

    pub fn add(self, o: Big) -> Big {
        if o.is_zero() {
            return self;
        }
        if self.is_zero() {
            return o;
        }
        let (a, b) = match self.cmp_abs(o) {
            Ordering::Less => (o, self),
            _ => (self, o),
        };
        // Both shifted down one place to leave room for a carry.
        let x = (a.sig >> 1) | (a.sig & 1);
        let d = (a.exp - b.exp) as u32;
        let y = shift_right_jam(b.sig, d.saturating_add(1));
        if a.neg == b.neg {
            Big::new(a.neg, x + y, a.exp + 1)
        } else {
            Big::new(a.neg, x - y, a.exp + 1)
        }
    }

    pub fn sub(self, o: Big) -> Big {
        self.add(o.neg())
    }

    pub fn mul(self, o: Big) -> Big {
        if self.is_zero() || o.is_zero() {
            return Big::ZERO;
        }
        let (a1, a0) = (self.sig >> 64, self.sig & u128::from(u64::MAX));
        let (b1, b0) = (o.sig >> 64, o.sig & u128::from(u64::MAX));
        let ll = a0 * b0;
        let lh = a0 * b1;
        let hl = a1 * b0;
        let hh = a1 * b1;
        let low64 = u128::from(u64::MAX);
        let mid = (ll >> 64) + (lh & low64) + (hl & low64);
        let hi = hh + (lh >> 64) + (hl >> 64) + (mid >> 64);
        let lo = (mid << 64) | (ll & low64);
        // The product is hi * 2^128 + lo with hi >= 2^126.
        let (hi, lo, exp) = if hi >> 127 == 0 {
            ((hi << 1) | (lo >> 127), lo << 1, self.exp + o.exp)
        } else {
            (hi, lo, self.exp + o.exp + 1)
        };
        Big {
            neg: self.neg != o.neg,
            exp,
            sig: hi | u128::from(lo != 0),
        }
    }

    /// Division by restoring long division: 128 quotient bits and a
    /// sticky bit for the remainder. `o` must not be zero.
    pub fn div(self, o: Big) -> Big {
        debug_assert!(!o.is_zero());
        if self.is_zero() {
            return Big::ZERO;
        }
        let b = o.sig;
        let mut rem = self.sig;
        let mut q: u128 = 0;
        let mut exp = self.exp - o.exp;
        // First quotient bit: the integer part of sig / b (0 or 1).
        if rem >= b {
            q = 1;
            rem -= b;
        }
        let mut steps = 127;
        if q == 0 {
            // The leading bit comes one place lower.
            steps += 1;
            exp -= 1;
        }
        for _ in 0..steps {
            let carry = rem >> 127;
            rem <<= 1;
            q <<= 1;
            if carry != 0 || rem >= b {
                rem = rem.wrapping_sub(b);
                q |= 1;
            }
        }
        Big {
            neg: self.neg != o.neg,
            exp,
            sig: q | u128::from(rem != 0),
        }
    }

    /// Division by a small integer (at most 2^32), for series terms.
    pub fn div_small(self, k: u32) -> Big {
        let k = u128::from(k);
        let (q, r) = (self.sig / k, self.sig % k);
        if q == 0 {
            return Big::ZERO;
        }
        let lz = q.leading_zeros();
        // r < k <= 2^32 and lz <= 32: no overflow.
        let (extra, r2) = ((r << lz) / k, (r << lz) % k);
        Big {
            neg: self.neg,
            exp: self.exp - lz as i32,
            sig: (q << lz) | extra | u128::from(r2 != 0),
        }
    }

    pub fn mul_small(self, k: u32) -> Big {
        self.mul(Big::from_u64(u64::from(k)))
    }

    /// The value, approximately (for tests and tolerances).
    #[cfg(test)]
    pub fn to_f64(self) -> f64 {
        let m = (self.sig >> 64) as f64 * 2f64.powi(-63);
        let v = m * 2f64.powi(self.exp);
        if self.neg {
            -v
        } else {
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: f64) -> Big {
        let bits = v.to_bits();
        let e = ((bits >> 52) & 0x7ff) as i32 - 1023;
        let m = (bits & ((1 << 52) - 1)) | (1 << 52);
        Big::from_parts(v < 0.0, m << 11, e)
    }

    #[test]
    fn arithmetic_matches_doubles_where_exact() {
        assert_eq!(b(1.5).add(b(2.25)), b(3.75));
        assert_eq!(b(1.5).sub(b(2.25)), b(-0.75));
        assert_eq!(b(1.5).mul(b(-2.25)), b(-3.375));
        assert_eq!(b(3.375).div(b(1.5)), b(2.25));
        assert_eq!(b(3.0).div_small(3), Big::ONE);
        assert_eq!(b(0.75).mul_small(4), b(3.0));
        assert!(b(2.0).sub(b(2.0)).is_zero());
    }

    #[test]
    fn inexact_results_keep_their_side() {
        // 1/3 truncated, sticky set.
        let third = Big::ONE.div(b(3.0));
        assert_eq!(third.sig, 0xaaaa_aaaa_aaaa_aaaa_aaaa_aaaa_aaaa_aaab);
        assert_eq!(third.exp, -2);
        // 1 - 2^-200 is just below 1, 1 + 2^-200 just above.
        let tiny = Big::ONE.scale(-200);
        for below in [Big::ONE.sub(tiny), Big::ONE.nudge(false)] {
            assert_eq!(below.exp, -1);
            assert!(below.sig > u128::MAX - 8, "{below:x?}");
        }
        for above in [Big::ONE.add(tiny), Big::ONE.nudge(true)] {
            assert_eq!(above.exp, 0);
            assert!(
                above.sig > 1 << 127 && above.sig < (1 << 127) + 8,
                "{above:x?}"
            );
        }
    }

    #[test]
    fn division_round_trips() {
        for (x, y) in [(1.0, 7.0), (123.456, -0.001), (1e-300, 3e300), (5.0, 5.0)] {
            let q = b(x).div(b(y));
            let back = q.mul(b(y));
            assert!((back.to_f64() - x).abs() <= x.abs() * 1e-15, "{x} {y}");
        }
    }
}
