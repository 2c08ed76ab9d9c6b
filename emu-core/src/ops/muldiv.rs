//! Integer multiply and divide: MUL, IMUL, DIV, IDIV, and the flagless
//! BMI2 MULX.
//!
//! Undefined flags, as the processors of the vCPU's vendor leave them
//! (checked against the host by the tests below, on Intel and AMD hosts):
//! - after MUL/IMUL (every form), Intel processors set SF to the sign of the
//!   low half of the product and PF to its low byte's parity, and clear ZF
//!   and AF; AMD processors leave SF, ZF, AF and PF unchanged;
//! - after DIV/IDIV, Intel processors change no flag; AMD processors keep
//!   CF and OF, clear SF, ZF and PF and set AF.

use crate::cpu::flags::{mask, AF, ARITH, CF, OF, PF, SF, ZF};
use crate::cpu::model::Vendor;
use crate::cpu::Flags;
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::ops::mov::sext;
use crate::ops::shift::vex_allowed;
use iced_x86::{Code, Instruction, Mnemonic};

/// Product of two `size`-byte values: (low half, high half, overflow).
/// Overflow (CF = OF) means the high half carries significant bits: non-zero
/// for unsigned, not the sign extension of the low half for signed.
fn mul(signed: bool, size: u8, a: u64, b: u64) -> (u64, u64, bool) {
    let bits = size as u32 * 8;
    let m = mask(size);
    if signed {
        let p = i128::from(sext(a, size) as i64) * i128::from(sext(b, size) as i64);
        let lo = p as u64 & m;
        let ovf = p != i128::from(sext(lo, size) as i64);
        (lo, (p >> bits) as u64 & m, ovf)
    } else {
        let p = u128::from(a & m) * u128::from(b & m);
        let hi = (p >> bits) as u64 & m;
        (p as u64 & m, hi, hi != 0)
    }
}

/// Quotient and remainder of the dividend `hi:lo` (twice `size` bytes) by
/// `d`, or `None` when the divisor is zero or the quotient does not fit
/// (#DE). The quotient truncates toward zero; the remainder has the
/// dividend's sign.
fn div(signed: bool, size: u8, hi: u64, lo: u64, d: u64) -> Option<(u64, u64)> {
    let bits = size as u32 * 8;
    let m = mask(size);
    let n = (u128::from(hi & m) << bits) | u128::from(lo & m);
    if signed {
        let sh = 128 - 2 * bits;
        let n = ((n << sh) as i128) >> sh;
        let d = i128::from(sext(d, size) as i64);
        // checked_div fails on a zero divisor and on i128::MIN / -1.
        let q = n.checked_div(d)?;
        let r = n.checked_rem(d)?;
        let half = 1i128 << (bits - 1);
        if q < -half || q >= half {
            return None;
        }
        Some((q as u64 & m, r as u64 & m))
    } else {
        let d = u128::from(d & m);
        let q = n.checked_div(d)?;
        if q > u128::from(m) {
            return None;
        }
        Some((q as u64, (n % d) as u64))
    }
}

/// The implicit double-width accumulator as (high, low): AH:AL for byte
/// operands, else rDX:rAX.
fn acc(x: &Exec, size: u8) -> (u64, u64) {
    if size == 1 {
        let ax = x.cpu.gpr[0];
        ((ax >> 8) & 0xff, ax & 0xff)
    } else {
        (x.cpu.gpr[2] & mask(size), x.cpu.gpr[0] & mask(size))
    }
}

fn set_acc(x: &mut Exec, size: u8, hi: u64, lo: u64) {
    if size == 1 {
        x.set_gpr(0, 2, (hi << 8) | lo);
    } else {
        x.set_gpr(0, size, lo);
        x.set_gpr(2, size, hi);
    }
}

/// The flags of a MUL/IMUL whose product's low half (what the destination
/// or rAX gets) is `lo`: CF = OF = `ovf`, the others as `vendor`'s
/// processors leave them (see the module).
#[inline]
pub(crate) fn set_mul_flags(flags: &mut Flags, vendor: Vendor, size: u8, lo: u64, ovf: bool) {
    match vendor {
        Vendor::Intel => flags.lazy_mul(size, lo, ovf),
        Vendor::Amd => flags.set_arith(CF | OF, if ovf { CF | OF } else { 0 }),
    }
}

