//! The F80 operations under random x87 control words (rounding,
//! precision, masked and unmasked exceptions) against the host's x87:
//! register results, stored memory operands and the status word.

use super::gen::{f80, value, Rng};
use super::host_x87::{self as host, X87Out, SENTINEL};
use super::Report;
use crate::fp::{classify, Class, Cmp, Env, Flags, Fp, F32, F64, F80};

/// FSW bits the comparisons look at.
const C0: u16 = 1 << 8;
const C1: u16 = 1 << 9;
const C2: u16 = 1 << 10;
const C3: u16 = 1 << 14;
const ES: u16 = 1 << 7;
/// The exception flags, ES and C1.
const FLAGS_C1: u16 = 0x3f | ES | C1;
/// ... and the other condition codes.
const ALL_CC: u16 = FLAGS_C1 | C0 | C2 | C3;

/// Mostly every exception masked; sometimes a random set unmasked.
fn random_fcw(rng: &mut Rng) -> u16 {
    let masks = if rng.chance(70) {
        0x3f
    } else {
        rng.below(64) as u16
    };
    masks | 0x40 | ((rng.below(4) as u16) << 8) | ((rng.below(4) as u16) << 10)
}

/// What the host should show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    st0: F80,
    st1: F80,
    mem: u64,
    fsw: u16,
}

/// ST(1) of a result the comparison ignores (a store's).
const DONT_CARE: F80 = F80::new(0x1234, 0x5678);

/// The status word bits an operation's outcome sets: the flags, ES when
/// one is unmasked, and C1 for a result rounded up.
fn status(fcw: u16, flags: Flags, up: bool) -> u16 {
    let f = u16::from(flags.bits());
    let es = if f & !fcw & 0x3f != 0 { ES } else { 0 };
    f | es | if up { C1 } else { 0 }
}

/// An unmasked invalid-operand, denormal or divide-by-zero exception
/// stops the instruction before it writes anything.
fn blocked(fcw: u16, flags: Flags) -> Option<Flags> {
    let pre = Flags(flags.bits() & (Flags::IE | Flags::DE | Flags::ZE).bits());
    (pre.bits() & !(fcw as u8) & 0x3f != 0).then_some(pre)
}

/// One case's inputs: control word, ST(0), ST(1), memory operand.
#[derive(Clone, Copy)]
struct In {
    fcw: u16,
    a: F80,
    b: F80,
    m: u64,
}

type Host = fn(F80, F80, u16, u64) -> X87Out;

/// Compare one instruction over random operands; `mask` selects the FSW
/// bits compared, `mem_in` draws the memory operand.
fn run(
    r: &mut Report,
    name: &str,
    host: Host,
    soft: impl Fn(&mut Fp, In) -> Want,
    mask: u16,
    mem_in: fn(&mut Rng) -> u64,
) {
    let mut rng = Rng::new(name.bytes().fold(7, |h, b| h * 31 + u64::from(b)));
    for _ in 0..super::cases() {
        let a = f80(&mut rng, None);
        let b = f80(&mut rng, Some(a));
        let i = In {
            fcw: random_fcw(&mut rng),
            a,
            b,
            m: mem_in(&mut rng),
        };
        let mut fp = Fp::new(Env::x87(i.fcw));
        let mut want = soft(&mut fp, i);
        r.saw(fp.flags, !(i.fcw as u8) & 0x3f);
        let h = host(a, b, i.fcw, i.m);
        let st1 = if want.st1 == DONT_CARE {
            DONT_CARE
        } else {
            h.st1
        };
        let got = Want {
            st0: h.st0,
            st1,
            mem: h.mem,
            fsw: h.fsw & mask,
        };
        want.fsw &= mask;
        let what = format_args!("a={a:x?} b={b:x?} fcw={:#x} mem={:#x}", i.fcw, i.m);
        r.check(name, want, got, what);
    }
}

fn no_mem(_: &mut Rng) -> u64 {
    SENTINEL
}

