//! FBLD and FBSTP: 18-digit packed BCD integers (ten bytes: nine of two
//! digits each, least significant first, then the sign in bit 7 of the
//! last byte).

use super::unit::{
    begin, empty, mark, masked, pop, push_checked, raise, read_m80, set_c1, st, stack_fault,
    write_m80,
};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::fp::Flags;
use iced_x86::{Code, Instruction};

/// The packed BCD integer indefinite: FFFF C000 0000 0000 0000h.
const BCD_INDEFINITE: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];

/// The largest magnitude 18 digits hold.
const BCD_MAX: u64 = 999_999_999_999_999_999;

/// The magnitude and sign of a packed BCD operand. A nibble above 9
/// counts with its binary value, as the processor reads it (the manuals
/// leave such operands undefined).
fn from_bcd(b: &[u8; 10]) -> (u64, bool) {
    let mag = b[..9].iter().rev().fold(0u64, |acc, &byte| {
        acc * 100 + u64::from(byte >> 4) * 10 + u64::from(byte & 15)
    });
    (mag, b[9] & 0x80 != 0)
}

/// `mag` (at most 18 digits) as packed BCD with the sign `neg`.
fn to_bcd(mut mag: u64, neg: bool) -> [u8; 10] {
    let mut b = [0u8; 10];
    for byte in b.iter_mut().take(9) {
        let lo = (mag % 10) as u8;
        let hi = ((mag / 10) % 10) as u8;
        *byte = (hi << 4) | lo;
        mag /= 100;
    }
    if neg {
        b[9] = 0x80;
    }
    b
}

/// FBLD — Load Binary Coded Decimal (exact; a negative zero stays one).
fn fbld(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let mut fp = begin(x)?;
    let b = read_m80(x, ins)?;
    mark(x, ins);
    let (mag, neg) = from_bcd(&b);
    let mut v: crate::fp::F80 = fp.from_int(mag as i64);
    if neg {
        v.se |= 0x8000;
    }
    if empty(x, 7) {
        set_c1(x, false);
    }
    push_checked(x, v);
    Ok(())
}

/// FBSTP — Store BCD Integer and Pop: ST(0) rounded to an integer by the
/// rounding control. A NaN, an infinity or a value of more than 18
/// digits is an invalid operation (masked: the BCD indefinite is stored).
fn fbstp(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let mut fp = begin(x)?;
    if empty(x, 0) {
        if masked(x, Flags::IE) {
            write_m80(x, ins, &BCD_INDEFINITE)?;
        }
        mark(x, ins);
        if stack_fault(x, false) {
            pop(x);
        }
        return Ok(());
    }
    let v = st(x, 0);
    let i = fp.to_int(v, 64, false);
    if !fp.flags.contains(Flags::IE) && i.unsigned_abs() > BCD_MAX {
        fp.flags = Flags::IE;
        fp.rounded_up = false;
    }
    let invalid = fp.flags.contains(Flags::IE);
    if invalid && !masked(x, Flags::IE) {
        mark(x, ins);
        raise(x, Flags::IE);
        set_c1(x, false);
        return Ok(());
    }
    let out = if invalid {
        BCD_INDEFINITE
    } else {
        to_bcd(i.unsigned_abs(), v.sign())
    };
    write_m80(x, ins, &out)?;
    mark(x, ins);
    raise(x, fp.flags);
    set_c1(x, fp.rounded_up);
    pop(x);
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    t.add(Code::Fbld_m80bcd, fbld, 0);
    t.add(Code::Fbstp_m80bcd, fbstp, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_round_trips() {
        for (mag, neg) in [
            (0, false),
            (0, true),
            (1, false),
            (BCD_MAX, true),
            (1234567890123, false),
        ] {
            assert_eq!(from_bcd(&to_bcd(mag, neg)), (mag, neg));
        }
        let b = to_bcd(123_456_789_012_345_678, true);
        assert_eq!(
            b,
            [0x78, 0x56, 0x34, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x80]
        );
    }

    #[test]
    fn invalid_digits_count_with_their_binary_value() {
        // What the host's FBLD loads for nibbles above 9.
        let at = |i: usize, byte: u8| {
            let mut b = [0u8; 10];
            b[i] = byte;
            from_bcd(&b).0
        };
        assert_eq!(at(0, 0x0a), 10);
        assert_eq!(at(0, 0xa0), 100);
        assert_eq!(at(0, 0xff), 165);
        assert_eq!(at(8, 0xff), 1_650_000_000_000_000_000);
        assert_eq!(from_bcd(&[0xff; 10]), (1_666_666_666_666_666_665, true));
    }
}
