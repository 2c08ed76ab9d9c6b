//! Known answers, for every host (the comparisons with the host FPU run
//! on x86-64 only). The values were computed by hand or taken from the
//! x86-64 host the module was written on.

use crate::fp::{Cmp, Env, Flags, Float, Fp, Round, F32, F64, F80};

const MXCSR: u32 = 0x1f80;
const FCW: u16 = 0x037f;

fn sse() -> Fp {
    Fp::new(Env::sse(MXCSR))
}

fn x87(fcw: u16) -> Fp {
    Fp::new(Env::x87(fcw))
}

#[test]
fn correctly_rounded_basics() {
    let mut fp = sse();
    assert_eq!(
        fp.sqrt(F64(0x4000_0000_0000_0000)),
        F64(0x3ff6_a09e_667f_3bcd)
    );
    assert_eq!(fp.flags, Flags::PE);
    let mut fp = sse();
    assert_eq!(
        fp.add(F32(0x3f80_0000), F32(0x3380_0000)),
        F32(0x3f80_0000),
        "1 + 2^-24 ties to even"
    );
    fp.env.round = Round::Up;
    assert_eq!(fp.add(F32(0x3f80_0000), F32(0x3380_0000)), F32(0x3f80_0001));
    // 1/3 in extended precision, then with the precision control at 24
    // bits: the 15-bit exponent stays.
    let third = |fcw| x87(fcw).div(F80::new(0x3fff, 1 << 63), F80::new(0x4000, 3 << 62));
    assert_eq!(third(FCW), F80::new(0x3ffd, 0xaaaa_aaaa_aaaa_aaab));
    assert_eq!(third(FCW & !0x300), F80::new(0x3ffd, 0xaaaa_ab00_0000_0000));
}

#[test]
fn flush_to_zero_and_denormals_are_zero() {
    // 2^-126 * 0.75: tiny and exact. Without FTZ: a denormal, no flag.
    let (min, three_quarters) = (F32(0x0080_0000), F32(0x3f40_0000));
    let mut fp = sse();
    assert_eq!(fp.mul(min, three_quarters), F32(0x0060_0000));
    assert_eq!(fp.flags, Flags::NONE);
    let mut fp = Fp::new(Env::sse(MXCSR | 0x8000));
    assert_eq!(fp.mul(min, three_quarters), F32(0));
    assert_eq!(fp.flags, Flags::UE | Flags::PE);
    // DAZ: a denormal operand reads as zero, without DE.
    let mut fp = Fp::new(Env::sse(MXCSR | 0x40));
    assert_eq!(fp.add(F32(0x8000_0001), F32(0)), F32(0));
    assert_eq!(fp.flags, Flags::NONE);
    let mut fp = sse();
    assert_eq!(fp.add(F32(0x8000_0001), F32(0)), F32(0x8000_0001));
    assert_eq!(fp.flags, Flags::DE);
}

#[test]
fn nan_rules() {
    let (qa, qb, snan) = (F32(0x7fc0_0001), F32(0xffc0_0002), F32(0x7f80_0003));
    let mut fp = sse();
    assert_eq!(fp.add(qa, qb), qa, "SSE: the first operand's NaN");
    assert_eq!(fp.add(F32(0x3f80_0000), snan), F32(0x7fc0_0003), "quieted");
    assert_eq!(fp.flags, Flags::IE);
    let mut fp = sse();
    assert_eq!(
        fp.sub(F32(0x7f80_0000), F32(0x7f80_0000)),
        F32(0xffc0_0000),
        "default NaN"
    );
    // x87: QNaN over SNaN, else the larger significand, else the positive.
    let q = |s: u16, sig: u64| F80::new(s | 0x7fff, sig);
    let mut fp = x87(FCW);
    assert_eq!(
        fp.add(q(0, 0xc000_0000_0000_0001), q(0, 0xc000_0000_0000_0002)),
        q(0, 0xc000_0000_0000_0002)
    );
    assert_eq!(
        fp.add(q(0, 0xc000_0000_0000_0001), q(0, 0xa000_0000_0000_0000)),
        q(0, 0xc000_0000_0000_0001)
    );
    assert_eq!(
        fp.add(
            q(0x8000, 0xc000_0000_0000_0000),
            q(0, 0xc000_0000_0000_0000)
        ),
        q(0, 0xc000_0000_0000_0000)
    );
    // Unsupported encodings are invalid operands.
    let mut fp = x87(FCW);
    assert_eq!(
        fp.add(F80::new(0x3fff, 1), F80::new(0x3fff, 1 << 63)),
        F80::default_nan()
    );
    assert_eq!(fp.flags, Flags::IE);
}