/// ST(0) = v, computed from ST(0) and ST(1).
fn st0_result(fp: &Fp, i: In, v: F80) -> Want {
    match blocked(i.fcw, fp.flags) {
        Some(pre) => Want {
            st0: i.a,
            st1: i.b,
            mem: i.m,
            fsw: status(i.fcw, pre, false),
        },
        None => Want {
            st0: v,
            st1: i.b,
            mem: i.m,
            fsw: status(i.fcw, fp.flags, fp.rounded_up),
        },
    }
}

type Op = fn(&mut Fp, F80, F80) -> F80;

#[test]
fn x87_arithmetic_matches_host() {
    let mut r = Report::default();
    let ops: [(&str, Host, Op); 7] = [
        ("fadd", host::fadd, |fp, a, b| fp.add(a, b)),
        ("fsub", host::fsub, |fp, a, b| fp.sub(a, b)),
        ("fmul", host::fmul, |fp, a, b| fp.mul(a, b)),
        ("fdiv", host::fdiv, |fp, a, b| fp.div(a, b)),
        ("fsqrt", host::fsqrt, |fp, a, _| fp.sqrt(a)),
        ("frndint", host::frndint, |fp, a, _| {
            fp.round_int(a, fp.env.round, true)
        }),
        ("fscale", host::fscale, |fp, a, b| fp.scale(a, b)),
    ];
    for (name, h, op) in ops {
        let soft = |fp: &mut Fp, i: In| {
            let v = op(fp, i.a, i.b);
            st0_result(fp, i, v)
        };
        run(&mut r, name, h, soft, FLAGS_C1, no_mem);
    }
    r.finish("x87 arithmetic");
}

/// FPREM/FPREM1: the quotient's low bits in C0, C3, C1; C2 for a partial
/// reduction.
fn rem(fp: &mut Fp, i: In, nearest: bool) -> Want {
    let q = fp.rem(i.a, i.b, nearest);
    let mut w = st0_result(fp, i, q.value);
    if blocked(i.fcw, fp.flags).is_none() {
        let bit = |n: u8, c: u16| if q.quotient & n != 0 { c } else { 0 };
        w.fsw &= !C1;
        w.fsw |= bit(4, C0) | bit(2, C3) | bit(1, C1) | if q.complete { 0 } else { C2 };
    }
    w
}

/// FCOM/FUCOM: the condition codes are set even when an exception is
/// unmasked.
fn cmp(fp: &mut Fp, i: In, signaling: bool) -> Want {
    let codes = match fp.compare(i.a, i.b, signaling) {
        Cmp::Greater => 0,
        Cmp::Less => C0,
        Cmp::Equal => C3,
        Cmp::Unordered => C0 | C2 | C3,
    };
    Want {
        st0: i.a,
        st1: i.b,
        mem: i.m,
        fsw: status(i.fcw, fp.flags, false) | codes,
    }
}

#[test]
fn x87_remainders_extract_and_compares_match_host() {
    let mut r = Report::default();
    run(
        &mut r,
        "fprem",
        host::fprem,
        |fp, i| rem(fp, i, false),
        ALL_CC,
        no_mem,
    );
    run(
        &mut r,
        "fprem1",
        host::fprem1,
        |fp, i| rem(fp, i, true),
        ALL_CC,
        no_mem,
    );
    let fxtract = |fp: &mut Fp, i: In| {
        let (e, s) = fp.extract(i.a);
        match blocked(i.fcw, fp.flags) {
            Some(_) => st0_result(fp, i, i.a),
            None => Want {
                st0: s,
                st1: e,
                mem: i.m,
                fsw: status(i.fcw, fp.flags, false),
            },
        }
    };
    run(&mut r, "fxtract", host::fxtract, fxtract, FLAGS_C1, no_mem);
    let fxam = |_: &mut Fp, i: In| {
        let codes = match classify(i.a) {
            Class::Unsupported => 0,
            Class::Nan => C0,
            Class::Normal => C2,
            Class::Infinity => C2 | C0,
            Class::Zero => C3,
            Class::Denormal => C3 | C2,
        };
        let sign = if i.a.sign() { C1 } else { 0 };
        Want {
            st0: i.a,
            st1: i.b,
            mem: i.m,
            fsw: codes | sign,
        }
    };
    run(&mut r, "fxam", host::fxam, fxam, ALL_CC, no_mem);
    run(
        &mut r,
        "fcom",
        host::fcom,
        |fp, i| cmp(fp, i, true),
        ALL_CC,
        no_mem,
    );
    run(
        &mut r,
        "fucom",
        host::fucom,
        |fp, i| cmp(fp, i, false),
        ALL_CC,
        no_mem,
    );
    r.finish("x87 remainders, FXTRACT, FXAM, compares");
}

