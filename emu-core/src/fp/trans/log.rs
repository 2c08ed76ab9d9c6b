//! F2XM1, FYL2X and FYL2XP1: 2^x - 1 and y·log2 x, y·log2(1 + x), with
//! the special operands of Intel SDM Vol. 2A (F2XM1, FYL2X, FYL2XP1).
//! Logarithms come from 2·atanh((m - 1)/(m + 1)) with m within √2 of 1,
//! the exponential from its Taylor series after multiplying by ln 2.

use super::super::big::Big;
use super::super::env::{Flags, Fp};
use super::super::format::{Float, Val, F80};
use super::super::x87::{LN2, LOG2E};

/// √2 to 128 bits (the significand, for [1, 2) scaled by 2^127).
const SQRT2_SIG: u128 = 0xb504_f333_f9de_6484_597d_89b3_754a_be9f;

/// 2·atanh s = ln((1 + s)/(1 - s)) for |s| below 0.18: s + s³/3 + ...,
/// every term of the sign of s, each below a thirtieth of the last.
fn atanh2(s: Big) -> Big {
    if s.is_zero() {
        return s;
    }
    let s2 = s.mul(s);
    let (mut sum, mut p) = (s, s);
    let mut n = 1u32;
    loop {
        p = p.mul(s2);
        let term = p.div_small(2 * n + 1);
        if term.exp < sum.exp - 132 {
            break;
        }
        sum = sum.add(term);
        n += 1;
    }
    sum.scale(1)
}

/// ln(1 + x) for |x| below 1 - √2/2, accurate however small x is.
fn ln1p_small(x: Big) -> Big {
    atanh2(x.div(Big::from_u64(2).add(x)))
}

/// log2 v for v > 0: v = m·2^e with m in [√2/2, √2).
fn log2(v: Big) -> Big {
    let (mut m, mut e) = (Big::new(false, v.sig, 0), v.exp);
    if v.sig > SQRT2_SIG {
        m = m.scale(-1);
        e += 1;
    }
    let frac = ln1p_small(m.sub(Big::ONE)).mul(Big::constant(LOG2E));
    let whole = Big::from_u64(u64::from(e.unsigned_abs()));
    let whole = if e < 0 { whole.neg() } else { whole };
    whole.add(frac)
}

/// 2^x - 1 for |x| < 1: the Taylor series of e^t - 1 at t = x·ln 2.
fn exp2m1_small(x: Big) -> Big {
    let t = x.mul(Big::constant(LN2));
    let (mut sum, mut term) = (t, t);
    let mut n = 2u32;
    while !term.is_zero() && term.exp > sum.exp - 132 {
        term = term.mul(t).div_small(n);
        sum = sum.add(term);
        n += 1;
    }
    sum
}

/// What `y · L` is when `L` is a logarithm: an infinity or zero of the
/// right sign for the special `y`, else the product rounded (`exact`:
/// `L` is an integer and the product needs no sticky bit).
fn times(fp: &mut Fp, vy: Val, l: Big, exact: bool) -> F80 {
    let sign = vy.sign() != l.neg;
    match vy {
        Val::Inf { .. } => F80::inf(sign),
        Val::Zero { .. } => F80::zero(sign),
        Val::Num { sign, exp, sig, .. } => {
            let p = Big::from_parts(sign, sig, exp).mul(l);
            if exact {
                fp.round_big_exact(p)
            } else {
                fp.round_big(p)
            }
        }
        _ => unreachable!("NaNs are handled before"),
    }
}