#[test]
fn x87_overflow_responses() {
    let (max_pow, two) = (F80::new(0x7ffe, 1 << 63), F80::new(0x4000, 1 << 63));
    let mut fp = x87(FCW);
    assert_eq!(fp.mul(max_pow, two), F80::inf(false));
    assert_eq!(fp.flags, Flags::OE | Flags::PE);
    assert!(fp.rounded_up);
    let mut fp = x87(FCW & !0x0c00 | 0x0c00);
    assert_eq!(
        fp.mul(max_pow, two),
        F80::new(0x7ffe, u64::MAX),
        "toward zero: the largest finite"
    );
    // Unmasked: the result with its exponent reduced by 24576.
    let mut fp = x87(FCW & !0x08);
    assert_eq!(fp.mul(max_pow, two), F80::new(0x7fff - 24576, 1 << 63));
    assert_eq!(fp.flags, Flags::OE);
}

#[test]
fn remainders() {
    // Exponent difference 64: a partial reduction by 32 places (C2 = 1).
    let a = F80::new(0x3fff + 64, 0xb123_4567_89ab_cdef);
    let b = F80::new(0x3fff, 0xc000_0000_0000_0001);
    let r = x87(FCW).rem(a, b, false);
    assert_eq!(r.value, F80::new(0x401f, 0x89ab_cdee_13d0_f8cc));
    assert!(!r.complete);
    // 7 rem 2 = 1 (quotient 3); IEEE remainder 7 rem 2 = -1 (quotient 4).
    let (seven, two) = (
        F80::new(0x4001, 0xe000_0000_0000_0000),
        F80::new(0x4000, 1 << 63),
    );
    let r = x87(FCW).rem(seven, two, false);
    assert_eq!(
        (r.value, r.quotient, r.complete),
        (F80::new(0x3fff, 1 << 63), 3, true)
    );
    let r = x87(FCW).rem(seven, two, true);
    assert_eq!((r.value, r.quotient), (F80::new(0xbfff, 1 << 63), 4));
}

#[test]
fn integers_and_compares() {
    let mut fp = sse();
    assert_eq!(
        fp.to_int(F64(0x41e0_0000_0000_0000), 32, false),
        i64::from(i32::MIN),
        "2^31: indefinite"
    );
    assert_eq!(fp.flags, Flags::IE);
    let mut fp = sse();
    assert_eq!(
        fp.to_int(F64(0xc1e0_0000_0000_0000), 32, false),
        i64::from(i32::MIN),
        "-2^31 fits"
    );
    assert_eq!(
        fp.to_int(F32(0x3fc0_0000), 32, false),
        2,
        "1.5 to nearest even"
    );
    assert_eq!(fp.to_int(F32(0x3fc0_0000), 32, true), 1);
    assert_eq!(fp.flags, Flags::PE);
    assert_eq!(fp.compare(F32(0x8000_0000), F32(0), false), Cmp::Equal);
    assert_eq!(fp.compare(F32(0x7fc0_0000), F32(0), false), Cmp::Unordered);
    assert_eq!(fp.flags, Flags::PE);
    assert_eq!(fp.compare(F32(0x7fc0_0000), F32(0), true), Cmp::Unordered);
    assert_eq!(fp.flags, Flags::PE | Flags::IE);
    let mut fp = x87(FCW);
    assert_eq!(
        fp.from_int::<F80>(-3),
        F80::new(0xc000, 0xc000_0000_0000_0000)
    );
    let (e, s) = fp.extract(F80::new(0x4005, 0xc000_0000_0000_0000));
    assert_eq!(
        (e, s),
        (
            F80::new(0x4001, 0xc000_0000_0000_0000),
            F80::new(0x3fff, 0xc000_0000_0000_0000)
        )
    );
    assert_eq!(fp.scale(s, e), F80::new(0x4005, 0xc000_0000_0000_0000));
    assert_eq!(fp.flags, Flags::NONE);
}

#[test]
fn unmasked_sse_overflow_and_underflow_flags() {
    // Measured with a SIGFPE handler on an AMD host: PE joins OE or UE
    // when the result is inexact.
    let unmasked = |bit: u32| Fp::new(Env::sse(MXCSR & !(1 << bit)));
    let mut fp = unmasked(10);
    fp.mul(F32(0x7f7f_ffff), F32(0x3fff_ffff));
    assert_eq!(fp.flags, Flags::OE | Flags::PE);
    let mut fp = unmasked(10);
    fp.mul(F32(0x7f00_0001), F32(0x4000_0000));
    assert_eq!(fp.flags, Flags::OE, "exact overflow");
    let mut fp = unmasked(11);
    fp.mul(F32(0x00ff_ffff), F32(0x3eaa_aaab));
    assert_eq!(fp.flags, Flags::UE | Flags::PE);
    let mut fp = unmasked(11);
    fp.mul(F32(0x0080_0002), F32(0x3f00_0000));
    assert_eq!(fp.flags, Flags::UE, "exact tiny result");
}
