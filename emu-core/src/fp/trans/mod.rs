//! The x87 transcendentals: FSIN, FCOS, FSINCOS and FPTAN (`trig`),
//! FPATAN (`atan`), F2XM1, FYL2X and FYL2XP1 (`log`).
//!
//! No manual fixes their last bits. softvm computes them in 128-bit
//! arithmetic ([`Big`]) with an argument reduction exact enough for every
//! operand, and rounds once to 64 bits in the direction the rounding
//! control says: the result is the correctly rounded one except in the
//! rare cases within about 2^-120 of a rounding boundary, so within an
//! ulp of the processor's (which is within one of the true value). The
//! precision control does not apply to them (measured: the host rounds
//! FSIN, FYL2X, FPATAN and F2XM1 to 64 bits under every precision
//! control). Exceptions, special operands and range rules are the
//! manuals'.

mod atan;
mod log;
mod trig;

use super::big::Big;
use super::env::Fp;
use super::format::{Float, F80};
use trig::Trig;

/// Below this exponent (|t| < 2^-40) the first correction of sin t, tan t
/// and atan t (t³/3 or t³/6) is beyond the 128 bits of [`Big`]: the
/// result is t, just below or just above.
const TINY: i32 = -40;

impl Fp {
    /// Round a transcendental result (inexact: a sticky bit is added).
    pub(crate) fn round_big(&mut self, v: Big) -> F80 {
        if v.is_zero() {
            return F80::zero(v.neg);
        }
        self.round_fmt::<F80>(F80::FMT, v.neg, v.sig | 1, v.exp - 127)
    }

    /// Round a value that [`Big`] holds exactly (it carries its own
    /// sticky bit if it is not).
    pub(crate) fn round_big_exact(&mut self, v: Big) -> F80 {
        if v.is_zero() {
            return F80::zero(v.neg);
        }
        self.round_fmt::<F80>(F80::FMT, v.neg, v.sig, v.exp - 127)
    }

    /// FSIN: sin a, or `None` when |a| >= 2^63 (out of range: the
    /// operand stays, C2 = 1).
    pub fn sin(&mut self, a: F80) -> Option<F80> {
        self.trig(a, Trig::Sin)
    }

    /// FCOS: cos a, or `None` out of range.
    pub fn cos(&mut self, a: F80) -> Option<F80> {
        self.trig(a, Trig::Cos)
    }

    /// FPTAN's tangent: tan a, or `None` out of range.
    pub fn tan(&mut self, a: F80) -> Option<F80> {
        self.trig(a, Trig::Tan)
    }
}