/// A store of ST(0) to memory (`width` bits of `v`): nothing is written,
/// and no PE reported, when an exception other than PE is unmasked.
fn stored(fp: &Fp, i: In, v: u64, width: u32) -> Want {
    let unmasked = fp.flags.bits() & !(i.fcw as u8) & 0x1f != 0;
    let keep = u64::MAX.checked_shl(width).unwrap_or(0);
    let mem = if unmasked {
        i.m
    } else {
        (i.m & keep) | v & !keep
    };
    Want {
        st0: i.a,
        st1: DONT_CARE,
        mem,
        fsw: status(i.fcw, fp.flags, fp.rounded_up && !unmasked),
    }
}

/// A load pushing `v`: an unmasked IE stops it, an unmasked DE does not.
fn load(fp: &Fp, i: In, v: F80) -> Want {
    let stopped = fp.flags.contains(Flags::IE) && i.fcw & 1 == 0;
    Want {
        st0: if stopped { i.a } else { v },
        st1: if stopped { i.b } else { i.a },
        mem: i.m,
        fsw: status(i.fcw, fp.flags, false),
    }
}

fn any_int(rng: &mut Rng) -> u64 {
    rng.next() >> rng.below(64)
}

#[test]
fn x87_conversions_match_host() {
    let mut r = Report::default();
    let fst32 = |fp: &mut Fp, i: In| {
        let v = fp.convert::<F80, F32>(i.a).0;
        stored(fp, i, u64::from(v), 32)
    };
    run(&mut r, "fst m32", host::fst32, fst32, FLAGS_C1, no_mem);
    let fst64 = |fp: &mut Fp, i: In| {
        let v = fp.convert::<F80, F64>(i.a).0;
        stored(fp, i, v, 64)
    };
    run(&mut r, "fst m64", host::fst64, fst64, FLAGS_C1, no_mem);
    let int_stores: [(&str, Host, u32, bool); 6] = [
        ("fist m16", host::fist16, 16, false),
        ("fist m32", host::fist32, 32, false),
        ("fistp m64", host::fistp64, 64, false),
        ("fisttp m16", host::fisttp16, 16, true),
        ("fisttp m32", host::fisttp32, 32, true),
        ("fisttp m64", host::fisttp64, 64, true),
    ];
    for (name, h, bits, trunc) in int_stores {
        let soft = |fp: &mut Fp, i: In| {
            let v = fp.to_int(i.a, bits, trunc) as u64;
            stored(fp, i, v, bits)
        };
        run(&mut r, name, h, soft, FLAGS_C1, no_mem);
    }
    let fld32 = |fp: &mut Fp, i: In| {
        let v = fp.convert(F32(i.m as u32));
        load(fp, i, v)
    };
    let f32_mem = |rng: &mut Rng| u64::from(value::<F32>(rng, None).0) | 0xdead_0000_0000_0000;
    run(&mut r, "fld m32", host::fld32, fld32, FLAGS_C1, f32_mem);
    let fld64 = |fp: &mut Fp, i: In| {
        let v = fp.convert(F64(i.m));
        load(fp, i, v)
    };
    let f64_mem = |rng: &mut Rng| value::<F64>(rng, None).0;
    run(&mut r, "fld m64", host::fld64, fld64, FLAGS_C1, f64_mem);
    let int_loads: [(&str, Host, u32); 3] = [
        ("fild m16", host::fild16, 16),
        ("fild m32", host::fild32, 32),
        ("fild m64", host::fild64, 64),
    ];
    for (name, h, bits) in int_loads {
        let soft = |fp: &mut Fp, i: In| {
            let n = (i.m << (64 - bits)) as i64 >> (64 - bits);
            let v = fp.from_int(n);
            load(fp, i, v)
        };
        run(&mut r, name, h, soft, FLAGS_C1, any_int);
    }
    r.finish("x87 conversions");
}
