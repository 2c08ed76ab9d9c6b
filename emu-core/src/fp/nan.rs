//! Operand preparation (DAZ, the denormal-operand flag) and the NaN rules:
//! which NaN an operation returns, and when it raises IE.

use super::env::{Flags, Fp, NanRule};
use super::format::{Float, Val, INT, QUIET};

/// The default NaN ("real indefinite") as an unpacked value.
pub(crate) const DEFAULT_NAN: Val = Val::Nan {
    sign: true,
    sig: INT | QUIET,
};

impl Fp {
    /// An operand as the operation sees it: with DAZ a denormal reads as
    /// a zero of its sign.
    pub(crate) fn operand<F: Float>(&self, a: F) -> Val {
        let v = a.unpack();
        if self.env.daz && v.is_denormal() {
            Val::Zero { sign: v.sign() }
        } else {
            v
        }
    }

    /// DE when any operand is a denormal (DAZ has already turned them into
    /// zeros where it applies).
    pub(crate) fn check_denormal(&mut self, vals: &[Val]) {
        if vals.iter().any(|v| v.is_denormal()) {
            self.raise(Flags::DE);
        }
    }

    /// An invalid operation: IE and the default NaN.
    pub(crate) fn invalid<F: Float>(&mut self) -> F {
        self.raise(Flags::IE);
        F::default_nan()
    }

    /// A NaN operand as a result: quieted, IE for a signaling one or for
    /// an unsupported x87 encoding (which gives the default NaN).
    pub(crate) fn quiet(&mut self, v: Val) -> Val {
        match v {
            Val::Nan { sign, sig } => {
                if sig & QUIET == 0 {
                    self.raise(Flags::IE);
                }
                Val::Nan {
                    sign,
                    sig: sig | QUIET,
                }
            }
            Val::Unsupported => {
                self.raise(Flags::IE);
                DEFAULT_NAN
            }
            v => v,
        }
    }

    /// The result of a one-operand operation on a NaN, if `a` is one.
    pub(crate) fn nan1<F: Float>(&mut self, a: Val) -> Option<F> {
        if a.is_nan() {
            Some(F::pack(self.quiet(a)))
        } else {
            None
        }
    }

    /// The result of a two-operand operation when either is a NaN (or an
    /// unsupported encoding), by the environment's NaN rule.
    pub(crate) fn nan2<F: Float>(&mut self, a: Val, b: Val) -> Option<F> {
        if !a.is_nan() && !b.is_nan() {
            return None;
        }
        let pick = match self.env.nan {
            NanRule::Sse => {
                if a.is_nan() {
                    a
                } else {
                    b
                }
            }
            NanRule::X87 => x87_pick(a, b),
        };
        // IE for every signaling or unsupported operand, whichever NaN
        // is returned.
        let mut r = self.quiet(pick);
        for v in [a, b] {
            if v.is_snan() || v == Val::Unsupported {
                self.raise(Flags::IE);
            }
        }
        if a == Val::Unsupported || b == Val::Unsupported {
            r = DEFAULT_NAN;
        }
        Some(F::pack(r))
    }
}

/// The x87's choice between two operands of which at least one is a NaN:
/// a QNaN over an SNaN, else the larger significand, else (equal
/// significands) the positive one.
fn x87_pick(a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Nan { sig: sa, .. }, Val::Nan { sig: sb, .. }) => {
            let (qa, qb) = (sa & QUIET != 0, sb & QUIET != 0);
            if qa != qb {
                if qa {
                    a
                } else {
                    b
                }
            } else if (sb & !QUIET) > (sa & !QUIET) || ((sb & !QUIET) == (sa & !QUIET) && !b.sign())
            {
                b
            } else {
                a
            }
        }
        (Val::Nan { .. }, _) => a,
        _ => b,
    }
}
