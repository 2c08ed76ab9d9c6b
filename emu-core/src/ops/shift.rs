//! Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD,
//! and the flagless BMI2 forms SHLX, SHRX, SARX, RORX.
//!
//! Flags are written eagerly. Where the manuals leave them undefined,
//! softvm does what the processors of the vCPU's vendor do (checked against
//! the host by the tests below, on Intel and on AMD hosts):
//! - OF after a count other than 1 is, on Intel processors, computed as for
//!   a count of 1 from the *original* operand (the first single-bit step);
//!   on AMD processors as the *last* single-bit step sets it, from the
//!   result and the new CF: SHL, ROL and RCL give MSB(result) XOR CF; SHR,
//!   ROR and RCR the XOR of the result's two top bits; SAR 0. For a count of
//!   1 the two rules agree (and the manuals define it).
//! - AF after SHL/SHR/SAR/SHLD/SHRD with a non-zero count: Intel clears it,
//!   AMD sets it. Rotates leave SF, ZF, AF and PF alone on both.
//! - RCL/RCR of 8/16-bit operands by a non-zero count that is 0 modulo 9 or
//!   17 (a full turn): Intel changes no flag; AMD still writes OF by its
//!   rule above (CF and the operand stay as they were).
//! - SHL/SHR of an 8- or 16-bit operand by its width or more shift in as if
//!   the register were wider (CF is the last bit out, 0 beyond) on both.
//! - SHLD/SHRD of a 16-bit operand by 17..=31: Intel shifts the 48-bit string
//!   dest:src:dest; AMD returns the source rotated by count - 16 (the strings
//!   dest:src:src and src:src:dest) with CF = 0, and its SHLD sets OF to CF
//!   for counts of 16 and more.

use crate::cpu::flags::{mask, szp, AF, ARITH, CF, OF, VM};
use crate::cpu::model::Vendor;
use crate::cpu::Mode;
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::{Exec, Handler};
use crate::ops::mov::sext;
use iced_x86::{Code, Instruction, Mnemonic};

/// A shift or rotate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Rol,
    Ror,
    Rcl,
    Rcr,
    Shl,
    Shr,
    Sar,
}

/// The count as the processor uses it: 5 bits, 6 for 64-bit operands.
#[inline]
fn masked_count(size: u8, count: u64) -> u32 {
    (count & if size == 8 { 63 } else { 31 }) as u32
}

#[inline]
fn bit(x: u64, i: u32) -> u64 {
    (x >> i) & 1
}

/// OF as AMD processors set it for any count: as the last single-bit step
/// sets it, from its result `res` and the CF it gave (see the module).
fn last_step_of(op: Op, bits: u32, res: u64, cf: u64) -> u64 {
    let of = match op {
        Op::Shl | Op::Rol | Op::Rcl => bit(res, bits - 1) ^ cf,
        Op::Shr | Op::Ror | Op::Rcr => bit(res, bits - 1) ^ bit(res, bits - 2),
        Op::Sar => 0,
    };
    of * OF
}

