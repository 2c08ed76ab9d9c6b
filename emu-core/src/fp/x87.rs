//! What only the x87 needs besides the arithmetic: memory operands of
//! another format read exactly ([`widen`]) and the constants of FLDPI and
//! its kind ([`Constant`]).

use super::env::Round;
use super::format::{Float, F80};
use super::round::round_at;

/// `a` as the F80 it converts to exactly, keeping what a conversion
/// would change: a signaling NaN stays signaling (the x87 arithmetic
/// with a memory operand applies its NaN rules to the operand as it is
/// in memory). Raises nothing.
pub fn widen<F: Float>(a: F) -> F80 {
    F80::pack(a.unpack())
}

/// The constants the x87 loads (FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2,
/// FLDLN2, FLDZ), numbered for use as const generic parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Constant {
    One,
    Log2Ten,
    Log2E,
    Pi,
    Log10Two,
    LnTwo,
    Zero,
}

/// π, ln 2, log2 e, log2 10 and log10 2 to 128 bits: the significand
/// (bit 127 the integer bit, truncated) and the exponent. The unit tests
/// derive them again.
pub(crate) const PI: (u128, i32) = (0xc90f_daa2_2168_c234_c4c6_628b_80dc_1cd1, 1);
pub(crate) const LN2: (u128, i32) = (0xb172_17f7_d1cf_79ab_c9e3_b398_03f2_f6af, -1);
pub(crate) const LOG2E: (u128, i32) = (0xb8aa_3b29_5c17_f0bb_be87_fed0_691d_3e88, 0);
const LOG2TEN: (u128, i32) = (0xd49a_784b_cd1b_8afe_492b_f6ff_4daf_db4c, 1);
const LOG10TWO: (u128, i32) = (0x9a20_9a84_fbcf_f798_8f89_59ac_0b7c_9178, -2);

impl Constant {
    /// The constant numbered `i` (as `Constant::X as u8`).
    pub fn from_index(i: u8) -> Constant {
        [
            Constant::One,
            Constant::Log2Ten,
            Constant::Log2E,
            Constant::Pi,
            Constant::Log10Two,
            Constant::LnTwo,
            Constant::Zero,
        ][usize::from(i) % 7]
    }

    /// The constant rounded to 64 bits in direction `round` (the
    /// precision control does not apply; no flag is raised).
    pub fn value(self, round: Round) -> F80 {
        let (sig, exp) = match self {
            Constant::One => return F80::new(0x3fff, 1 << 63),
            Constant::Zero => return F80::ZERO,
            Constant::Log2Ten => LOG2TEN,
            Constant::Log2E => LOG2E,
            Constant::Pi => PI,
            Constant::Log10Two => LOG10TWO,
            Constant::LnTwo => LN2,
        };
        // The truncated bits are not all zero (the constants are
        // irrational): the sticky bit says so.
        let rd = round_at(round, false, sig | 1, exp - 127, exp - 63);
        // A carry out of the 64 bits (none of these constants has one).
        let carry = (rd.r >> 64) as u32;
        F80::pack_finite(false, (rd.r >> carry) as u64, exp - 63 + carry as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_round_by_the_rounding_control() {
        assert_eq!(
            Constant::Pi.value(Round::NearestEven),
            F80::new(0x4000, 0xc90f_daa2_2168_c235)
        );
        assert_eq!(
            Constant::Pi.value(Round::Down),
            F80::new(0x4000, 0xc90f_daa2_2168_c234)
        );
        assert_eq!(
            Constant::Log2Ten.value(Round::NearestEven),
            F80::new(0x4000, 0xd49a_784b_cd1b_8afe)
        );
        assert_eq!(
            Constant::Log2Ten.value(Round::Up),
            F80::new(0x4000, 0xd49a_784b_cd1b_8aff)
        );
        assert_eq!(
            Constant::LnTwo.value(Round::TowardZero),
            F80::new(0x3ffe, 0xb172_17f7_d1cf_79ab)
        );
        assert_eq!(
            Constant::Log10Two.value(Round::NearestEven),
            F80::new(0x3ffd, 0x9a20_9a84_fbcf_f799)
        );
        assert_eq!(
            Constant::Log2E.value(Round::NearestEven),
            F80::new(0x3fff, 0xb8aa_3b29_5c17_f0bc)
        );
    }

    #[test]
    fn widening_keeps_signaling_nans_and_values() {
        use super::super::format::{F32, F64};
        assert_eq!(
            widen(F32(0x7f80_0001)),
            F80::new(0x7fff, 0x8000_0100_0000_0000)
        );
        assert_eq!(widen(F64(0x3ff0_0000_0000_0000)), F80::new(0x3fff, 1 << 63));
        // The smallest single denormal, 2^-149, is a normal F80.
        assert_eq!(widen(F32(1)), F80::new(0x3fff - 149, 1 << 63));
    }
}