impl Fp {
    /// F2XM1: 2^x - 1. The manuals define it for |x| <= 1 only; beyond,
    /// the AMD processor this was measured on returns x with PE, and
    /// for ±1 the values 1 (just below, rounded) and -1/2 with PE, which
    /// is what softvm does.
    pub fn exp2m1(&mut self, a: F80) -> F80 {
        let v = self.operand(a);
        if let Some(n) = self.nan1(v) {
            return n;
        }
        match v {
            Val::Zero { sign } => F80::zero(sign),
            Val::Inf { sign: false } => F80::inf(false),
            Val::Inf { sign: true } => F80::new(0xbfff, 1 << 63),
            Val::Num { sign, exp, sig, .. } => {
                self.check_denormal(&[v]);
                let x = Big::from_parts(sign, sig, exp);
                if exp < 0 {
                    return self.round_big(exp2m1_small(x));
                }
                self.raise(Flags::PE);
                match (exp, sig == 1 << 63, sign) {
                    (0, true, false) => self.round_big(Big::ONE.nudge(false)),
                    (0, true, true) => F80::new(0xbffe, 1 << 63),
                    _ => a,
                }
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }

    /// The operands of FYL2X and FYL2XP1 and whether y is a zero or an
    /// infinity, or the NaN result.
    fn log_operands(&mut self, y: F80, x: F80) -> Result<(Val, Val, bool, bool), F80> {
        let (vy, vx) = (self.operand(y), self.operand(x));
        match self.nan2(vy, vx) {
            Some(n) => Err(n),
            None => Ok((
                vy,
                vx,
                matches!(vy, Val::Zero { .. }),
                matches!(vy, Val::Inf { .. }),
            )),
        }
    }

    /// FYL2X: y · log2 x.
    pub fn ylog2x(&mut self, y: F80, x: F80) -> F80 {
        let (vy, vx, y_zero, y_inf) = match self.log_operands(y, x) {
            Ok(v) => v,
            Err(n) => return n,
        };
        match vx {
            Val::Num { sign: true, .. } | Val::Inf { sign: true } => self.invalid(),
            Val::Zero { .. } => {
                // log2 0 = -∞: 0·∞ is invalid, a finite y divides by zero.
                if y_zero {
                    return self.invalid();
                }
                // ZE takes precedence over DE (measured).
                if !y_inf {
                    self.raise(Flags::ZE);
                }
                F80::inf(!vy.sign())
            }
            Val::Inf { .. } => {
                if y_zero {
                    return self.invalid();
                }
                self.check_denormal(&[vy]);
                F80::inf(vy.sign())
            }
            Val::Num { exp, sig, .. } => {
                let one = exp == 0 && sig == 1 << 63;
                if one && y_inf {
                    return self.invalid();
                }
                self.check_denormal(&[vy, vx]);
                if sig == 1 << 63 && !one {
                    // A power of two: log2 x is the exponent, exactly, and
                    // so is the product unless it needs rounding; the
                    // processor reports a finite non-zero product inexact
                    // all the same (PE, and UE if tiny; measured).
                    let e = Big::from_u64(u64::from(exp.unsigned_abs()));
                    let l = if exp < 0 { e.neg() } else { e };
                    let r = times(self, vy, l, true);
                    if let Val::Num { .. } = vy {
                        self.raise(Flags::PE);
                        if r.exponent() == 0 && self.env.masked(Flags::UE) {
                            self.raise(Flags::UE);
                        }
                    }
                    return r;
                }
                if one {
                    // log2 1 = +0 exactly.
                    return F80::zero(vy.sign());
                }
                times(self, vy, log2(Big::from_parts(false, sig, exp)), false)
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }

    /// FYL2XP1: y · log2(1 + x). The manuals define it for
    /// |x| < 1 - √2/2; softvm computes it for every x > -1 (as the
    /// measured processor does) and for x <= -1 returns what that
    /// processor returns.
    pub fn ylog2xp1(&mut self, y: F80, x: F80) -> F80 {
        let (vy, vx, y_zero, y_inf) = match self.log_operands(y, x) {
            Ok(v) => v,
            Err(n) => return n,
        };
        match vx {
            Val::Zero { sign } => {
                if y_inf {
                    return self.invalid();
                }
                self.check_denormal(&[vy]);
                F80::zero(sign != vy.sign())
            }
            Val::Inf { sign: true } => self.invalid(),
            Val::Inf { sign: false } => {
                if y_zero {
                    return self.invalid();
                }
                self.check_denormal(&[vy]);
                F80::inf(vy.sign())
            }
            Val::Num { sign, exp, sig, .. } => {
                self.check_denormal(&[vy, vx]);
                let xb = Big::from_parts(sign, sig, exp);
                if sign && xb.cmp_abs(Big::ONE).is_ge() {
                    // Undefined: what the measured processor returns
                    // (the sign of a negative factor for a zero or
                    // infinite y, else x itself).
                    return match vy {
                        Val::Zero { sign } => F80::zero(!sign),
                        Val::Inf { sign } => F80::inf(!sign),
                        _ => {
                            self.raise(Flags::PE);
                            x
                        }
                    };
                }
                let l = if exp < -2 {
                    ln1p_small(xb).mul(Big::constant(LOG2E))
                } else {
                    log2(Big::ONE.add(xb))
                };
                times(self, vy, l, false)
            }
            _ => unreachable!("NaNs are handled before"),
        }
    }
}
