//! Round to integral value (FRNDINT, ROUNDSS), FSCALE and FXTRACT.

use super::env::{Flags, Fp, Round};
use super::format::{Float, Val, F80, INT};
use super::round::round_at;

impl Fp {
    /// The integral value nearest `a` in direction `mode`, in `a`'s format
    /// (FRNDINT with the control word's rounding, ROUNDSS/ROUNDPS with the
    /// immediate's). `signal_inexact` false suppresses PE (ROUNDSS
    /// immediate bit 3). FRNDINT raises DE for a denormal; ROUNDSS does
    /// not.
    pub fn round_int<F: Float>(&mut self, a: F, mode: Round, signal_inexact: bool) -> F {
        let v = self.operand(a);
        if let Some(n) = self.nan1(v) {
            return n;
        }
        if F::IS_F80 {
            self.check_denormal(&[v]);
        }
        match v {
            Val::Num { sign, exp, sig, .. } if exp < 63 => {
                let rd = round_at(mode, sign, u128::from(sig), exp - 63, 0);
                if rd.inexact && signal_inexact {
                    self.raise(Flags::PE);
                }
                self.rounded_up |= rd.up;
                if rd.r == 0 {
                    F::zero(sign)
                } else {
                    F::pack_finite(sign, rd.r as u64, 0)
                }
            }
            v => F::pack(v),
        }
    }

    /// FSCALE: `a * 2^trunc(b)`, rounded only when the result leaves the
    /// normal range.
    pub fn scale(&mut self, a: F80, b: F80) -> F80 {
        let (a, b) = (self.operand(a), self.operand(b));
        if let Some(n) = self.nan2(a, b) {
            return n;
        }
        self.check_denormal(&[a, b]);
        match (a, b) {
            (Val::Zero { .. }, Val::Inf { sign: false })
            | (Val::Inf { .. }, Val::Inf { sign: true }) => self.invalid(),
            (Val::Zero { sign }, _) => F80::zero(sign),
            (Val::Inf { sign }, _) => F80::inf(sign),
            (Val::Num { sign, .. }, Val::Inf { sign: false }) => F80::inf(sign),
            (Val::Num { sign, .. }, Val::Inf { sign: true }) => F80::zero(sign),
            (Val::Num { sign, exp, sig, .. }, b) => {
                let n = match b {
                    // Beyond 2^20 every result overflows or underflows,
                    // even with the unmasked responses' 24576 adjustment.
                    Val::Num {
                        sign: sb,
                        exp: eb,
                        sig: mb,
                        ..
                    } if eb >= 0 => {
                        let m = if eb > 20 {
                            1 << 20
                        } else {
                            (mb >> (63 - eb)) as i32
                        };
                        if sb {
                            -m
                        } else {
                            m
                        }
                    }
                    _ => 0,
                };
                self.round_fmt(F80::FMT, sign, u128::from(sig), exp - 63 + n)
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }

    /// FXTRACT: `(exponent, significand)` of `a`, the significand with the
    /// sign of `a` and a biased exponent of 0x3fff. Zero gives -infinity
    /// and ZE.
    pub fn extract(&mut self, a: F80) -> (F80, F80) {
        let v = self.operand(a);
        if let Some(n) = self.nan1::<F80>(v) {
            return (n, n);
        }
        self.check_denormal(&[v]);
        match v {
            Val::Zero { sign } => {
                self.raise(Flags::ZE);
                (F80::inf(true), F80::zero(sign))
            }
            Val::Inf { sign } => (F80::inf(false), F80::inf(sign)),
            Val::Num { sign, exp, sig, .. } => {
                let e = F80::pack(Val::from_int(exp < 0, u64::from(exp.unsigned_abs()), 0));
                debug_assert!(sig & INT != 0);
                (e, F80::new(((sign as u16) << 15) | 0x3fff, sig))
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }
}