/// The flags of a DIV/IDIV that did not fault, as `vendor`'s processors
/// leave them (see the module).
#[inline]
fn set_div_flags(flags: &mut Flags, vendor: Vendor) {
    if vendor == Vendor::Amd {
        flags.set_arith(SF | ZF | AF | PF, AF);
    }
}

fn mul_acc(x: &mut Exec, ins: &Instruction, signed: bool) -> ExecResult {
    let size = x.osize(ins);
    let b = x.read_op(ins, 0)?;
    let a = acc(x, size).1;
    let (lo, hi, ovf) = mul(signed, size, a, b);
    set_acc(x, size, hi, lo);
    set_mul_flags(&mut x.cpu.flags, x.sys.gate.vendor, size, lo, ovf);
    Ok(())
}

/// MUL — Unsigned Multiply
fn mul1(x: &mut Exec, ins: &Instruction) -> ExecResult {
    mul_acc(x, ins, false)
}

/// IMUL — Signed Multiply (one operand: rDX:rAX = rAX * r/m, AX for bytes).
fn imul1(x: &mut Exec, ins: &Instruction) -> ExecResult {
    mul_acc(x, ins, true)
}

fn imul_to(x: &mut Exec, ins: &Instruction, a: u64, b: u64) -> ExecResult {
    let size = x.osize(ins);
    let (lo, _, ovf) = mul(true, size, a, b);
    x.write_op(ins, 0, lo)?;
    set_mul_flags(&mut x.cpu.flags, x.sys.gate.vendor, size, lo, ovf);
    Ok(())
}

/// IMUL — Signed Multiply (two operands: r = r * r/m, truncated).
fn imul2(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let a = x.read_op(ins, 0)?;
    let b = x.read_op(ins, 1)?;
    imul_to(x, ins, a, b)
}

/// IMUL — Signed Multiply (three operands: r = r/m * imm, truncated).
fn imul3(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let a = x.read_op(ins, 1)?;
    let b = x.read_op(ins, 2)?;
    imul_to(x, ins, a, b)
}

fn div_acc(x: &mut Exec, ins: &Instruction, signed: bool) -> ExecResult {
    let size = x.osize(ins);
    let d = x.read_op(ins, 0)?;
    let (hi, lo) = acc(x, size);
    let (q, r) = div(signed, size, hi, lo, d).ok_or(Exception::de())?;
    set_acc(x, size, r, q);
    set_div_flags(&mut x.cpu.flags, x.sys.gate.vendor);
    Ok(())
}

/// DIV — Unsigned Divide (#DE on a zero divisor or a quotient too wide).
fn div1(x: &mut Exec, ins: &Instruction) -> ExecResult {
    div_acc(x, ins, false)
}

/// IDIV — Signed Divide (#DE also for the most negative dividend by -1).
fn idiv1(x: &mut Exec, ins: &Instruction) -> ExecResult {
    div_acc(x, ins, true)
}

/// MULX — Unsigned Multiply Without Affecting Flags. rDX times r/m; when
/// both destinations are one register it gets the high half.
fn mulx(x: &mut Exec, ins: &Instruction) -> ExecResult {
    vex_allowed(x)?;
    let size = x.osize(ins);
    let a = x.cpu.gpr[2];
    let b = x.read_op(ins, 2)?;
    let (lo, hi, _) = mul(false, size, a, b);
    x.write_op(ins, 1, lo)?;
    x.write_op(ins, 0, hi)
}

/// Number of explicit operands of an IMUL form, from its `Code` name
/// (`Imul_rm8`, `Imul_r16_rm16`, `Imul_r16_rm16_imm8`).
fn imul_operands(c: Code) -> usize {
    format!("{c:?}").matches('_').count()
}