/// Shift or rotate `v` (`size` bytes) by the raw `count`; `f` is RFLAGS
/// before. Returns the result and the new status flags (all six; the ones
/// the operation leaves alone are copied from `f`), the undefined ones as
/// `vendor`'s processors leave them (see the module).
pub(crate) fn shift(op: Op, size: u8, v: u64, count: u64, f: u64, vendor: Vendor) -> (u64, u64) {
    let bits = size as u32 * 8;
    let m = mask(size);
    let v = v & m;
    let c = masked_count(size, count);
    let f = f & ARITH;
    if c == 0 {
        return (v, f);
    }
    let cf_in = f & CF;
    let (res, cf) = match op {
        Op::Shl => ((v << c) & m, ((v as u128) << c >> bits) as u64 & 1),
        Op::Shr => (v >> c, bit(v, c - 1)),
        Op::Sar => {
            let s = sext(v, size) as i64;
            ((s >> c) as u64 & m, (s >> (c - 1)) as u64 & 1)
        }
        Op::Rol | Op::Ror => {
            let r = c % bits;
            let res = if r == 0 {
                v
            } else if op == Op::Rol {
                ((v << r) | (v >> (bits - r))) & m
            } else {
                ((v >> r) | (v << (bits - r))) & m
            };
            let cf = if op == Op::Rol {
                res & 1
            } else {
                bit(res, bits - 1)
            };
            (res, cf)
        }
        Op::Rcl | Op::Rcr => {
            // Rotate the (bits + 1)-bit value CF:v.
            let n = bits + 1;
            let r = c % n;
            if r == 0 && vendor == Vendor::Intel {
                return (v, f);
            }
            let nm = (1u128 << n) - 1;
            let x = ((cf_in as u128) << bits) | v as u128;
            let y = if r == 0 {
                x
            } else if op == Op::Rcl {
                ((x << r) | (x >> (n - r))) & nm
            } else {
                ((x >> r) | (x << (n - r))) & nm
            };
            (y as u64 & m, (y >> bits) as u64)
        }
    };
    let of = match vendor {
        Vendor::Intel => {
            // The first single-bit step's, from the operand before it.
            let msb = bit(v, bits - 1);
            let of = match op {
                Op::Shl | Op::Rol | Op::Rcl => msb ^ bit(v, bits - 2),
                Op::Shr => msb,
                Op::Sar => 0,
                Op::Ror => msb ^ (v & 1),
                Op::Rcr => msb ^ cf_in,
            };
            of * OF
        }
        Vendor::Amd => last_step_of(op, bits, res, cf),
    };
    let rest = match op {
        Op::Shl | Op::Shr | Op::Sar => szp(size, res) | if vendor == Vendor::Amd { AF } else { 0 },
        _ => f & !(CF | OF),
    };
    (res, rest | cf | of)
}

/// SHLD/SHRD: shift `d` left (or right) by the raw `count`, filling from
/// `s`. Returns the result and the six status flags, the undefined ones
/// (and the undefined result of a 16-bit operand shifted by more than 16)
/// as `vendor`'s processors leave them.
fn shift_double(
    left: bool,
    size: u8,
    d: u64,
    s: u64,
    count: u64,
    f: u64,
    vendor: Vendor,
) -> (u64, u64) {
    let bits = size as u32 * 8;
    let m = mask(size);
    let (d, s) = (d & m, s & m);
    let c = masked_count(size, count);
    if c == 0 {
        return (d, f & ARITH);
    }
    let (d128, s128) = (d as u128, s as u128);
    // The bit string the result is cut from, and its width: for a 16-bit
    // operand 48 bits, so that counts up to 31 stay inside it.
    let (x, xw) = match (size, vendor, left) {
        (2, Vendor::Intel, _) => ((d128 << 32) | (s128 << 16) | d128, 48),
        (2, Vendor::Amd, true) => ((d128 << 32) | (s128 << 16) | s128, 48),
        (2, Vendor::Amd, false) => ((s128 << 32) | (s128 << 16) | d128, 48),
        (_, _, true) => ((d128 << bits) | s128, 2 * bits),
        (_, _, false) => ((s128 << bits) | d128, 2 * bits),
    };
    let (res, mut cf) = if left {
        (
            (x >> (xw - bits - c)) as u64 & m,
            (x >> (xw - c)) as u64 & 1,
        )
    } else {
        ((x >> c) as u64 & m, (x >> (c - 1)) as u64 & 1)
    };
    let of = match vendor {
        Vendor::Intel => {
            // The first single-bit step's, from the operands before it.
            let msb = bit(d, bits - 1);
            (msb ^ if left { bit(d, bits - 2) } else { s & 1 }) * OF
        }
        Vendor::Amd => {
            if c > bits {
                cf = 0;
            }
            match (left, c < bits) {
                (true, true) => last_step_of(Op::Shl, bits, res, cf),
                // Counts of 16 and more: as if the result's MSB were 0.
                (true, false) => cf * OF,
                (false, _) => last_step_of(Op::Shr, bits, res, cf),
            }
        }
    };
    let af = if vendor == Vendor::Amd { AF } else { 0 };
    (res, cf | of | af | szp(size, res))
}

