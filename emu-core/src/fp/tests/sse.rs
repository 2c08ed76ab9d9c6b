//! The SSE-side operations (F32 and F64 under MXCSR) against the host's
//! scalar SSE instructions: random operands and random rounding, DAZ and
//! FTZ, comparing result bits and MXCSR flags.

use super::gen::{value, Rng};
use super::host_sse as host;
use super::Report;
use crate::fp::{Cmp, Env, Float, Fp, Round, F32, F64};

/// Test access to the bits of the two SSE formats.
trait Bits: Float {
    const DOUBLE: bool;
    fn bits(self) -> u64;
}

impl Bits for F32 {
    const DOUBLE: bool = false;
    fn bits(self) -> u64 {
        u64::from(self.0)
    }
}

impl Bits for F64 {
    const DOUBLE: bool = true;
    fn bits(self) -> u64 {
        self.0
    }
}

/// Random rounding, DAZ and FTZ; every exception masked.
fn random_mxcsr(rng: &mut Rng) -> u32 {
    let mut m = 0x1f80 | ((rng.below(4) as u32) << 13);
    if rng.chance(25) {
        m |= 1 << 6;
    }
    if rng.chance(25) {
        m |= 1 << 15;
    }
    m
}

/// One case's outcome: the soft result, the host's result (masked to the
/// width compared) and MXCSR, and the inputs (for the report).
struct Case {
    soft: u64,
    host: u64,
    host_mx: u32,
    inputs: [u64; 2],
}

/// Run the random cases of one instruction: `case` draws operands, runs
/// both sides under the MXCSR given (and the `Fp` built from it).
fn each_case(r: &mut Report, name: &str, mut case: impl FnMut(&mut Rng, &mut Fp, u32) -> Case) {
    let mut rng = Rng::new(name.bytes().fold(11, |h, b| h * 31 + u64::from(b)));
    for _ in 0..super::cases() {
        let mx = random_mxcsr(&mut rng);
        let mut fp = Fp::new(Env::sse(mx));
        let c = case(&mut rng, &mut fp, mx);
        r.saw(fp.flags, 0);
        let soft_mx = mx | u32::from(fp.flags.bits());
        let what = format_args!("inputs={:#x?} mxcsr={mx:#x}", c.inputs);
        r.check(name, (c.soft, soft_mx), (c.host, c.host_mx), what);
    }
}

type HostBin = fn(u64, u64, u32) -> (u64, u32);
type HostUnary = fn(u64, u32) -> (u64, u32);

/// A binary operation (or a unary one on the second operand).
fn binary<F: Bits>(r: &mut Report, name: &str, soft: fn(&mut Fp, F, F) -> F, host: HostBin) {
    let mask = u64::MAX >> if F::DOUBLE { 0 } else { 32 };
    each_case(r, name, |rng, fp, mx| {
        let a: F = value(rng, None);
        let b: F = value(rng, Some(a));
        let (h, host_mx) = host(a.bits(), b.bits(), mx);
        Case {
            soft: soft(fp, a, b).bits(),
            host: h & mask,
            host_mx,
            inputs: [a.bits(), b.bits()],
        }
    });
}

#[test]
fn sse_arithmetic_matches_host() {
    let mut r = Report::default();
    type Op<F> = fn(&mut Fp, F, F) -> F;
    let singles: [(&str, Op<F32>, HostBin); 7] = [
        ("addss", |fp, a, b| fp.add(a, b), host::addss),
        ("subss", |fp, a, b| fp.sub(a, b), host::subss),
        ("mulss", |fp, a, b| fp.mul(a, b), host::mulss),
        ("divss", |fp, a, b| fp.div(a, b), host::divss),
        ("sqrtss", |fp, _, b| fp.sqrt(b), host::sqrtss),
        ("minss", |fp, a, b| fp.min(a, b), host::minss),
        ("maxss", |fp, a, b| fp.max(a, b), host::maxss),
    ];
    let doubles: [(&str, Op<F64>, HostBin); 7] = [
        ("addsd", |fp, a, b| fp.add(a, b), host::addsd),
        ("subsd", |fp, a, b| fp.sub(a, b), host::subsd),
        ("mulsd", |fp, a, b| fp.mul(a, b), host::mulsd),
        ("divsd", |fp, a, b| fp.div(a, b), host::divsd),
        ("sqrtsd", |fp, _, b| fp.sqrt(b), host::sqrtsd),
        ("minsd", |fp, a, b| fp.min(a, b), host::minsd),
        ("maxsd", |fp, a, b| fp.max(a, b), host::maxsd),
    ];
    for (name, soft, h) in singles {
        binary(&mut r, name, soft, h);
    }
    for (name, soft, h) in doubles {
        binary(&mut r, name, soft, h);
    }
    r.finish("SSE arithmetic");
}

