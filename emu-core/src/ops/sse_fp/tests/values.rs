//! Known answers, one or more per sub-family: lane placement, what the
//! destination keeps, predicates, immediates, the MMX transition.

use super::{encode, Setup};
use iced_x86::Code;

/// Run `code` on xmm1 (destination) and xmm2 (source) with `imm`.
fn xmm_op(code: Code, dst: u128, src: u128, imm: u32, mxcsr: u32) -> (u128, u32) {
    let mut s = Setup::new(encode(code, false, 0, imm));
    s.set_xmm(1, dst);
    s.set_xmm(2, src);
    s.fpu.mxcsr = mxcsr;
    let a = s.run();
    assert_eq!(a.fault, None, "{code:?}");
    (a.xmm(1), a.fpu.mxcsr)
}

/// Four singles, lane 0 first.
fn ps(v: [f32; 4]) -> u128 {
    v.iter()
        .enumerate()
        .fold(0, |r, (i, f)| r | u128::from(f.to_bits()) << (32 * i))
}

fn pd(v: [f64; 2]) -> u128 {
    u128::from(v[0].to_bits()) | u128::from(v[1].to_bits()) << 64
}

const MX: u32 = 0x1f80;

#[test]
fn arithmetic_lanes() {
    let (a, b) = (ps([1.0, 2.0, 3.0, 4.0]), ps([10.0, 20.0, 30.0, 40.0]));
    assert_eq!(
        xmm_op(Code::Addps_xmm_xmmm128, a, b, 0, MX).0,
        ps([11.0, 22.0, 33.0, 44.0])
    );
    assert_eq!(
        xmm_op(Code::Subss_xmm_xmmm32, a, b, 0, MX).0,
        ps([-9.0, 2.0, 3.0, 4.0])
    );
    assert_eq!(
        xmm_op(Code::Addsubps_xmm_xmmm128, a, b, 0, MX).0,
        ps([-9.0, 22.0, -27.0, 44.0])
    );
    assert_eq!(
        xmm_op(Code::Haddps_xmm_xmmm128, a, b, 0, MX).0,
        ps([3.0, 7.0, 30.0, 70.0])
    );
    assert_eq!(
        xmm_op(Code::Hsubps_xmm_xmmm128, a, b, 0, MX).0,
        ps([-1.0, -1.0, -10.0, -10.0])
    );
    let (c, d) = (pd([1.5, -2.0]), pd([4.0, 0.25]));
    assert_eq!(
        xmm_op(Code::Haddpd_xmm_xmmm128, c, d, 0, MX).0,
        pd([-0.5, 4.25])
    );
    assert_eq!(
        xmm_op(Code::Sqrtsd_xmm_xmmm64, c, d, 0, MX).0,
        pd([2.0, -2.0])
    );
    // MIN/MAX: the second operand for two zeros and for a NaN.
    let (z, nz) = (ps([0.0; 4]), ps([-0.0; 4]));
    assert_eq!(xmm_op(Code::Minps_xmm_xmmm128, z, nz, 0, MX).0, nz);
    assert_eq!(xmm_op(Code::Maxps_xmm_xmmm128, nz, z, 0, MX).0, z);
    let nan = ps([f32::NAN, 1.0, 1.0, 1.0]);
    let (r, m) = xmm_op(Code::Maxss_xmm_xmmm32, nan, a, 0, MX);
    assert_eq!(
        (r, m & 0x3f),
        (ps([1.0, 1.0, 1.0, 1.0]), 1),
        "IE for a QNaN too"
    );
}

#[test]
fn compare_predicates() {
    let a = ps([1.0, 2.0, f32::NAN, 4.0]);
    let b = ps([1.0, 3.0, 0.0, 3.0]);
    let t = u32::MAX;
    // EQ LT LE UNORD NEQ NLT NLE ORD, lane by lane.
    let want: [[u32; 4]; 8] = [
        [t, 0, 0, 0],
        [0, t, 0, 0],
        [t, t, 0, 0],
        [0, 0, t, 0],
        [0, t, t, t],
        [t, 0, t, t],
        [0, 0, t, t],
        [t, t, 0, t],
    ];
    for (imm, w) in want.iter().enumerate() {
        let (r, m) = xmm_op(Code::Cmpps_xmm_xmmm128_imm8, a, b, imm as u32, MX);
        let w = w
            .iter()
            .enumerate()
            .fold(0u128, |r, (i, &v)| r | u128::from(v) << (32 * i));
        assert_eq!(r, w, "predicate {imm}");
        // The ordered-less predicates signal on a QNaN.
        let ie = u32::from(matches!(imm, 1 | 2 | 5 | 6));
        assert_eq!(m & 0x3f, ie, "predicate {imm}");
    }
}

