//! Rounding an exact result to a format: the one place that decides
//! inexact, overflow, underflow (tininess after rounding, as x86 detects
//! it), flush-to-zero, the masked defaults, and the x87's
//! exponent-adjusted results for unmasked overflow and underflow.

use super::env::{Flags, Fp, NanRule, Round};
use super::format::{Float, Fmt, Val};

/// The bias adjustment of the x87's unmasked overflow and underflow
/// responses on register destinations (Intel SDM Vol. 1, 8.5.3, 8.5.4).
const X87_BIAS_ADJUST: i32 = 24576;

/// The outcome of rounding an integer significand at one bit position.
pub(crate) struct Rounded {
    /// The kept significand, possibly one more than the truncation.
    pub r: u128,
    pub inexact: bool,
    /// The magnitude was increased.
    pub up: bool,
}

/// Round `sig * 2^e` to a multiple of `2^q`, giving `r` with the value
/// `r * 2^q`.
pub(crate) fn round_at(mode: Round, sign: bool, sig: u128, e: i32, q: i32) -> Rounded {
    if q <= e {
        return Rounded {
            r: sig << (e - q) as u32,
            inexact: false,
            up: false,
        };
    }
    let s = (q - e) as u32;
    let (r, rem, half) = if s > 128 {
        // Everything is below half of the last kept place.
        (0, sig, None)
    } else if s == 128 {
        (0, sig, Some(1u128 << 127))
    } else {
        (sig >> s, sig & ((1u128 << s) - 1), Some(1u128 << (s - 1)))
    };
    let above_half = half.is_some_and(|h| rem > h);
    let at_half = half.is_some_and(|h| rem == h);
    let inc = match mode {
        Round::NearestEven => above_half || (at_half && r & 1 == 1),
        Round::Up => rem != 0 && !sign,
        Round::Down => rem != 0 && sign,
        Round::TowardZero => false,
    };
    Rounded {
        r: r + inc as u128,
        inexact: rem != 0,
        up: inc,
    }
}

fn bit_len(x: u128) -> i32 {
    128 - x.leading_zeros() as i32
}

impl Fp {
    /// The precision of results of the x87 arithmetic operations: the
    /// precision control applies to F80 results only.
    pub(crate) fn arith_fmt<F: Float>(&self) -> Fmt {
        let mut fmt = F::FMT;
        if F::IS_F80 {
            fmt.p = self.env.precision.bits();
        }
        fmt
    }

    /// Round the exact value `(-1)^sign * sig * 2^e` to `F` with the
    /// format's full precision.
    pub(crate) fn round<F: Float>(&mut self, sign: bool, sig: u128, e: i32) -> F {
        self.round_fmt(F::FMT, sign, sig, e)
    }

    /// Round `(-1)^sign * sig * 2^e` to a format with `fmt`'s precision and
    /// exponent range, packed as `F`. An inexact `sig` carries a sticky bit
    /// in its lowest bit and at least `fmt.p + 2` significant bits, so the
    /// rounding decision is the one the infinitely precise value gets.
    pub(crate) fn round_fmt<F: Float>(&mut self, fmt: Fmt, sign: bool, sig: u128, e: i32) -> F {
        if sig == 0 {
            return F::zero(sign);
        }
        let p = fmt.p as i32;
        let mode = self.env.round;
        let msb = e + bit_len(sig) - 1;
        let q_unbounded = msb - (p - 1);
        let q_min = fmt.emin - (p - 1);
        let mut q = q_unbounded.max(q_min);
        let mut rd = round_at(mode, sign, sig, e, q);
        if rd.r >> p != 0 {
            rd.r >>= 1;
            q += 1;
        }
        if q + bit_len(rd.r) - 1 > fmt.emax {
            return self.overflow(fmt, sign, sig, e, rd.inexact);
        }
        if msb < fmt.emin {
            // Tiny after rounding: the result rounded to `p` bits with an
            // unbounded exponent is below the smallest normal.
            let unb = round_at(mode, sign, sig, e, q_unbounded);
            let carried = unb.r >> p != 0;
            let tiny = !(carried && msb == fmt.emin - 1);
            if tiny {
                if !self.env.masked(Flags::UE) {
                    // Unmasked: UE whether exact or not. The x87 delivers
                    // the result scaled up to its registers; elsewhere
                    // nothing is written.
                    self.raise(Flags::UE);
                    if F::IS_F80 {
                        return self.rebias(fmt, sign, sig, e + X87_BIAS_ADJUST);
                    }
                    self.unwritten_inexact(unb.inexact);
                    return F::zero(sign);
                } else if self.env.ftz {
                    self.raise(Flags::UE | Flags::PE);
                    return F::zero(sign);
                } else if rd.inexact {
                    self.raise(Flags::UE);
                }
            }
        }
        if rd.inexact {
            self.raise(Flags::PE);
        }
        self.rounded_up |= rd.up;
        if rd.r == 0 {
            return F::zero(sign);
        }
        F::pack_finite(sign, rd.r as u64, q)
    }

