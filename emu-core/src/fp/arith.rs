//! Add, subtract, multiply, divide and square root: exact intermediate
//! results in `u128`, then one rounding.

use super::env::{Flags, Fp, Round};
use super::format::{Float, Val};

/// Shift right, ORing every bit shifted out into the lowest bit (the
/// sticky bit), so the result still rounds as the exact value does.
pub(crate) fn shift_right_jam(x: u128, s: u32) -> u128 {
    if s == 0 {
        x
    } else if s >= 128 {
        (x != 0) as u128
    } else {
        (x >> s) | ((x & ((1u128 << s) - 1)) != 0) as u128
    }
}

impl Fp {
    /// Operands of a two-operand operation: NaN result, or the two values
    /// with DE checked. Division checks DE itself: a zero divisor's ZE
    /// takes precedence over DE.
    fn prepare2<F: Float>(&mut self, a: F, b: F, de: bool) -> Result<(Val, Val), F> {
        let (a, b) = (self.operand(a), self.operand(b));
        if let Some(n) = self.nan2(a, b) {
            return Err(n);
        }
        if de {
            self.check_denormal(&[a, b]);
        }
        Ok((a, b))
    }

    /// The sign of an exact zero sum of operands of opposite signs: +0,
    /// but -0 when rounding down.
    fn zero_sum_sign(&self) -> bool {
        self.env.round == Round::Down
    }

    pub fn add<F: Float>(&mut self, a: F, b: F) -> F {
        match self.prepare2(a, b, true) {
            Ok((a, b)) => self.add_vals(a, b),
            Err(n) => n,
        }
    }

    /// a - b. A NaN b is returned with its own sign.
    pub fn sub<F: Float>(&mut self, a: F, b: F) -> F {
        match self.prepare2(a, b, true) {
            Ok((a, b)) => self.add_vals(a, b.negate()),
            Err(n) => n,
        }
    }