pub(crate) fn register(t: &mut TableBuilder) {
    let mul_undef = SF | ZF | AF | PF;
    t.mnemonic(Mnemonic::Mul, mul1, mul_undef);
    t.mnemonic_where(Mnemonic::Imul, imul1, mul_undef, |c| imul_operands(c) == 1);
    t.mnemonic_where(Mnemonic::Imul, imul2, mul_undef, |c| imul_operands(c) == 2);
    t.mnemonic_where(Mnemonic::Imul, imul3, mul_undef, |c| imul_operands(c) == 3);
    t.mnemonic(Mnemonic::Div, div1, ARITH);
    t.mnemonic(Mnemonic::Idiv, idiv1, ARITH);
    t.vex(Mnemonic::Mulx, mulx, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::flags::{CF, OF};

    /// The status flags MUL/IMUL leave on `vendor`, over flags `before`.
    fn mul_flags(vendor: Vendor, before: u64, size: u8, lo: u64, ovf: bool) -> u64 {
        let mut f = Flags::default();
        f.set(before);
        set_mul_flags(&mut f, vendor, size, lo, ovf);
        f.get() & ARITH
    }

    /// The status flags DIV/IDIV leave on `vendor`, over flags `before`.
    fn div_flags(vendor: Vendor, before: u64) -> u64 {
        let mut f = Flags::default();
        f.set(before);
        set_div_flags(&mut f, vendor);
        f.get() & ARITH
    }

    #[test]
    fn imul_forms_split_by_operand_count() {
        assert_eq!(imul_operands(Code::Imul_rm64), 1);
        assert_eq!(imul_operands(Code::Imul_r32_rm32), 2);
        assert_eq!(imul_operands(Code::Imul_r16_rm16_imm8), 3);
        assert_eq!(imul_operands(Code::Imul_r64_rm64_imm32), 3);
    }

    #[test]
    fn mul_overflow() {
        assert_eq!(mul(false, 1, 0x10, 0x10), (0x00, 0x01, true));
        assert_eq!(mul(false, 1, 0x0f, 0x11), (0xff, 0x00, false));
        assert_eq!(mul(false, 8, u64::MAX, u64::MAX), (1, u64::MAX - 1, true));
        // Signed: the high half being all sign bits is not overflow.
        assert_eq!(mul(true, 1, 0xff, 0x80), (0x80, 0x00, true));
        assert_eq!(mul(true, 1, 0xff, 0x7f), (0x81, 0xff, false));
        assert_eq!(mul(true, 1, 0x80, 0x80), (0x00, 0x40, true));
        assert_eq!(mul(true, 2, 0xffff, 0xffff), (1, 0, false));
        assert_eq!(
            mul(true, 4, 0x8000_0000, 1),
            (0x8000_0000, 0xffff_ffff, false)
        );
        assert!(mul(true, 4, 0x8000_0000, 0xffff_ffff).2);
        assert_eq!(mul(true, 8, 1 << 63, u64::MAX), (1 << 63, 0, true));
        assert_eq!(mul(true, 8, 1 << 62, 2), (1 << 63, 0, true));
        assert_eq!(
            mul(true, 8, 1 << 62, u64::MAX - 1),
            (1 << 63, u64::MAX, false)
        );
    }

    #[test]
    fn mul_flag_values() {
        let flags = |size, lo, ovf| mul_flags(Vendor::Intel, ZF | AF, size, lo, ovf);
        assert_eq!(flags(1, 0, false), PF);
        assert_eq!(flags(4, 0x8000_0003, true), SF | CF | OF | PF);
        assert_eq!(flags(8, 0x100, false), PF);
        assert_eq!(flags(2, 0x80, false), 0);
        // A zero product: ZF stays clear, PF is set, in every width.
        for size in [1, 2, 4, 8] {
            assert_eq!(flags(size, 0, false), PF, "size {size}");
            assert_eq!(flags(size, 0, true), PF | CF | OF, "size {size}");
        }
        // AMD: SF, ZF, AF and PF as they were.
        let amd = |before, size, lo, ovf| mul_flags(Vendor::Amd, before, size, lo, ovf);
        assert_eq!(amd(ZF | AF, 1, 0, false), ZF | AF);
        assert_eq!(amd(SF | PF | CF, 4, 0x8000_0003, false), SF | PF);
        assert_eq!(amd(0, 8, 0, true), CF | OF);
    }

    #[test]
    fn div_flag_values() {
        assert_eq!(div_flags(Vendor::Intel, ARITH), ARITH);
        assert_eq!(div_flags(Vendor::Intel, 0), 0);
        // AMD: CF and OF kept, AF set, SF, ZF and PF cleared.
        assert_eq!(div_flags(Vendor::Amd, ARITH), CF | OF | AF);
        assert_eq!(div_flags(Vendor::Amd, SF | PF), AF);
    }

    #[test]
    fn div_overflow() {
        // Zero divisor.
        assert_eq!(div(false, 4, 0, 5, 0), None);
        assert_eq!(div(true, 8, 0, 5, 0), None);
        // Quotient too wide.
        assert_eq!(div(false, 1, 1, 0, 1), None);
        assert_eq!(div(false, 1, 0, 0xff, 1), Some((0xff, 0)));
        assert_eq!(div(false, 8, 1, 0, 2), Some((1 << 63, 0)));
        assert_eq!(div(false, 8, 2, 0, 2), None);
        // The most negative dividend by -1, every width.
        assert_eq!(div(true, 1, 0xff, 0x80, 0xff), None);
        assert_eq!(div(true, 2, 0xffff, 0x8000, 0xffff), None);
        assert_eq!(div(true, 4, 0xffff_ffff, 0x8000_0000, 0xffff_ffff), None);
        assert_eq!(div(true, 8, u64::MAX, 1 << 63, u64::MAX), None);
        assert_eq!(div(true, 8, 1 << 63, 0, u64::MAX), None);
        // The most negative quotient itself fits.
        assert_eq!(div(true, 1, 0xff, 0x00, 2), Some((0x80, 0)));
        assert_eq!(div(true, 1, 0x00, 0x80, 0xff), Some((0x80, 0)));
        assert_eq!(div(true, 1, 0x01, 0x00, 2), None);
        assert_eq!(div(true, 8, u64::MAX, 0, 2), Some((1 << 63, 0)));
    }

    #[test]
    fn div_rounding() {
        // -7 / 2 = -3 remainder -1; 7 / -2 = -3 remainder 1.
        assert_eq!(div(true, 2, 0xffff, 0xfff9, 2), Some((0xfffd, 0xffff)));
        assert_eq!(div(true, 2, 0, 7, 0xfffe), Some((0xfffd, 1)));
        assert_eq!(div(false, 4, 3, 7, 0x1_0000), Some((0x3_0000, 7)));
        assert_eq!(div(false, 4, 0x1234, 0, 0x1_0000_0000), None);
    }

    #[cfg(target_arch = "x86_64")]
    mod host {
        use super::super::*;
        use super::{div_flags, mul_flags};
        use std::arch::asm;

        type Hw = fn(u64, u64, u64, u64) -> (u64, u64, u64);

        macro_rules! hw {
            ($ins:expr) => {{
                fn f(a: u64, d: u64, s: u64, fl: u64) -> (u64, u64, u64) {
                    let (mut a, mut d, mut fl) = (a, d, fl | 2);
                    // SAFETY: only registers and the flags change; the
                    // push/pop pair is balanced. Callers avoid #DE.
                    unsafe {
                        asm!("push {f}", "popfq", $ins, "pushfq", "pop {f}",
                            f = inout(reg) fl, s = in(reg) s,
                            inout("rax") a, inout("rdx") d);
                    }
                    (a, d, fl & ARITH)
                }
                f as Hw
            }};
        }

        macro_rules! widths {
            ($m:literal) => {
                [
                    (1, hw!(concat!($m, " {s:l}"))),
                    (2, hw!(concat!($m, " {s:x}"))),
                    (4, hw!(concat!($m, " {s:e}"))),
                    (8, hw!(concat!($m, " {s:r}"))),
                ]
            };
        }

        fn next(seed: &mut u64) -> u64 {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            match *seed % 6 {
                0 => (*seed >> 8) % 5,
                1 => u64::MAX - (*seed >> 8) % 3,
                2 => 1u64.rotate_left((*seed >> 8) as u32),
                3 => (*seed >> 8) as i8 as u64,
                _ => *seed,
            }
        }

        /// Compare softvm's `vendor` rules with the host; `undefined_too`
        /// selects whether the flags the manuals leave undefined are
        /// compared too.
        fn check(vendor: Vendor, undefined_too: bool) {
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let def = if undefined_too { ARITH } else { CF | OF };
            // IMUL r, r/m and IMUL r, r/m, imm: rAX = rAX * s (or s * -3).
            let truncating = [
                (2, 0, hw!("imul ax, {s:x}")),
                (4, 0, hw!("imul eax, {s:e}")),
                (8, 0, hw!("imul rax, {s:r}")),
                (2, -3, hw!("imul ax, {s:x}, -3")),
                (4, -3, hw!("imul eax, {s:e}, -3")),
                (8, -3, hw!("imul rax, {s:r}, -3")),
            ];
            for (size, imm, hw) in truncating {
                for _ in 0..5000 {
                    let (a, s) = (next(&mut seed), next(&mut seed));
                    let f = next(&mut seed) & ARITH;
                    let (x, y) = if imm == 0 { (a, s) } else { (s, imm as u64) };
                    let (lo, _, ovf) = mul(true, size, x, y);
                    let (ha, _, hf) = hw(a, 0, s, f);
                    let what = format!("{vendor:?} imul{size} {x:#x} {y:#x} flags {f:#x}");
                    assert_eq!(lo, ha & mask(size), "{what}");
                    assert_eq!(
                        mul_flags(vendor, f, size, lo, ovf) & def,
                        hf & def,
                        "{what}"
                    );
                }
            }
            for signed in [false, true] {
                let forms = if signed {
                    widths!("imul")
                } else {
                    widths!("mul")
                };
                for (size, hw) in forms {
                    for _ in 0..5000 {
                        let (a, d, s, f) = (
                            next(&mut seed),
                            next(&mut seed),
                            next(&mut seed),
                            next(&mut seed) & ARITH,
                        );
                        let (lo, hi, ovf) = mul(signed, size, a, s);
                        let (ha, hd, hf) = hw(a, d, s, f);
                        let (hhi, hlo) = if size == 1 {
                            ((ha >> 8) & 0xff, ha & 0xff)
                        } else {
                            (hd & mask(size), ha & mask(size))
                        };
                        assert_eq!(
                            (lo, hi),
                            (hlo, hhi),
                            "mul signed={signed} {size} {a:#x} {s:#x}"
                        );
                        assert_eq!(
                            mul_flags(vendor, f, size, lo, ovf) & def,
                            hf & def,
                            "{vendor:?} mul signed={signed} {size} {a:#x} {s:#x} flags {f:#x}"
                        );
                    }
                }
                let forms = if signed {
                    widths!("idiv")
                } else {
                    widths!("div")
                };
                for (size, hw) in forms {
                    for _ in 0..5000 {
                        let (a, d, s, f) = (
                            next(&mut seed),
                            next(&mut seed),
                            next(&mut seed),
                            next(&mut seed) & ARITH,
                        );
                        let (hi, lo) = if size == 1 {
                            ((a >> 8) & 0xff, a & 0xff)
                        } else {
                            (d & mask(size), a & mask(size))
                        };
                        let Some((q, r)) = div(signed, size, hi, lo, s) else {
                            continue;
                        };
                        let (ha, hd, hf) = hw(a, d, s, f);
                        let (hr, hq) = if size == 1 {
                            ((ha >> 8) & 0xff, ha & 0xff)
                        } else {
                            (hd & mask(size), ha & mask(size))
                        };
                        assert_eq!(
                            (q, r),
                            (hq, hr),
                            "div signed={signed} {size} {hi:#x}:{lo:#x} / {s:#x}"
                        );
                        if undefined_too {
                            assert_eq!(
                                div_flags(vendor, f),
                                hf,
                                "{vendor:?} div signed={signed} {size} flags {f:#x}"
                            );
                        }
                    }
                }
            }
            if std::is_x86_feature_detected!("bmi2") {
                for _ in 0..5000 {
                    let (a, b) = (next(&mut seed), next(&mut seed));
                    let (lo, hi, lo32, hi32): (u64, u64, u64, u64);
                    // SAFETY: register-only BMI2 instruction, checked present.
                    unsafe {
                        asm!("mulx {h}, {l}, {b}", "mulx {h2:e}, {l2:e}, {b:e}",
                            h = out(reg) hi, l = out(reg) lo, h2 = out(reg) hi32, l2 = out(reg) lo32,
                            b = in(reg) b, in("rdx") a, options(nomem, nostack));
                    }
                    let (l, h, _) = mul(false, 8, a, b);
                    assert_eq!((l, h), (lo, hi));
                    let (l, h, _) = mul(false, 4, a, b);
                    assert_eq!((l, h), (lo32, hi32));
                }
            }
        }

        #[test]
        fn defined_results_match_host() {
            check(Vendor::Intel, false);
            check(Vendor::Amd, false);
        }

        /// Undefined flags as the host's vendor computes them.
        #[test]
        fn undefined_flags_match_host() {
            let vendor = Vendor::host();
            eprintln!("muldiv: undefined flags checked against this {vendor:?} host");
            check(vendor, true);
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[test]
    fn undefined_flags_match_host() {
        eprintln!("muldiv: host comparison skipped: not an x86-64 host");
    }
}
