//! Conversions between the formats and to and from integers.

use super::env::{Flags, Fp, Round};
use super::format::{Float, Val};
use super::round::round_at;

impl Fp {
    /// Convert `a` to format `G`, rounding to `G`'s precision (the x87
    /// precision control does not apply). NaN payloads keep their high
    /// bits; an SNaN is quieted with IE. A denormal F32 or F64 source
    /// raises DE (CVTSS2SD, FLD m32); an F80 one does not (FST m32).
    pub fn convert<F: Float, G: Float>(&mut self, a: F) -> G {
        let v = self.operand(a);
        if let Some(n) = self.nan1(v) {
            return n;
        }
        if !F::IS_F80 {
            self.check_denormal(&[v]);
        }
        self.round_val(G::FMT, v)
    }

    /// Convert `a` to a signed integer of `bits` bits (16, 32 or 64), with
    /// the environment's rounding or, if `truncate`, toward zero. A NaN,
    /// an infinity or a value out of range gives IE and the integer
    /// indefinite (the most negative value), sign-extended to 64 bits.
    /// Denormal sources raise no DE (CVTSS2SI, FIST), just PE.
    pub fn to_int<F: Float>(&mut self, a: F, bits: u32, truncate: bool) -> i64 {
        let v = self.operand(a);
        let indefinite = i64::MIN >> (64 - bits);
        match v {
            Val::Zero { .. } => 0,
            Val::Num { sign, exp, sig, .. } => {
                if exp >= 64 {
                    self.raise(Flags::IE);
                    return indefinite;
                }
                let mode = if truncate {
                    Round::TowardZero
                } else {
                    self.env.round
                };
                let rd = round_at(mode, sign, u128::from(sig), exp - 63, 0);
                let limit = 1u128 << (bits - 1);
                if rd.r > limit || (rd.r == limit && !sign) {
                    self.raise(Flags::IE);
                    return indefinite;
                }
                if rd.inexact {
                    self.raise(Flags::PE);
                }
                self.rounded_up |= rd.up;
                let m = rd.r as i128;
                (if sign { -m } else { m }) as i64
            }
            _ => {
                self.raise(Flags::IE);
                indefinite
            }
        }
    }

    /// Convert a signed integer to format `F`, rounding as the environment
    /// says (the x87 precision control does not apply).
    pub fn from_int<F: Float>(&mut self, i: i64) -> F {
        let m = i.unsigned_abs();
        if m == 0 {
            return F::zero(false);
        }
        self.round(i < 0, u128::from(m), 0)
    }
}
