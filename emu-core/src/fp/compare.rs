//! Comparisons (x87 FCOM/FUCOM, SSE CMPxx/COMISx), SSE MIN/MAX, and the
//! classification FXAM reports.

use super::env::{Flags, Fp};
use super::format::{Float, Val, F80};
use std::cmp::Ordering;

/// The outcome of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Less,
    Equal,
    Greater,
    Unordered,
}

/// What FXAM reports of a non-empty register (the sign is reported
/// separately, in C1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Pseudo-NaN, pseudo-infinity, unnormal.
    Unsupported,
    Nan,
    Normal,
    Infinity,
    Zero,
    /// Denormal or pseudo-denormal.
    Denormal,
}

/// Order two non-NaN values (zeros of either sign are equal).
fn order(a: Val, b: Val) -> Ordering {
    // A monotonic key of the magnitude: exponents stay far below 2^17.
    fn key(v: Val) -> i128 {
        let mag = match v {
            Val::Zero { .. } => 0,
            Val::Num { exp, sig, .. } => (i128::from(exp + 100_000) << 64) | i128::from(sig),
            _ => 1 << 100,
        };
        if v.sign() {
            -mag
        } else {
            mag
        }
    }
    key(a).cmp(&key(b))
}

impl Fp {
    /// Compare `a` with `b`. A quiet comparison raises IE for signaling
    /// NaNs (and unsupported encodings) only; a signaling one for every NaN.
    pub fn compare<F: Float>(&mut self, a: F, b: F, signaling: bool) -> Cmp {
        let (a, b) = (self.operand(a), self.operand(b));
        if a.is_nan() || b.is_nan() {
            let invalid = |v: Val| v.is_snan() || v == Val::Unsupported;
            if signaling || invalid(a) || invalid(b) {
                self.raise(Flags::IE);
            }
            return Cmp::Unordered;
        }
        self.check_denormal(&[a, b]);
        match order(a, b) {
            Ordering::Less => Cmp::Less,
            Ordering::Equal => Cmp::Equal,
            Ordering::Greater => Cmp::Greater,
        }
    }

    /// MAXSS/MAXSD/MAXPS/MAXPD: `a` if it is greater, else `b` (so `b`
    /// when either is a NaN, with IE for any NaN, or when both are zeros).
    /// With DAZ the operand returned is the zero a denormal reads as.
    pub fn max<F: Float>(&mut self, a: F, b: F) -> F {
        self.min_max(a, b, Ordering::Greater)
    }

    /// MINSS/MINSD/MINPS/MINPD: `a` if it is less, else `b`.
    pub fn min<F: Float>(&mut self, a: F, b: F) -> F {
        self.min_max(a, b, Ordering::Less)
    }

    fn min_max<F: Float>(&mut self, a: F, b: F, want: Ordering) -> F {
        let (va, vb) = (self.operand(a), self.operand(b));
        if va.is_nan() || vb.is_nan() {
            self.raise(Flags::IE);
            return F::pack(vb);
        }
        self.check_denormal(&[va, vb]);
        if order(va, vb) == want {
            F::pack(va)
        } else {
            F::pack(vb)
        }
    }
}

/// FXAM's classes.
pub fn classify(a: F80) -> Class {
    match a.unpack() {
        Val::Unsupported => Class::Unsupported,
        Val::Nan { .. } => Class::Nan,
        Val::Inf { .. } => Class::Infinity,
        Val::Zero { .. } => Class::Zero,
        Val::Num { denormal: true, .. } => Class::Denormal,
        Val::Num { .. } => Class::Normal,
    }
}