fn shift_op(x: &mut Exec, ins: &Instruction, op: Op) -> ExecResult {
    let size = x.osize(ins);
    let count = x.read_op(ins, 1)?;
    let vendor = x.sys.gate.vendor;
    let mut flags = x.cpu.flags;
    x.rmw_op0_with_flags(ins, &mut flags, &mut |fl, v| {
        let (r, nf) = shift(op, size, v, count, fl.get(), vendor);
        fl.set_arith(ARITH, nf);
        Some(r)
    })?;
    x.cpu.flags = flags;
    Ok(())
}

/// SHL/SAL — Shift Logical Left
fn shl(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_op(x, ins, Op::Shl)
}

/// SHR — Shift Logical Right
fn shr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_op(x, ins, Op::Shr)
}

/// SAR — Shift Arithmetic Right (OF is 0 for every count, on both vendors).
fn sar(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_op(x, ins, Op::Sar)
}

/// ROL — Rotate Left (SF, ZF, AF, PF unchanged).
fn rol(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_op(x, ins, Op::Rol)
}

/// ROR — Rotate Right (SF, ZF, AF, PF unchanged).
fn ror(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_op(x, ins, Op::Ror)
}

/// RCL — Rotate Left Through Carry. 8- and 16-bit counts are taken modulo
/// 9 and 17; a count that is 0 after that changes no flag at all on Intel
/// processors, and only OF on AMD processors (see the module).
fn rcl(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_op(x, ins, Op::Rcl)
}

/// RCR — Rotate Right Through Carry (counts as for RCL).
fn rcr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_op(x, ins, Op::Rcr)
}

fn shift_double_op(x: &mut Exec, ins: &Instruction, left: bool) -> ExecResult {
    let size = x.osize(ins);
    let src = x.reg(ins.op1_register());
    let count = x.read_op(ins, 2)?;
    let vendor = x.sys.gate.vendor;
    let mut flags = x.cpu.flags;
    x.rmw_op0_with_flags(ins, &mut flags, &mut |fl, d| {
        let (r, nf) = shift_double(left, size, d, src, count, fl.get(), vendor);
        fl.set_arith(ARITH, nf);
        Some(r)
    })?;
    x.cpu.flags = flags;
    Ok(())
}

/// SHLD — Double Precision Shift Left. The result of a 16-bit operand
/// shifted by more than 16 is undefined and differs by vendor (see the
/// module).
fn shld(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_double_op(x, ins, true)
}

/// SHRD — Double Precision Shift Right
fn shrd(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_double_op(x, ins, false)
}

/// VEX-encoded instructions raise #UD in real and virtual-8086 mode (used
/// by the BMI handlers of `muldiv` and `bits` too).
pub(crate) fn vex_allowed(x: &Exec) -> ExecResult {
    if x.cpu.mode() == Mode::Real || x.cpu.flags.test(VM) {
        return Err(Exception::ud().into());
    }
    Ok(())
}

/// SARX/SHLX/SHRX result: `v` shifted by `count` masked to the width.
fn shift_x(op: Op, size: u8, v: u64, count: u64) -> u64 {
    let c = masked_count(size, count);
    match op {
        Op::Shl => (v << c) & mask(size),
        Op::Shr => (v & mask(size)) >> c,
        _ => (sext(v, size) as i64 >> c) as u64 & mask(size),
    }
}

fn shift_x_op(x: &mut Exec, ins: &Instruction, op: Op) -> ExecResult {
    vex_allowed(x)?;
    let size = x.osize(ins);
    let v = x.read_op(ins, 1)?;
    let count = x.read_op(ins, 2)?;
    x.write_op(ins, 0, shift_x(op, size, v, count))
}

/// SHLX — Shift Logical Left Without Affecting Flags
fn shlx(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_x_op(x, ins, Op::Shl)
}