#[test]
fn conversions_place_lanes() {
    let d = 0x1111_1111_2222_2222_3333_3333_4444_4444u128;
    let two = pd([1.5, -2.5]);
    // CVTPD2PS zeroes the upper half; CVTSD2SS keeps the rest.
    assert_eq!(
        xmm_op(Code::Cvtpd2ps_xmm_xmmm128, d, two, 0, MX).0,
        ps([1.5, -2.5, 0.0, 0.0])
    );
    let r = xmm_op(Code::Cvtsd2ss_xmm_xmmm64, d, two, 0, MX).0;
    assert_eq!(r, d & !0xffff_ffff | u128::from(1.5f32.to_bits()));
    // CVTPD2DQ rounds to nearest even; CVTTPD2DQ truncates.
    assert_eq!(
        xmm_op(Code::Cvtpd2dq_xmm_xmmm128, d, two, 0, MX).0,
        0xffff_fffe_0000_0002
    );
    assert_eq!(
        xmm_op(Code::Cvttpd2dq_xmm_xmmm128, d, two, 0, MX).0,
        0xffff_fffe_0000_0001
    );
    // Out of range: the integer indefinite and IE.
    let (r, m) = xmm_op(
        Code::Cvtps2dq_xmm_xmmm128,
        0,
        ps([3e9, -1.0, 0.5, 2.5]),
        0,
        MX,
    );
    assert_eq!(
        (r, m & 0x3f),
        (0x0000_0002_0000_0000_ffff_ffff_8000_0000, 0x21)
    );
    assert_eq!(
        xmm_op(Code::Cvtdq2pd_xmm_xmmm64, d, 0xffff_ffff_0000_0007, 0, MX).0,
        pd([7.0, -1.0])
    );
}

#[test]
fn general_register_conversions() {
    let mut s = Setup::new(encode(Code::Cvtss2si_r32_xmmm32, false, 0, 0));
    s.set_xmm(2, ps([-2.5, 0.0, 0.0, 0.0]));
    s.regs.rax = u64::MAX;
    assert_eq!(
        s.run().regs.rax,
        0xffff_fffe,
        "a 32-bit result zero-extends"
    );
    let mut s = Setup::new(encode(Code::Cvttsd2si_r64_xmmm64, false, 0, 0));
    s.set_xmm(2, pd([1e19, 0.0]));
    let a = s.run();
    assert_eq!((a.regs.rax, a.fpu.mxcsr & 0x3f), (1 << 63, 1));
    let mut s = Setup::new(encode(Code::Cvtsi2sd_xmm_rm64, false, 0, 0));
    s.set_xmm(1, u128::MAX);
    s.regs.rcx = (-3i64) as u64;
    assert_eq!(
        s.run().xmm(1),
        u128::MAX << 64 | u128::from((-3.0f64).to_bits())
    );
}

#[test]
fn mmx_conversions_and_the_transition() {
    // CVTPI2PS from an MMX register: the x87 state enters MMX mode.
    let mut s = Setup::new(encode(Code::Cvtpi2ps_xmm_mmm64, false, 0, 0));
    s.fpu.fsw = 3 << 11;
    s.set_mm(2, 0xffff_fffd_0000_0005);
    s.set_xmm(1, u128::MAX);
    let a = s.run();
    assert_eq!(a.xmm(1), u128::MAX << 64 | ps([5.0, -3.0, 0.0, 0.0]));
    assert_eq!((a.fpu.fsw >> 11 & 7, a.fpu.ftwx), (0, 0xff));
    // From memory: no transition.
    let mut s = Setup::new(encode(Code::Cvtpi2ps_xmm_mmm64, true, 0, 0));
    s.fpu.fsw = 3 << 11;
    let a = s.run();
    assert_eq!((a.fpu.fsw >> 11 & 7, a.fpu.ftwx), (3, 0));
    // CVTTPD2PI to an MMX register, even when an unmasked exception stops
    // it (measured on an AMD processor).
    let mut s = Setup::new(encode(Code::Cvttpd2pi_mm_xmmm128, false, 0, 0));
    s.set_xmm(2, pd([f64::NAN, 1.0]));
    s.fpu.mxcsr = 0x1f80 & !(1 << 7);
    s.fpu.fsw = 5 << 11;
    let a = s.run();
    assert_eq!(a.fault, Some(19));
    assert_eq!((a.fpu.fsw >> 11 & 7, a.fpu.ftwx), (0, 0xff));
}