    fn add_vals<F: Float>(&mut self, a: Val, b: Val) -> F {
        let fmt = self.arith_fmt::<F>();
        match (a, b) {
            (Val::Inf { sign: sa }, Val::Inf { sign: sb }) => {
                if sa == sb {
                    F::inf(sa)
                } else {
                    self.invalid()
                }
            }
            (Val::Inf { sign }, _) | (_, Val::Inf { sign }) => F::inf(sign),
            (Val::Zero { sign: sa }, Val::Zero { sign: sb }) => {
                F::zero(if sa == sb { sa } else { self.zero_sum_sign() })
            }
            (Val::Zero { .. }, v) | (v, Val::Zero { .. }) => self.round_val(fmt, v),
            (
                Val::Num {
                    sign: sa,
                    exp: ea,
                    sig: ma,
                    ..
                },
                Val::Num {
                    sign: sb,
                    exp: eb,
                    sig: mb,
                    ..
                },
            ) => {
                // The larger exponent first; its significand at bits
                // 125..=62 leaves room for the carry and keeps the lowest
                // bit clear, so a jammed sticky bit never lands on a
                // rounding boundary.
                let (sa, ea, ma, sb, eb, mb) = if ea >= eb {
                    (sa, ea, ma, sb, eb, mb)
                } else {
                    (sb, eb, mb, sa, ea, ma)
                };
                let x = u128::from(ma) << 62;
                let y = shift_right_jam(u128::from(mb) << 62, (ea - eb) as u32);
                let e = ea - 125;
                if sa == sb {
                    self.round_fmt(fmt, sa, x + y, e)
                } else if x > y {
                    self.round_fmt(fmt, sa, x - y, e)
                } else if y > x {
                    self.round_fmt(fmt, sb, y - x, e)
                } else {
                    F::zero(self.zero_sum_sign())
                }
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }

    pub fn mul<F: Float>(&mut self, a: F, b: F) -> F {
        let (a, b) = match self.prepare2(a, b, true) {
            Ok(v) => v,
            Err(n) => return n,
        };
        let sign = a.sign() ^ b.sign();
        match (a, b) {
            (Val::Inf { .. }, Val::Zero { .. }) | (Val::Zero { .. }, Val::Inf { .. }) => {
                self.invalid()
            }
            (Val::Inf { .. }, _) | (_, Val::Inf { .. }) => F::inf(sign),
            (Val::Zero { .. }, _) | (_, Val::Zero { .. }) => F::zero(sign),
            (
                Val::Num {
                    exp: ea, sig: ma, ..
                },
                Val::Num {
                    exp: eb, sig: mb, ..
                },
            ) => {
                let fmt = self.arith_fmt::<F>();
                let prod = u128::from(ma) * u128::from(mb);
                self.round_fmt(fmt, sign, prod, ea + eb - 126)
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }

    pub fn div<F: Float>(&mut self, a: F, b: F) -> F {
        let (a, b) = match self.prepare2(a, b, false) {
            Ok(v) => v,
            Err(n) => return n,
        };
        if !matches!(b, Val::Zero { .. }) {
            self.check_denormal(&[a, b]);
        }
        let sign = a.sign() ^ b.sign();
        match (a, b) {
            (Val::Inf { .. }, Val::Inf { .. }) | (Val::Zero { .. }, Val::Zero { .. }) => {
                self.invalid()
            }
            (Val::Inf { .. }, _) => F::inf(sign),
            (_, Val::Inf { .. }) | (Val::Zero { .. }, _) => F::zero(sign),
            (_, Val::Zero { .. }) => {
                self.raise(Flags::ZE);
                F::inf(sign)
            }
            (
                Val::Num {
                    exp: ea, sig: ma, ..
                },
                Val::Num {
                    exp: eb, sig: mb, ..
                },
            ) => {
                // 64 or 65 quotient bits, then 8 more, then the sticky bit.
                let (ma, mb) = (u128::from(ma), u128::from(mb));
                let num = ma << 64;
                let (q1, r1) = (num / mb, num % mb);
                let (q2, r2) = ((r1 << 8) / mb, (r1 << 8) % mb);
                let q = (q1 << 8) | q2 | (r2 != 0) as u128;
                let fmt = self.arith_fmt::<F>();
                self.round_fmt(fmt, sign, q, ea - eb - 72)
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }

    pub fn sqrt<F: Float>(&mut self, a: F) -> F {
        let a = self.operand(a);
        if let Some(n) = self.nan1(a) {
            return n;
        }
        match a {
            Val::Zero { sign } => F::zero(sign),
            Val::Inf { sign: false } => F::inf(false),
            // IE takes precedence over DE.
            Val::Inf { sign: true } | Val::Num { sign: true, .. } => self.invalid(),
            Val::Num { exp, sig, .. } => {
                self.check_denormal(&[a]);
                // sig * 2^(exp - 63) with an even power of two.
                let mut e = exp - 63;
                let mut m = u128::from(sig);
                if e & 1 != 0 {
                    m <<= 1;
                    e -= 1;
                }
                let (root, exact) = isqrt_extended(m);
                let fmt = self.arith_fmt::<F>();
                let r = root | (!exact) as u128;
                self.round_fmt(fmt, false, r, e / 2 - EXTRA_ROOT_PAIRS as i32)
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }
}

/// The zero bit pairs appended to a radicand so that its root has 67
/// bits (64 + guard + round + one to spare).
const EXTRA_ROOT_PAIRS: u32 = 34;

/// floor(sqrt(m * 4^EXTRA_ROOT_PAIRS)) for `m < 2^66`, and whether it is
/// exact: the digit-by-digit method, one root bit per radicand bit pair.
fn isqrt_extended(m: u128) -> (u128, bool) {
    let mut rem: u128 = 0;
    let mut root: u128 = 0;
    for i in (0..33 + EXTRA_ROOT_PAIRS).rev() {
        let pair = if i >= EXTRA_ROOT_PAIRS {
            (m >> (2 * (i - EXTRA_ROOT_PAIRS))) & 3
        } else {
            0
        };
        rem = (rem << 2) | pair;
        let t = (root << 2) | 1;
        if rem >= t {
            rem -= t;
            root = (root << 1) | 1;
        } else {
            root <<= 1;
        }
    }
    (root, rem == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_is_floor_of_root() {
        for m in [1u128, 2, 3, 4, 9, 1 << 40, (1 << 59) - 1, (1 << 58) + 12345] {
            let (r, exact) = isqrt_extended(m);
            let big = m << (2 * EXTRA_ROOT_PAIRS);
            // r^2 <= big < (r+1)^2, computed without overflow via division.
            assert!(r * r <= big && big / (r + 1) < r + 1, "{m}");
            assert_eq!(exact, r * r == big, "{m}");
        }
    }
}