/// SHRX — Shift Logical Right Without Affecting Flags
fn shrx(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_x_op(x, ins, Op::Shr)
}

/// SARX — Shift Arithmetic Right Without Affecting Flags
fn sarx(x: &mut Exec, ins: &Instruction) -> ExecResult {
    shift_x_op(x, ins, Op::Sar)
}

/// RORX — Rotate Right Logical Without Affecting Flags
fn rorx(x: &mut Exec, ins: &Instruction) -> ExecResult {
    vex_allowed(x)?;
    let size = x.osize(ins);
    let v = x.read_op(ins, 1)?;
    let c = masked_count(size, ins.immediate(2));
    let r = shift(Op::Ror, size, v, c as u64, 0, Vendor::Intel).0;
    x.write_op(ins, 0, r)
}

/// The by-1 forms (`D0`/`D1`) define OF.
fn by_one(c: Code) -> bool {
    format!("{c:?}").ends_with("_1")
}

pub(crate) fn register(t: &mut TableBuilder) {
    let shifts = [
        (Mnemonic::Shl, shl as Handler, AF),
        (Mnemonic::Sal, shl, AF),
        (Mnemonic::Shr, shr, AF),
        (Mnemonic::Sar, sar, AF),
        (Mnemonic::Rol, rol, 0),
        (Mnemonic::Ror, ror, 0),
        (Mnemonic::Rcl, rcl, 0),
        (Mnemonic::Rcr, rcr, 0),
    ];
    for (m, h, undef) in shifts {
        t.mnemonic_where(m, h, undef, by_one);
        t.mnemonic_where(m, h, undef | OF, |c| !by_one(c));
    }
    // A 16-bit SHLD/SHRD by more than 16 leaves result and flags undefined.
    for (m, h) in [(Mnemonic::Shld, shld as Handler), (Mnemonic::Shrd, shrd)] {
        t.mnemonic_where(m, h, ARITH, |c| format!("{c:?}").contains("rm16"));
        t.mnemonic_where(m, h, OF | AF, |c| !format!("{c:?}").contains("rm16"));
    }
    t.vex(Mnemonic::Shlx, shlx, 0);
    t.vex(Mnemonic::Shrx, shrx, 0);
    t.vex(Mnemonic::Sarx, sarx, 0);
    t.vex(Mnemonic::Rorx, rorx, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::flags::{PF, SF, ZF};

    const I: Vendor = Vendor::Intel;
    const A: Vendor = Vendor::Amd;
    const ALL: u64 = ARITH;
    const SZP: u64 = SF | ZF | PF;

    #[test]
    fn count_zero_changes_nothing() {
        for op in [
            Op::Shl,
            Op::Shr,
            Op::Sar,
            Op::Rol,
            Op::Ror,
            Op::Rcl,
            Op::Rcr,
        ] {
            for (f, v) in [(0, I), (ALL, I), (0, A), (ALL, A)] {
                assert_eq!(shift(op, 4, 0x8000_0001, 0, f, v), (0x8000_0001, f));
                // Only the low 5 bits count for 32-bit operands.
                assert_eq!(shift(op, 4, 0x8000_0001, 32, f, v), (0x8000_0001, f));
                assert_eq!(shift(op, 8, 1, 64, f, v), (1, f));
            }
        }
        for v in [I, A] {
            assert_eq!(
                shift_double(true, 2, 0x1234, 0x5678, 32, ALL, v),
                (0x1234, ALL)
            );
        }
    }

    /// Values measured on an AMD EPYC (family 1Ah) where Intel's differ.
    #[test]
    fn amd_undefined_flags() {
        // AF set; OF of the last step (Intel: of the first, and AF clear).
        assert_eq!(shift(Op::Shl, 1, 0x0f, 4, 0, A), (0xf0, OF | SF | AF | PF));
        assert_eq!(shift(Op::Shl, 1, 0x0f, 4, 0, I), (0xf0, SF | PF));
        assert_eq!(
            shift(Op::Shl, 1, 0x01, 8, 0, A),
            (0, OF | ZF | AF | PF | CF)
        );
        assert_eq!(shift(Op::Shl, 1, 0x01, 9, ALL, A), (0, ZF | AF | PF));
        assert_eq!(shift(Op::Shr, 1, 0x81, 2, 0, A), (0x20, AF));
        assert_eq!(shift(Op::Shr, 1, 0x81, 2, 0, I), (0x20, OF));
        assert_eq!(shift(Op::Shr, 1, 0xc0, 1, 0, A), (0x60, OF | AF | PF));
        assert_eq!(shift(Op::Sar, 1, 0x81, 1, 0, A), (0xc0, SF | AF | PF | CF));
        // A full turn of RCL still writes OF (Intel: no flag changes).
        assert_eq!(
            shift(Op::Rcl, 1, 0x80, 9, SF | ZF | AF, A),
            (0x80, OF | SF | ZF | AF)
        );
        assert_eq!(
            shift(Op::Rcl, 1, 0x80, 9, SF | ZF | AF, I),
            (0x80, SF | ZF | AF)
        );
        assert_eq!(
            shift(Op::Rol, 1, 0x81, 8, SZP | AF, A),
            (0x81, SZP | AF | CF)
        );
        // 16-bit SHLD/SHRD past 16: the source rotated, CF clear.
        assert_eq!(
            shift_double(true, 2, 0xb27a, 0x4029, 22, ALL, A),
            (0x0a50, AF | PF)
        );
        assert_eq!(
            shift_double(true, 2, 0x8cd8, 0xffff, 16, 0, A),
            (0xffff, SF | AF | PF)
        );
        assert_eq!(
            shift_double(true, 2, 0x5de5, 0xef46, 16, 0, A),
            (0xef46, OF | SF | AF | CF)
        );
        assert_eq!(
            shift_double(false, 2, 0xffff, 0xe530, 19, 0, A),
            (0x1ca6, AF | PF)
        );
        assert_eq!(
            shift_double(false, 2, 0x80, 0x6835, 22, 0, A),
            (0xd5a0, SF | AF | PF)
        );
    }

    #[test]
    fn shl_flags() {
        // Count 1: OF = MSB(result) ^ CF.
        assert_eq!(shift(Op::Shl, 1, 0x81, 1, ALL, I), (0x02, CF | OF));
        assert_eq!(shift(Op::Shl, 1, 0x40, 1, 0, I), (0x80, SF | OF));
        assert_eq!(shift(Op::Shl, 1, 0xc0, 1, 0, I), (0x80, SF | CF));
        // Width - 1 and width: CF is the last bit out.
        assert_eq!(shift(Op::Shl, 1, 0x03, 7, 0, I), (0x80, SF | CF));
        assert_eq!(shift(Op::Shl, 1, 0x01, 8, 0, I), (0, ZF | PF | CF));
        assert_eq!(shift(Op::Shl, 1, 0xff, 9, AF, I), (0, ZF | PF));
        assert_eq!(shift(Op::Shl, 8, 3, 63, 0, I), (1 << 63, SF | CF | PF));
        assert_eq!(shift(Op::Shl, 2, 0xffff, 31, 0, I), (0, ZF | PF));
    }

    #[test]
    fn shr_sar_flags() {
        assert_eq!(shift(Op::Shr, 1, 0x81, 1, 0, I), (0x40, CF | OF));
        assert_eq!(shift(Op::Shr, 1, 0x81, 8, 0, I), (0, CF | OF | ZF | PF));
        assert_eq!(shift(Op::Shr, 1, 0x81, 9, 0, I), (0, OF | ZF | PF));
        assert_eq!(shift(Op::Shr, 8, u64::MAX, 63, 0, I), (1, CF | OF));
        assert_eq!(shift(Op::Sar, 1, 0x81, 1, OF, I), (0xc0, CF | SF | PF));
        assert_eq!(shift(Op::Sar, 2, 0x8000, 31, 0, I), (0xffff, CF | SF | PF));
        assert_eq!(shift(Op::Sar, 8, 1 << 63, 63, 0, I), (u64::MAX, SF | PF));
    }

    #[test]
    fn rotate_flags() {
        // ROL by the width: result unchanged, CF = LSB, SZAP kept.
        assert_eq!(
            shift(Op::Rol, 1, 0x81, 8, SZP | AF, I),
            (0x81, SZP | AF | CF | OF)
        );
        assert_eq!(shift(Op::Rol, 1, 0x81, 1, 0, I), (0x03, CF | OF));
        assert_eq!(shift(Op::Ror, 1, 0x01, 1, 0, I), (0x80, CF | OF));
        assert_eq!(shift(Op::Ror, 8, 2, 1, CF, I), (1, 0));
        assert_eq!(shift(Op::Rol, 4, 0x8000_0000, 31, 0, I), (0x4000_0000, OF));
    }

    #[test]
    fn rcl_rcr_modulo() {
        // 8-bit: count 9 is a full turn and changes nothing, flags included.
        assert_eq!(shift(Op::Rcl, 1, 0x81, 9, OF | CF, I), (0x81, OF | CF));
        assert_eq!(shift(Op::Rcr, 1, 0x81, 18, 0, I), (0x81, 0));
        assert_eq!(shift(Op::Rcl, 1, 0x81, 10, 0, I), (0x02, CF | OF));
        // 16-bit: modulo 17.
        assert_eq!(shift(Op::Rcl, 2, 0x8000, 17, 0, I), (0x8000, 0));
        assert_eq!(shift(Op::Rcl, 2, 0x8000, 16, 0, I), (0x4000, OF));
        assert_eq!(shift(Op::Rcr, 2, 0x0001, 16, CF, I), (0x0003, OF));
        // 32/64-bit: no modulo; CF rotates in.
        assert_eq!(shift(Op::Rcl, 4, 0x8000_0000, 1, CF, I), (1, CF | OF));
        assert_eq!(shift(Op::Rcr, 8, 1, 63, CF, I), (6, OF));
        assert_eq!(shift(Op::Rcr, 8, 1, 1, 0, I), (0, CF));
    }

    #[test]
    fn shld_shrd() {
        assert_eq!(
            shift_double(true, 4, 0x8000_0001, 0x1234_5678, 4, 0, I).0,
            0x11
        );
        assert_eq!(
            shift_double(false, 4, 0x8000_0001, 0x1234_5678, 4, 0, I).0,
            0x8800_0000
        );
        // 16-bit counts above 16 shift the string dest:src:dest.
        assert_eq!(
            shift_double(true, 2, 0x8001, 0x1234, 17, 0, I),
            (0x2469, OF | PF)
        );
        assert_eq!(
            shift_double(false, 2, 0x8001, 0x1234, 17, 0, I),
            (0x891a, OF | SF)
        );
        assert_eq!(
            shift_double(true, 2, 0x8001, 0x1234, 16, 0, I),
            (0x1234, OF | CF)
        );
        assert_eq!(
            shift_double(true, 8, 1, 1 << 63, 63, 0, I),
            (0xc000_0000_0000_0000, SF | PF)
        );
        assert_eq!(shift_double(false, 8, 1, 0, 1, 0, I), (0, CF | ZF | PF));
    }

    #[test]
    fn flagless_forms() {
        assert_eq!(shift_x(Op::Shl, 4, 1, 33), 2);
        assert_eq!(shift_x(Op::Sar, 4, 0x8000_0000, 31), 0xffff_ffff);
        assert_eq!(shift_x(Op::Shr, 8, u64::MAX, 64 + 60), 0xf);
        assert_eq!(shift(Op::Ror, 4, 1, 4, 0, I).0, 0x1000_0000);
    }

    #[test]
    fn undefined_masks() {
        use crate::exec::table::undefined_flags;
        assert_eq!(undefined_flags(Code::Shl_rm8_1), Some(AF));
        assert_eq!(undefined_flags(Code::Sal_rm32_CL), Some(AF | OF));
        assert_eq!(undefined_flags(Code::Rcr_rm64_imm8), Some(OF));
        assert_eq!(undefined_flags(Code::Rol_rm16_1), Some(0));
        assert_eq!(undefined_flags(Code::Shld_rm16_r16_CL), Some(ARITH));
        assert_eq!(undefined_flags(Code::Shrd_rm64_r64_imm8), Some(OF | AF));
        assert_eq!(undefined_flags(Code::VEX_Rorx_r64_rm64_imm8), Some(0));
    }

    /// Compare with the host CPU over random operands; `undef` selects
    /// whether the bits the manuals leave undefined are compared too.
    #[cfg(target_arch = "x86_64")]
    mod host {
        use super::super::*;
        use std::arch::asm;

        /// `(dest, source, count, flags) -> (dest, flags)` on the host.
        type Hw = fn(u64, u64, u64, u64) -> (u64, u64);

        macro_rules! hw {
            ($ins:expr) => {{
                fn f(v: u64, s: u64, c: u64, fl: u64) -> (u64, u64) {
                    let (mut r, mut fl) = (v, fl | 2);
                    // SAFETY: only registers and the flags change; the
                    // push/pop pair is balanced.
                    unsafe {
                        asm!("mov {s}, {s}", "push {f}", "popfq", $ins, "pushfq", "pop {f}",
                            r = inout(reg) r, f = inout(reg) fl, s = in(reg) s, in("rcx") c);
                    }
                    (r, fl & ARITH)
                }
                f as Hw
            }};
        }

        fn single() -> Vec<(Op, u8, Hw)> {
            macro_rules! four {
                ($op:expr, $m:literal) => {
                    [
                        ($op, 1, hw!(concat!($m, " {r:l}, cl"))),
                        ($op, 2, hw!(concat!($m, " {r:x}, cl"))),
                        ($op, 4, hw!(concat!($m, " {r:e}, cl"))),
                        ($op, 8, hw!(concat!($m, " {r:r}, cl"))),
                    ]
                };
            }
            let mut v = Vec::new();
            v.extend(four!(Op::Shl, "shl"));
            v.extend(four!(Op::Shr, "shr"));
            v.extend(four!(Op::Sar, "sar"));
            v.extend(four!(Op::Rol, "rol"));
            v.extend(four!(Op::Ror, "ror"));
            v.extend(four!(Op::Rcl, "rcl"));
            v.extend(four!(Op::Rcr, "rcr"));
            v
        }

        fn values(seed: &mut u64) -> u64 {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            match *seed % 8 {
                0 => 0,
                1 => u64::MAX,
                2 => 1u64.rotate_left((*seed >> 8) as u32),
                3 => (*seed >> 8) & 0x8000_8080_8000_0080,
                _ => *seed,
            }
        }

        /// The flags the manuals define after `op` by `count` (masked).
        fn defined(op: Op, size: u8, count: u32) -> u64 {
            let mut def = ARITH;
            if count != 0 {
                def &= !AF;
                if count != 1 {
                    def &= !OF;
                }
                if matches!(op, Op::Shl | Op::Shr) && count >= size as u32 * 8 {
                    def &= !CF;
                }
            }
            def
        }

        /// Compare softvm's `vendor` rules with the host; `undef` selects
        /// whether the flags (and the 16-bit SHLD/SHRD results) the manuals
        /// leave undefined are compared too.
        fn check(vendor: Vendor, with_undefined: bool) {
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let compare = |op: Op, size: u8, v: u64, c: u64, f: u64, hw: Hw| {
                let (r, nf) = shift(op, size, v, c, f, vendor);
                let (hr, hf) = hw(v, 0, c, f);
                let def = match with_undefined {
                    true => ARITH,
                    false => defined(op, size, masked_count(size, c)),
                };
                assert_eq!(r, hr & mask(size), "{op:?}{size} {v:#x} by {c}");
                assert_eq!(
                    nf & def,
                    hf & def,
                    "{vendor:?} {op:?}{size} {v:#x} by {c}, flags {f:#x}"
                );
            };
            for (op, size, hw) in single() {
                if size == 1 {
                    // Every byte by every count, from no flags and all.
                    for v in 0..=255 {
                        for c in 0..=255 {
                            compare(op, size, v, c, 0, hw);
                            compare(op, size, v, c, ARITH, hw);
                        }
                    }
                }
                for i in 0..4000u64 {
                    let v = values(&mut seed);
                    let c = if i < 256 { i } else { values(&mut seed) & 0xff };
                    let f = values(&mut seed) & ARITH;
                    compare(op, size, v, c, f, hw);
                }
            }
            let doubles = [
                (true, 2, hw!("shld {r:x}, {s:x}, cl")),
                (true, 4, hw!("shld {r:e}, {s:e}, cl")),
                (true, 8, hw!("shld {r:r}, {s:r}, cl")),
                (false, 2, hw!("shrd {r:x}, {s:x}, cl")),
                (false, 4, hw!("shrd {r:e}, {s:e}, cl")),
                (false, 8, hw!("shrd {r:r}, {s:r}, cl")),
            ];
            for (left, size, hw) in doubles {
                for i in 0..8000u64 {
                    let (d, s) = (values(&mut seed), values(&mut seed));
                    let c = if i < 256 { i } else { values(&mut seed) & 0xff };
                    let f = values(&mut seed) & ARITH;
                    let count = masked_count(size, c);
                    if !with_undefined && size == 2 && count > 16 {
                        continue;
                    }
                    let (r, nf) = shift_double(left, size, d, s, c, f, vendor);
                    let (hr, hf) = hw(d, s, c, f);
                    let def = match count {
                        _ if with_undefined => ARITH,
                        0 => ARITH,
                        1 => ARITH & !AF,
                        _ => ARITH & !(AF | OF),
                    };
                    let what = format!("{vendor:?} shd left={left} {size} {d:#x} {s:#x} by {c}");
                    assert_eq!(r, hr & mask(size), "{what}");
                    assert_eq!(nf & def, hf & def, "{what}");
                }
            }
        }

        /// The flags the manuals define are the same in both vendors'
        /// rules, and the host's.
        #[test]
        fn defined_flags_match_host() {
            check(Vendor::Intel, false);
            check(Vendor::Amd, false);
        }

        /// Undefined flags (and undefined 16-bit SHLD/SHRD results) as the
        /// host's vendor computes them.
        #[test]
        fn undefined_flags_match_host() {
            let vendor = Vendor::host();
            eprintln!("shift: undefined flags checked against this {vendor:?} host");
            check(vendor, true);
        }

        #[test]
        fn flagless_match_host() {
            if !std::is_x86_feature_detected!("bmi2") {
                return;
            }
            let mut seed = 12345u64;
            for _ in 0..2000 {
                let (v, c) = (values(&mut seed), values(&mut seed));
                let (mut a, mut b, mut d, mut e);
                // SAFETY: register-only BMI2 instructions, checked present.
                unsafe {
                    asm!("shlx {a}, {v}, {c}", "shrx {b:e}, {v:e}, {c:e}",
                        "sarx {d}, {v}, {c}", "rorx {e:e}, {v:e}, 13",
                        a = out(reg) a, b = out(reg) b, d = out(reg) d, e = out(reg) e,
                        v = in(reg) v, c = in(reg) c, options(nomem, nostack));
                }
                assert_eq!(shift_x(Op::Shl, 8, v, c), a);
                assert_eq!(shift_x(Op::Shr, 4, v, c), b);
                assert_eq!(shift_x(Op::Sar, 8, v, c), d);
                assert_eq!(shift(Op::Ror, 4, v, 13, 0, Vendor::Intel).0, e);
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[test]
    fn undefined_flags_match_host() {
        eprintln!("shift: host comparison skipped: not an x86-64 host");
    }
}
