//! The three binary formats, and the unpacked form every operation
//! computes on.

pub use crate::cpu::fpu::F80;

/// A single-precision value, as its bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct F32(pub u32);

/// A double-precision value, as its bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct F64(pub u64);

/// The quiet bit of a left-aligned NaN significand.
pub(crate) const QUIET: u64 = 1 << 62;
/// The integer bit of a left-aligned significand.
pub(crate) const INT: u64 = 1 << 63;

/// A value taken apart. Finite non-zero values are normalized: `sig` has
/// bit 63 set and the value is `sig * 2^(exp - 63)`. NaN significands are
/// left-aligned the same way (bit 63 set, bit 62 the quiet bit), which is
/// how x86 converts NaN payloads between formats: the high bits are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    Zero {
        sign: bool,
    },
    Num {
        sign: bool,
        exp: i32,
        sig: u64,
        /// Encoded as a denormal (or an x87 pseudo-denormal).
        denormal: bool,
    },
    Inf {
        sign: bool,
    },
    Nan {
        sign: bool,
        sig: u64,
    },
    /// An F80 encoding the x87 does not support (pseudo-NaN,
    /// pseudo-infinity, unnormal): an invalid operand.
    Unsupported,
}

impl Val {
    pub(crate) fn sign(self) -> bool {
        match self {
            Val::Zero { sign }
            | Val::Num { sign, .. }
            | Val::Inf { sign }
            | Val::Nan { sign, .. } => sign,
            Val::Unsupported => false,
        }
    }

    pub(crate) fn is_nan(self) -> bool {
        matches!(self, Val::Nan { .. } | Val::Unsupported)
    }

    pub(crate) fn is_snan(self) -> bool {
        matches!(self, Val::Nan { sig, .. } if sig & QUIET == 0)
    }

    pub(crate) fn is_denormal(self) -> bool {
        matches!(self, Val::Num { denormal: true, .. })
    }

    pub(crate) fn negate(self) -> Val {
        match self {
            Val::Zero { sign } => Val::Zero { sign: !sign },
            Val::Num {
                sign,
                exp,
                sig,
                denormal,
            } => Val::Num {
                sign: !sign,
                exp,
                sig,
                denormal,
            },
            Val::Inf { sign } => Val::Inf { sign: !sign },
            v => v,
        }
    }

    /// A finite non-zero value from an integer significand: `sig * 2^q`.
    pub(crate) fn from_int(sign: bool, sig: u64, q: i32) -> Val {
        if sig == 0 {
            return Val::Zero { sign };
        }
        let lz = sig.leading_zeros();
        Val::Num {
            sign,
            exp: q + 63 - lz as i32,
            sig: sig << lz,
            denormal: false,
        }
    }
}

/// The parameters rounding needs: significand width (integer bit
/// included) and the unbiased exponent range of normal numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmt {
    pub p: u32,
    pub emin: i32,
    pub emax: i32,
}

/// A binary floating-point format.
pub trait Float: Copy + std::fmt::Debug + PartialEq {
    /// Significand width (integer bit included) and exponent range.
    #[doc(hidden)]
    const FMT: Fmt;
    /// Whether this is the x87's own register format (decides the
    /// exponent-adjusted response to unmasked overflow and underflow).
    const IS_F80: bool;

    #[doc(hidden)]
    fn unpack(self) -> Val;

    /// `sig * 2^q` (`sig` non-zero, fitting the format: the rounding code
    /// guarantees it), or the same with the exponent wrapped for the x87's
    /// unmasked responses.
    #[doc(hidden)]
    fn pack_finite(sign: bool, sig: u64, q: i32) -> Self;

    fn zero(sign: bool) -> Self;
    fn inf(sign: bool) -> Self;
    /// A NaN from a left-aligned significand (bit 63 ignored).
    #[doc(hidden)]
    fn nan(sign: bool, sig: u64) -> Self;

    /// The default NaN: the negative quiet NaN with no payload (the
    /// "real indefinite").
    fn default_nan() -> Self {
        Self::nan(true, INT | QUIET)
    }

