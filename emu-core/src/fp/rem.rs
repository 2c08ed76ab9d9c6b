//! FPREM and FPREM1: the x87's exact partial remainders.

use super::env::Fp;
use super::format::{Float, Val, F80};

/// The outcome of FPREM/FPREM1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remainder {
    pub value: F80,
    /// The three low bits of the quotient (Q2, Q1, Q0: C0, C3, C1), zero
    /// when the reduction is incomplete.
    pub quotient: u8,
    /// False (C2 = 1) when the exponent difference was 64 or more and only
    /// a partial reduction was done.
    pub complete: bool,
}

impl Remainder {
    fn done(value: F80) -> Remainder {
        Remainder {
            value,
            quotient: 0,
            complete: true,
        }
    }
}

/// The number of exponent positions a partial reduction may take for an
/// exponent difference `d >= 64`: the SDM leaves it implementation-defined
/// between 32 and 63; the processor takes `32 + d mod 32` (measured), which
/// leaves an exponent difference of a multiple of 32.
fn partial_step(d: i32) -> i32 {
    32 | (d & 31)
}

impl Fp {
    /// FPREM (`nearest` false: the quotient truncated) or FPREM1 (`nearest`
    /// true: the IEEE remainder, quotient rounded to nearest even) of `a` by
    /// `b`. The result is exact; precision control does not apply.
    pub fn rem(&mut self, a: F80, b: F80, nearest: bool) -> Remainder {
        let (a, b) = (self.operand(a), self.operand(b));
        if let Some(n) = self.nan2(a, b) {
            return Remainder::done(n);
        }
        // IE takes precedence over DE.
        if matches!(a, Val::Inf { .. }) || matches!(b, Val::Zero { .. }) {
            return Remainder::done(self.invalid());
        }
        self.check_denormal(&[a, b]);
        let (sa, ea, ma, eb, mb) = match (a, b) {
            (Val::Zero { .. }, _) => return Remainder::done(F80::pack(a)),
            (_, Val::Inf { .. }) => return Remainder::done(self.round_val(F80::FMT, a)),
            (
                Val::Num { sign, exp, sig, .. },
                Val::Num {
                    exp: eb, sig: mb, ..
                },
            ) => (sign, exp, sig, eb, mb),
            _ => unreachable!("NaNs, infinite dividends and zero divisors are handled before"),
        };
        let d = ea - eb;
        if d < -1 || (d == -1 && !nearest) {
            return Remainder::done(self.round_val(F80::FMT, a));
        }
        let (k, complete) = if d >= 64 {
            (partial_step(d), false)
        } else {
            (d, true)
        };
        let nearest = nearest && complete;
        // Both operands as integers in units of 2^unit.
        let (x, y, unit) = if k >= 0 {
            (u128::from(ma) << k, u128::from(mb), ea - k - 63)
        } else {
            (u128::from(ma), u128::from(mb) << 1, ea - 63)
        };
        let (mut q, mut r, mut sign) = (x / y, x % y, sa);
        if nearest && (2 * r > y || (2 * r == y && q & 1 == 1)) {
            r = y - r;
            q += 1;
            sign = !sign;
        }
        let value = if r == 0 {
            F80::zero(sa)
        } else {
            self.round_fmt(F80::FMT, sign, r, unit)
        };
        Remainder {
            value,
            quotient: if complete { (q & 7) as u8 } else { 0 },
            complete,
        }
    }
}