#[test]
fn sse_conversions_match_host() {
    let mut r = Report::default();
    // The destination keeps its upper bits: the F64 result of CVTSS2SD
    // replaces all of the compared part; CVTSD2SS replaces the low half.
    let cvtss2sd: fn(&mut Fp, F64, F64) -> F64 = |fp, _, b| fp.convert(F32(b.0 as u32));
    binary(&mut r, "cvtss2sd", cvtss2sd, |a, b, m| {
        host::cvtss2sd(a, b & 0xffff_ffff, m)
    });
    let cvtsd2ss: fn(&mut Fp, F64, F64) -> F64 =
        |fp, a, b| F64(a.0 & !0xffff_ffff | u64::from(fp.convert::<F64, F32>(b).0));
    binary(&mut r, "cvtsd2ss", cvtsd2ss, host::cvtsd2ss);
    let singles: [(&str, u32, bool, HostUnary); 4] = [
        ("cvtss2si32", 32, false, host::cvtss2si32),
        ("cvtss2si64", 64, false, host::cvtss2si64),
        ("cvttss2si32", 32, true, host::cvttss2si32),
        ("cvttss2si64", 64, true, host::cvttss2si64),
    ];
    let doubles: [(&str, u32, bool, HostUnary); 4] = [
        ("cvtsd2si32", 32, false, host::cvtsd2si32),
        ("cvtsd2si64", 64, false, host::cvtsd2si64),
        ("cvttsd2si32", 32, true, host::cvttsd2si32),
        ("cvttsd2si64", 64, true, host::cvttsd2si64),
    ];
    for (name, bits, trunc, h) in singles {
        to_int::<F32>(&mut r, name, bits, trunc, h);
    }
    for (name, bits, trunc, h) in doubles {
        to_int::<F64>(&mut r, name, bits, trunc, h);
    }
    from_int::<F32>(&mut r, "cvtsi2ss32", 32, host::cvtsi2ss32);
    from_int::<F32>(&mut r, "cvtsi2ss64", 64, host::cvtsi2ss64);
    from_int::<F64>(&mut r, "cvtsi2sd32", 32, host::cvtsi2sd32);
    from_int::<F64>(&mut r, "cvtsi2sd64", 64, host::cvtsi2sd64);
    r.finish("SSE conversions");
}

fn to_int<F: Bits>(r: &mut Report, name: &str, bits: u32, trunc: bool, host: HostUnary) {
    let mask = u64::MAX >> (64 - bits);
    each_case(r, name, |rng, fp, mx| {
        let a: F = value(rng, None);
        let (h, host_mx) = host(a.bits(), mx);
        Case {
            soft: fp.to_int(a, bits, trunc) as u64 & mask,
            host: h & mask,
            host_mx,
            inputs: [a.bits(), 0],
        }
    });
}

fn from_int<F: Bits>(r: &mut Report, name: &str, bits: u32, host: HostUnary) {
    let mask = u64::MAX >> if F::DOUBLE { 0 } else { 32 };
    each_case(r, name, |rng, fp, mx| {
        let n = (rng.next() >> rng.below(64)) as i64;
        let n = if rng.bool() { n.wrapping_neg() } else { n };
        let n = if bits == 32 { i64::from(n as i32) } else { n };
        let (h, host_mx) = host(n as u64, mx);
        Case {
            soft: fp.from_int::<F>(n).bits(),
            host: h & mask,
            host_mx,
            inputs: [n as u64, 0],
        }
    });
}

#[test]
fn sse_round_and_compare_match_host() {
    let mut r = Report::default();
    round::<F32>(&mut r, "roundss");
    round::<F64>(&mut r, "roundsd");
    compare::<F32>(&mut r, "comiss", true, host::comiss);
    compare::<F32>(&mut r, "ucomiss", false, host::ucomiss);
    compare::<F64>(&mut r, "comisd", true, host::comisd);
    compare::<F64>(&mut r, "ucomisd", false, host::ucomisd);
    r.finish("SSE rounding and compares");
}

/// ROUNDSS/ROUNDSD with every immediate: bits 0..=1 the rounding, bit 2
/// "use MXCSR.RC", bit 3 "no PE".
fn round<F: Bits>(r: &mut Report, name: &str) {
    let mask = u64::MAX >> if F::DOUBLE { 0 } else { 32 };
    each_case(r, name, |rng, fp, mx| {
        let a: F = value(rng, None);
        let imm = rng.below(16) as u8;
        let mode = if imm & 4 != 0 {
            fp.env.round
        } else {
            Round::from_bits(u32::from(imm))
        };
        let (h, host_mx) = host::round_imm(F::DOUBLE, imm, a.bits(), mx);
        Case {
            soft: fp.round_int(a, mode, imm & 8 == 0).bits(),
            host: h & mask,
            host_mx,
            inputs: [a.bits(), u64::from(imm)],
        }
    });
}

/// COMISS/UCOMISS: ZF, PF, CF (and OF, SF, AF cleared).
fn compare<F: Bits>(r: &mut Report, name: &str, signaling: bool, host: HostBin) {
    each_case(r, name, |rng, fp, mx| {
        let a: F = value(rng, None);
        let b: F = if rng.chance(10) {
            a
        } else {
            value(rng, Some(a))
        };
        let soft = match fp.compare(a, b, signaling) {
            Cmp::Unordered => 0x45,
            Cmp::Less => 0x01,
            Cmp::Equal => 0x40,
            Cmp::Greater => 0x00,
        };
        let (h, host_mx) = host(a.bits(), b.bits(), mx);
        Case {
            soft,
            host: h & 0x8d5,
            host_mx,
            inputs: [a.bits(), b.bits()],
        }
    });
}