    #[doc(hidden)]
    fn pack(v: Val) -> Self {
        match v {
            Val::Zero { sign } => Self::zero(sign),
            Val::Num { sign, exp, sig, .. } => Self::pack_finite(sign, sig, exp - 63),
            Val::Inf { sign } => Self::inf(sign),
            Val::Nan { sign, sig } => Self::nan(sign, sig),
            Val::Unsupported => Self::default_nan(),
        }
    }
}

/// Bring `sig * 2^q` to the form `m * 2^(bexp - bias - (p - 1))` with
/// `m < 2^p` and bit `p - 1` set unless `bexp` is 0 (denormal).
fn normalize(sig: u64, q: i32, fmt: Fmt) -> (u32, u64) {
    let p = fmt.p as i32;
    let w = 64 - sig.leading_zeros() as i32;
    let shift = p - w;
    let (m, q) = if shift >= 0 {
        (sig << shift, q - shift)
    } else {
        (sig >> -shift, q - shift)
    };
    // Exponent of the leading bit, biased (bias = emax).
    let bexp = q + (p - 1) + fmt.emax;
    if bexp >= 1 {
        (bexp as u32, m)
    } else {
        let s = (1 - bexp).min(63);
        (0, m >> s)
    }
}

/// Binary interchange formats with a hidden integer bit.
macro_rules! binary_format {
    ($t:ident, $bits:ty, $p:expr, $emax:expr) => {
        impl Float for $t {
            const FMT: Fmt = Fmt {
                p: $p,
                emin: 1 - $emax,
                emax: $emax,
            };
            const IS_F80: bool = false;

            fn unpack(self) -> Val {
                const FRAC: u32 = $p - 1;
                const TOTAL: u32 = <$bits>::BITS;
                let sign = self.0 >> (TOTAL - 1) != 0;
                let bexp = ((self.0 >> FRAC) & ((1 << (TOTAL - FRAC - 1)) - 1)) as i32;
                let frac = (self.0 & ((1 << FRAC) - 1)) as u64;
                if bexp == (2 * $emax + 1) {
                    if frac == 0 {
                        Val::Inf { sign }
                    } else {
                        Val::Nan {
                            sign,
                            sig: INT | (frac << (63 - FRAC)),
                        }
                    }
                } else if bexp == 0 {
                    if frac == 0 {
                        Val::Zero { sign }
                    } else {
                        let lz = frac.leading_zeros();
                        Val::Num {
                            sign,
                            exp: (1 - $emax) - (FRAC as i32) + (63 - lz as i32),
                            sig: frac << lz,
                            denormal: true,
                        }
                    }
                } else {
                    Val::Num {
                        sign,
                        exp: bexp - $emax,
                        sig: INT | (frac << (63 - FRAC)),
                        denormal: false,
                    }
                }
            }

            fn pack_finite(sign: bool, sig: u64, q: i32) -> Self {
                const FRAC: u32 = $p - 1;
                const TOTAL: u32 = <$bits>::BITS;
                let (bexp, m) = normalize(sig, q, Self::FMT);
                let s = (sign as $bits) << (TOTAL - 1);
                $t(s | ((bexp as $bits) << FRAC) | ((m as $bits) & ((1 << FRAC) - 1)))
            }

            fn zero(sign: bool) -> Self {
                $t((sign as $bits) << (<$bits>::BITS - 1))
            }

            fn inf(sign: bool) -> Self {
                const FRAC: u32 = $p - 1;
                $t(Self::zero(sign).0 | ((2 * $emax + 1) << FRAC))
            }

            fn nan(sign: bool, sig: u64) -> Self {
                const FRAC: u32 = $p - 1;
                let frac = ((sig & !INT) >> (63 - FRAC)) as $bits;
                $t(Self::inf(sign).0 | frac)
            }
        }
    };
}

binary_format!(F32, u32, 24, 127);
binary_format!(F64, u64, 53, 1023);

