//! The floating-point environment an operation runs in (rounding,
//! precision, DAZ/FTZ, exception masks, NaN rule) and the exception flags
//! it reports.

use std::ops::{BitOr, BitOrAssign};

/// Rounding control. The encoding (0..=3) is the same in the x87 control
/// word (RC) and in MXCSR.RC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    NearestEven,
    Down,
    Up,
    TowardZero,
}

impl Round {
    /// From a two-bit RC field.
    pub fn from_bits(rc: u32) -> Round {
        match rc & 3 {
            0 => Round::NearestEven,
            1 => Round::Down,
            2 => Round::Up,
            _ => Round::TowardZero,
        }
    }
}

/// x87 precision control: the significand width arithmetic results are
/// rounded to. The exponent keeps its 15-bit range whatever the precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Single = 24,
    Double = 53,
    Extended = 64,
}

impl Precision {
    /// From the two-bit PC field of the x87 control word. The reserved
    /// encoding 1 rounds to 64 bits, as the processor does (measured on the
    /// host by the tests of this module).
    pub fn from_pc(pc: u16) -> Precision {
        match pc & 3 {
            0 => Precision::Single,
            2 => Precision::Double,
            _ => Precision::Extended,
        }
    }

    pub fn bits(self) -> u32 {
        self as u32
    }
}

/// Which NaN an operation with NaN operands returns (Intel SDM Vol. 1,
/// Table 4-7); it also tells the x87's store responses from SSE's (PE
/// with an unmasked overflow or underflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NanRule {
    /// SSE: the first source operand's NaN if it is one, else the second's;
    /// quieted either way.
    Sse,
    /// x87: a QNaN rather than an SNaN; of two NaNs of the same kind the
    /// one with the larger significand; quieted.
    X87,
}

/// The exception flags IE, DE, ZE, OE, UE, PE. Their bit positions (0..=5)
/// are those of both the x87 status word and MXCSR, and of the masks in
/// the x87 control word; the MXCSR masks are the same bits shifted by 7.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u8);

impl Flags {
    pub const NONE: Flags = Flags(0);
    /// Invalid operation.
    pub const IE: Flags = Flags(1 << 0);
    /// Denormal operand.
    pub const DE: Flags = Flags(1 << 1);
    /// Divide by zero.
    pub const ZE: Flags = Flags(1 << 2);
    /// Overflow.
    pub const OE: Flags = Flags(1 << 3);
    /// Underflow.
    pub const UE: Flags = Flags(1 << 4);
    /// Precision (inexact result).
    pub const PE: Flags = Flags(1 << 5);
    pub const ALL: Flags = Flags(0x3f);

    pub fn contains(self, f: Flags) -> bool {
        self.0 & f.0 == f.0
    }

    pub fn intersects(self, f: Flags) -> bool {
        self.0 & f.0 != 0
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags of `self` not in `other`.
    pub fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// Everything an operation needs to know besides its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Env {
    pub round: Round,
    /// x87 precision control; applies to the results of the x87
    /// arithmetic operations (add, sub, mul, div, sqrt) in F80 only.
    pub precision: Precision,
    /// Denormal inputs read as zero, without DE (MXCSR.DAZ).
    pub daz: bool,
    /// Tiny results become zero with UE and PE when underflow is masked
    /// (MXCSR.FTZ).
    pub ftz: bool,
    pub nan: NanRule,
    /// The masked exceptions. Masks decide the overflow and underflow
    /// responses: masked, the default result; unmasked, UE whenever the
    /// result is tiny and, for an F80 result, the exponent-adjusted value
    /// the x87 delivers to its registers.
    pub masks: Flags,
}

impl Env {
    /// The environment MXCSR describes.
    pub fn sse(mxcsr: u32) -> Env {
        Env {
            round: Round::from_bits(mxcsr >> 13),
            precision: Precision::Extended,
            daz: mxcsr & (1 << 6) != 0,
            ftz: mxcsr & (1 << 15) != 0,
            nan: NanRule::Sse,
            masks: Flags(((mxcsr >> 7) & 0x3f) as u8),
        }
    }

    /// The environment an x87 control word describes.
    pub fn x87(fcw: u16) -> Env {
        Env {
            round: Round::from_bits(u32::from(fcw >> 10)),
            precision: Precision::from_pc(fcw >> 8),
            daz: false,
            ftz: false,
            nan: NanRule::X87,
            masks: Flags((fcw & 0x3f) as u8),
        }
    }

    /// The same environment with another rounding mode (ROUNDSS's
    /// immediate, the truncating conversions).
    pub fn with_round(self, round: Round) -> Env {
        Env { round, ..self }
    }

    pub fn masked(&self, f: Flags) -> bool {
        self.masks.contains(f)
    }
}

/// One operation's (or one instruction's, when several operations share
/// it) environment and accumulated outcome: the exception flags raised and
/// whether a rounding increased a result's magnitude (the x87's C1 after
/// an inexact result).
#[derive(Clone, Copy, Debug)]
pub struct Fp {
    pub env: Env,
    pub flags: Flags,
    pub rounded_up: bool,
}

impl Fp {
    pub fn new(env: Env) -> Fp {
        Fp {
            env,
            flags: Flags::NONE,
            rounded_up: false,
        }
    }

    pub(crate) fn raise(&mut self, f: Flags) {
        self.flags |= f;
    }
}