#[test]
fn round_and_dot_product() {
    let v = ps([2.5, -2.5, 1.25, -0.5]);
    // Immediate rounding: nearest, down, up, toward zero.
    let want = [
        ps([2.0, -2.0, 1.0, -0.0]),
        ps([2.0, -3.0, 1.0, -1.0]),
        ps([3.0, -2.0, 2.0, -0.0]),
        ps([2.0, -2.0, 1.0, -0.0]),
    ];
    for (imm, w) in want.iter().enumerate() {
        let (r, m) = xmm_op(Code::Roundps_xmm_xmmm128_imm8, 0, v, imm as u32, MX);
        assert_eq!((r, m & 0x3f), (*w, 0x20), "imm {imm}");
    }
    // Bit 2: MXCSR.RC (up); bit 3: no PE.
    let (r, m) = xmm_op(Code::Roundps_xmm_xmmm128_imm8, 0, v, 0xc, MX | 2 << 13);
    assert_eq!((r, m & 0x3f), (want[2], 0));
    // DPPS: products 0, 1, 3 summed into lanes 1 and 2.
    let a = ps([1.0, 2.0, 3.0, 4.0]);
    let b = ps([5.0, 6.0, 7.0, 8.0]);
    assert_eq!(
        xmm_op(Code::Dpps_xmm_xmmm128_imm8, a, b, 0xb6, MX).0,
        ps([0.0, 49.0, 49.0, 0.0])
    );
    assert_eq!(
        xmm_op(
            Code::Dppd_xmm_xmmm128_imm8,
            pd([1.5, 2.0]),
            pd([2.0, 3.0]),
            0x31,
            MX
        )
        .0,
        pd([9.0, 0.0])
    );
}

#[test]
fn ldmxcsr_and_stmxcsr() {
    let mut s = Setup::new(encode(Code::Ldmxcsr_m32, true, 0, 0));
    s.mem[..4].copy_from_slice(&0xffffu32.to_le_bytes());
    let a = s.run();
    assert_eq!((a.fault, a.fpu.mxcsr), (None, 0xffff));
    for bit in [16, 17, 31] {
        s.mem[..4].copy_from_slice(&(0x1f80u32 | 1 << bit).to_le_bytes());
        assert_eq!(s.run().fault, Some(13), "bit {bit}");
    }
    let mut s = Setup::new(encode(Code::Stmxcsr_m32, true, 0, 0));
    s.fpu.mxcsr = 0x9fc1;
    assert_eq!(s.run().mem[..4], 0x9fc1u32.to_le_bytes());
}

#[test]
fn exceptions_of_several_lanes() {
    // Measured with a SIGFPE handler on an AMD host. An unmasked denormal
    // operand in lane 1 reports DE alone, although lane 0 is inexact.
    let third = f32::from_bits(0x3eaa_aaab);
    let denormal = f32::from_bits(1);
    let run = |a: u128, b: u128, mxcsr: u32| {
        let mut s = Setup::new(encode(Code::Mulps_xmm_xmmm128, false, 0, 0));
        s.set_xmm(1, a);
        s.set_xmm(2, b);
        s.fpu.mxcsr = mxcsr;
        let r = s.run();
        (r.fault, r.fpu.mxcsr & 0x3f, r.xmm(1))
    };
    let a = ps([third, third, 1.0, 1.0]);
    let b = ps([third, denormal, 1.0, 1.0]);
    assert_eq!(run(a, b, MX & !(1 << 8)), (Some(19), 0x02, a));
    // Masked DE: the other flags of every lane join it.
    let big = f32::from_bits(0x7f00_0001);
    let a = ps([big, denormal, 1.0, 1.0]);
    let b = ps([2.0, 1.0, 1.0, 1.0]);
    assert_eq!(run(a, b, MX & !(1 << 10)), (Some(19), 0x0a, a));
    assert_eq!(run(a, b, MX).1, 0x2a);
}