impl Float for F80 {
    const FMT: Fmt = Fmt {
        p: 64,
        emin: -16382,
        emax: 16383,
    };
    const IS_F80: bool = true;

    fn unpack(self) -> Val {
        let sign = self.sign();
        let bexp = i32::from(self.exponent());
        let s = self.signif;
        if bexp == 0x7fff {
            if s & INT == 0 {
                Val::Unsupported
            } else if s & !INT == 0 {
                Val::Inf { sign }
            } else {
                Val::Nan { sign, sig: s }
            }
        } else if bexp == 0 {
            if s == 0 {
                Val::Zero { sign }
            } else {
                // Denormal, or pseudo-denormal (integer bit set): both
                // read with the exponent of biased 1.
                let lz = s.leading_zeros();
                Val::Num {
                    sign,
                    exp: -16382 - lz as i32,
                    sig: s << lz,
                    denormal: true,
                }
            }
        } else if s & INT == 0 {
            Val::Unsupported
        } else {
            Val::Num {
                sign,
                exp: bexp - 16383,
                sig: s,
                denormal: false,
            }
        }
    }

    fn pack_finite(sign: bool, sig: u64, q: i32) -> Self {
        let (bexp, m) = normalize(sig, q, Self::FMT);
        F80::new(((sign as u16) << 15) | (bexp as u16 & 0x7fff), m)
    }

    fn zero(sign: bool) -> Self {
        F80::new((sign as u16) << 15, 0)
    }

    fn inf(sign: bool) -> Self {
        F80::new(((sign as u16) << 15) | 0x7fff, INT)
    }

    fn nan(sign: bool, sig: u64) -> Self {
        F80::new(((sign as u16) << 15) | 0x7fff, sig | INT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_round_trips() {
        for bits in [
            0u32,
            0x8000_0000,
            1,
            0x807f_ffff,
            0x0080_0000,
            0x3f80_0000,
            0x7f7f_ffff,
            0x7f80_0000,
            0xff80_0000,
            0x7fc0_0001,
            0x7f80_0001,
            0xffc0_0000,
        ] {
            assert_eq!(F32::pack(F32(bits).unpack()), F32(bits), "{bits:#x}");
        }
    }

    #[test]
    fn f64_round_trips() {
        for bits in [
            0u64,
            1,
            0x000f_ffff_ffff_ffff,
            0x0010_0000_0000_0000,
            0x3ff0_0000_0000_0001,
            0x7fef_ffff_ffff_ffff,
            0xfff0_0000_0000_0000,
            0x7ff0_0000_0000_0001,
            0xfff8_0000_0000_0000,
        ] {
            assert_eq!(F64::pack(F64(bits).unpack()), F64(bits), "{bits:#x}");
        }
    }

    #[test]
    fn f80_round_trips_and_classes() {
        for v in [
            F80::new(0, 0),
            F80::new(0, 1),
            F80::new(0x8000, 0x7fff_ffff_ffff_ffff),
            F80::new(0x3fff, INT),
            F80::new(0x7ffe, u64::MAX),
            F80::new(0xffff, INT),
            F80::new(0x7fff, INT | QUIET | 5),
            F80::new(0x7fff, INT | 5),
        ] {
            assert_eq!(F80::pack(v.unpack()), v, "{v:x?}");
        }
        assert_eq!(F80::new(0x7fff, QUIET).unpack(), Val::Unsupported);
        assert_eq!(F80::new(0x3fff, 1).unpack(), Val::Unsupported);
        // A pseudo-denormal reads as 2^-16382.
        assert_eq!(
            F80::new(0, INT).unpack(),
            Val::Num {
                sign: false,
                exp: -16382,
                sig: INT,
                denormal: true
            }
        );
    }

    #[test]
    fn default_nans() {
        assert_eq!(F32::default_nan(), F32(0xffc0_0000));
        assert_eq!(F64::default_nan(), F64(0xfff8_0000_0000_0000));
        assert_eq!(F80::default_nan(), F80::new(0xffff, 0xc000_0000_0000_0000));
    }
}