    /// The overflow responses: unmasked on an F80 result, the value with
    /// its exponent reduced by 24576; masked, infinity or the largest
    /// finite value, by rounding direction.
    fn overflow<F: Float>(&mut self, fmt: Fmt, sign: bool, sig: u128, e: i32, inexact: bool) -> F {
        if !self.env.masked(Flags::OE) {
            self.raise(Flags::OE);
            if F::IS_F80 {
                return self.rebias(fmt, sign, sig, e - X87_BIAS_ADJUST);
            }
            self.unwritten_inexact(inexact);
            return F::inf(sign);
        }
        self.raise(Flags::OE | Flags::PE);
        let to_inf = match self.env.round {
            Round::NearestEven => true,
            Round::TowardZero => false,
            Round::Up => !sign,
            Round::Down => sign,
        };
        self.rounded_up |= to_inf;
        if to_inf {
            F::inf(sign)
        } else {
            let p = fmt.p as i32;
            F::pack_finite(
                sign,
                (1u64 << (p - 1) << 1).wrapping_sub(1),
                fmt.emax - p + 1,
            )
        }
    }

    /// PE with an unmasked overflow or underflow whose result is not
    /// written: SSE reports it when the result rounded with an unbounded
    /// exponent is inexact; the x87's stores to memory never do (both
    /// measured).
    fn unwritten_inexact(&mut self, inexact: bool) {
        if inexact && self.env.nan == NanRule::Sse {
            self.raise(Flags::PE);
        }
    }

    /// The x87's unmasked overflow and underflow response: the exact
    /// result with its exponent adjusted by 24576, rounded. Should it still
    /// be out of range (FSCALE can go that far), the processor delivers an
    /// infinity or a zero of the result's sign, whatever the rounding
    /// direction (measured).
    fn rebias<F: Float>(&mut self, fmt: Fmt, sign: bool, sig: u128, e: i32) -> F {
        let p = fmt.p as i32;
        let msb = e + bit_len(sig) - 1;
        let mut q = msb - (p - 1);
        let mut rd = round_at(self.env.round, sign, sig, e, q);
        if rd.r >> p != 0 {
            rd.r >>= 1;
            q += 1;
        }
        if q + p - 1 > fmt.emax {
            self.raise(Flags::PE);
            self.rounded_up = true;
            return F::inf(sign);
        }
        if q + p - 1 < fmt.emin {
            self.raise(Flags::PE);
            return F::zero(sign);
        }
        if rd.inexact {
            self.raise(Flags::PE);
        }
        self.rounded_up |= rd.up;
        F::pack_finite(sign, rd.r as u64, q)
    }

    /// Round a finite value, or pass any other through: for results that
    /// are an operand unchanged but must still meet the precision, range,
    /// FTZ and underflow rules of the destination (x + 0, conversions).
    pub(crate) fn round_val<F: Float>(&mut self, fmt: Fmt, v: Val) -> F {
        match v {
            Val::Num { sign, exp, sig, .. } => self.round_fmt(fmt, sign, u128::from(sig), exp - 63),
            v => F::pack(v),
        }
    }
}
