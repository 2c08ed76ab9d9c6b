//! Bit instructions: BT, BTS, BTR, BTC, BSF, BSR, LZCNT, TZCNT, POPCNT,
//! the BMI1/BMI2 bit-field instructions ANDN, BLSI, BLSR, BLSMSK, BEXTR,
//! BZHI, PDEP, PEXT, and the ADX additions ADCX and ADOX.
//!
//! Undefined flags, as the processors of the vCPU's vendor leave them
//! (checked against the host by the tests below, on Intel and AMD hosts):
//! - BT* change only CF, on both;
//! - BSF/BSR clear CF, OF, SF, AF and set PF from the found index (from 0
//!   when the source is zero), on both; both leave the destination
//!   unwritten for a zero source;
//! - LZCNT/TZCNT clear SF, AF and PF on both; OF is cleared by Intel
//!   processors and left unchanged by AMD processors;
//! - the flag-writing BMI instructions (ANDN, BLSI, BLSR, BLSMSK, BEXTR,
//!   BZHI) clear every flag they do not define on Intel processors; AMD
//!   processors set PF from the result (and BEXTR sets AF).

use crate::cpu::flags::{mask, parity, szp, AF, ARITH, CF, OF, PF, SF, ZF};
use crate::cpu::model::Vendor;
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::ops::mov::sext;
use crate::ops::shift::vex_allowed;
use iced_x86::{CodeSize, Instruction, Mnemonic, OpKind, Register};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BitOp {
    Test,
    Set,
    Reset,
    Complement,
}

/// The new value of the operand, or `None` for BT (no write).
fn bit_apply(op: BitOp, v: u64, bit: u32) -> Option<u64> {
    let b = 1u64 << bit;
    match op {
        BitOp::Test => None,
        BitOp::Set => Some(v | b),
        BitOp::Reset => Some(v & !b),
        BitOp::Complement => Some(v ^ b),
    }
}

/// Address size in bytes of the memory operand, as iced-x86 derives it
/// for `virtual_address` (base, else index, else displacement width).
fn addr_size(ins: &Instruction) -> u8 {
    if ins.memory_base() != Register::None {
        return ins.memory_base().size() as u8;
    }
    if ins.memory_index() != Register::None {
        return ins.memory_index().size() as u8;
    }
    match ins.memory_displ_size() {
        n @ (2 | 4 | 8) => n as u8,
        _ => match ins.code_size() {
            CodeSize::Code16 => 2,
            CodeSize::Code32 => 4,
            _ => 8,
        },
    }
}

/// Memory BT* with a register bit offset: the offset is signed and may
/// reach outside the operand. The processor accesses the operand-sized
/// unit at `ea + size * floor(offset / width)` (wrapped to the address
/// size) and the bit `offset mod width` in it.
fn bit_string_target(ea: u64, offset: u64, size: u8, asize: u8) -> (u64, u32) {
    let width = size as i64 * 8;
    let off = sext(offset, size) as i64;
    let delta = off.div_euclid(width).wrapping_mul(size as i64);
    (
        ea.wrapping_add(delta as u64) & mask(asize),
        off.rem_euclid(width) as u32,
    )
}

fn bit_test(x: &mut Exec, ins: &Instruction, op: BitOp) -> ExecResult {
    let size = x.osize(ins);
    let width = size as u32 * 8;
    let src = x.read_op(ins, 1)?;
    let (old, bit) = if ins.op0_kind() == OpKind::Register {
        let bit = src as u32 & (width - 1);
        (x.rmw_op0(ins, &mut |v| bit_apply(op, v, bit))?, bit)
    } else {
        let (seg, ea) = x.mem_loc(ins);
        let (off, bit) = if ins.op1_kind() == OpKind::Register {
            bit_string_target(ea, src, size, addr_size(ins))
        } else {
            (ea, src as u32 & (width - 1))
        };
        let n = size as usize;
        let old = if op == BitOp::Test {
            x.read_seg(seg, off, n)?
        } else {
            let lock = ins.has_lock_prefix();
            x.rmw_seg(seg, off, n, lock, &mut |v| bit_apply(op, v, bit))?
        };
        (old, bit)
    };
    x.cpu.flags.assign(CF, (old >> bit) & 1 != 0);
    Ok(())
}

/// BT — Bit Test
fn bt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    bit_test(x, ins, BitOp::Test)
}

/// BTS — Bit Test and Set
fn bts(x: &mut Exec, ins: &Instruction) -> ExecResult {
    bit_test(x, ins, BitOp::Set)
}

/// BTR — Bit Test and Reset
fn btr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    bit_test(x, ins, BitOp::Reset)
}

/// BTC — Bit Test and Complement
fn btc(x: &mut Exec, ins: &Instruction) -> ExecResult {
    bit_test(x, ins, BitOp::Complement)
}

/// BSF/BSR: the index found (or `None` for a zero source) and the flags.
fn bit_scan(reverse: bool, v: u64) -> (Option<u64>, u64) {
    if v == 0 {
        return (None, ZF | PF);
    }
    let i = if reverse {
        63 - v.leading_zeros()
    } else {
        v.trailing_zeros()
    } as u64;
    (Some(i), parity(i))
}

fn bit_scan_op(x: &mut Exec, ins: &Instruction, reverse: bool) -> ExecResult {
    let v = x.read_op(ins, 1)?;
    let (i, f) = bit_scan(reverse, v);
    if let Some(i) = i {
        x.write_op(ins, 0, i)?;
    }
    x.cpu.flags.set_arith(ARITH, f);
    Ok(())
}

/// BSF — Bit Scan Forward. A zero source sets ZF and leaves the destination
/// unwritten (a 32-bit destination is not even zero-extended).
fn bsf(x: &mut Exec, ins: &Instruction) -> ExecResult {
    bit_scan_op(x, ins, false)
}

/// BSR — Bit Scan Reverse (zero source as for BSF).
fn bsr(x: &mut Exec, ins: &Instruction) -> ExecResult {
    bit_scan_op(x, ins, true)
}

/// LZCNT/TZCNT/POPCNT of a `size`-byte value: the count and the flags.
fn count_bits(m: Mnemonic, size: u8, v: u64) -> (u64, u64) {
    let width = size as u32 * 8;
    let v = v & mask(size);
    let n = match m {
        Mnemonic::Lzcnt => v.leading_zeros() - (64 - width),
        Mnemonic::Tzcnt => v.trailing_zeros().min(width),
        _ => return (v.count_ones() as u64, if v == 0 { ZF } else { 0 }),
    };
    let cf = if v == 0 { CF } else { 0 };
    (n as u64, cf | if n == 0 { ZF } else { 0 })
}

/// The status flags LZCNT/TZCNT/POPCNT write on `vendor` (the others
/// keep their values): all but OF for AMD's LZCNT and TZCNT.
fn count_writes(m: Mnemonic, vendor: Vendor) -> u64 {
    match (m, vendor) {
        (Mnemonic::Lzcnt | Mnemonic::Tzcnt, Vendor::Amd) => ARITH & !OF,
        _ => ARITH,
    }
}

fn count_op(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let v = x.read_op(ins, 1)?;
    let (n, f) = count_bits(ins.mnemonic(), size, v);
    x.write_op(ins, 0, n)?;
    let writes = count_writes(ins.mnemonic(), x.sys.gate.vendor);
    x.cpu.flags.set_arith(writes, f);
    Ok(())
}

/// LZCNT — Count the Number of Leading Zero Bits (CF = source is zero; OF
/// cleared by Intel, unchanged by AMD processors).
fn lzcnt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    count_op(x, ins)
}

/// TZCNT — Count the Number of Trailing Zero Bits (CF = source is zero; OF
/// as for LZCNT).
fn tzcnt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    count_op(x, ins)
}

/// POPCNT — Return the Count of Number of Bits Set to 1
fn popcnt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    count_op(x, ins)
}

/// ZF and SF of a BMI result, and its PF on AMD processors (Intel's clear
/// PF; AF is clear on both).
fn zs(size: u8, r: u64, vendor: Vendor) -> u64 {
    let keep = match vendor {
        Vendor::Intel => ZF | SF,
        Vendor::Amd => ZF | SF | PF,
    };
    szp(size, r) & keep
}

/// A BMI operation: `(size, operand 1, operand 2, vendor) -> (result,
/// flags)`.
type Bmi = fn(u8, u64, u64, Vendor) -> (u64, u64);

fn andn(size: u8, a: u64, b: u64, vendor: Vendor) -> (u64, u64) {
    let r = !a & b & mask(size);
    (r, zs(size, r, vendor))
}

fn blsi(size: u8, s: u64, _: u64, vendor: Vendor) -> (u64, u64) {
    let r = s.wrapping_neg() & s & mask(size);
    (r, zs(size, r, vendor) | if r != 0 { CF } else { 0 })
}

fn blsr(size: u8, s: u64, _: u64, vendor: Vendor) -> (u64, u64) {
    let s = s & mask(size);
    let r = s.wrapping_sub(1) & s;
    (r, zs(size, r, vendor) | if s == 0 { CF } else { 0 })
}

fn blsmsk(size: u8, s: u64, _: u64, vendor: Vendor) -> (u64, u64) {
    let s = s & mask(size);
    let r = (s.wrapping_sub(1) ^ s) & mask(size);
    (r, (zs(size, r, vendor) & !ZF) | if s == 0 { CF } else { 0 })
}

/// BEXTR's flags: ZF defined; SF cleared; AMD processors also set AF and
/// PF from the result.
fn bextr(size: u8, s: u64, ctl: u64, vendor: Vendor) -> (u64, u64) {
    let (start, len) = ((ctl & 0xff) as u32, ((ctl >> 8) & 0xff) as u32);
    let v = (s & mask(size)).checked_shr(start).unwrap_or(0);
    let r = if len >= 64 {
        v
    } else {
        v & ((1u64 << len) - 1)
    };
    let undefined = match vendor {
        Vendor::Intel => 0,
        Vendor::Amd => AF | parity(r),
    };
    (r, undefined | if r == 0 { ZF } else { 0 })
}

fn bzhi(size: u8, s: u64, index: u64, vendor: Vendor) -> (u64, u64) {
    let n = (index & 0xff) as u32;
    let (r, cf) = if n < size as u32 * 8 {
        (s & ((1u64 << n) - 1), 0)
    } else {
        (s & mask(size), CF)
    };
    (r, zs(size, r, vendor) | cf)
}

/// PDEP: the low bits of `src`, in order, go to the set bits of `m`.
fn pdep(size: u8, src: u64, m: u64, _: Vendor) -> (u64, u64) {
    let (mut m, mut r, mut k) = (m & mask(size), 0, 0);
    while m != 0 {
        let low = m & m.wrapping_neg();
        if (src >> k) & 1 != 0 {
            r |= low;
        }
        m ^= low;
        k += 1;
    }
    (r, 0)
}

/// PEXT: the bits of `src` at the set bits of `m`, packed at the bottom.
fn pext(size: u8, src: u64, m: u64, _: Vendor) -> (u64, u64) {
    let (mut m, mut r, mut k) = (m & mask(size), 0, 0);
    while m != 0 {
        let low = m & m.wrapping_neg();
        if src & low != 0 {
            r |= 1 << k;
        }
        m ^= low;
        k += 1;
    }
    (r, 0)
}

/// Destination = f(operand 1, operand 2); writes all six flags if `flags`.
fn bmi_op(x: &mut Exec, ins: &Instruction, f: Bmi, flags: bool) -> ExecResult {
    vex_allowed(x)?;
    let size = x.osize(ins);
    let a = x.read_op(ins, 1)?;
    let b = if ins.op_count() > 2 {
        x.read_op(ins, 2)?
    } else {
        0
    };
    let (r, fl) = f(size, a, b, x.sys.gate.vendor);
    x.write_op(ins, 0, r)?;
    if flags {
        x.cpu.flags.set_arith(ARITH, fl);
    }
    Ok(())
}

macro_rules! bmi_handlers {
    ($($(#[$doc:meta])* $name:ident = $f:ident, $flags:expr;)*) => {$(
        $(#[$doc])*
        fn $name(x: &mut Exec, ins: &Instruction) -> ExecResult {
            bmi_op(x, ins, $f, $flags)
        }
    )*};
}

bmi_handlers! {
    /// ANDN — Logical AND NOT
    andn_op = andn, true;
    /// BLSI — Extract Lowest Set Isolated Bit (CF = source is not zero).
    blsi_op = blsi, true;
    /// BLSR — Reset Lowest Set Bit (CF = source is zero).
    blsr_op = blsr, true;
    /// BLSMSK — Get Mask Up to Lowest Set Bit (CF = source is zero).
    blsmsk_op = blsmsk, true;
    /// BEXTR — Bit Field Extract (start and length in bits 7:0 and 15:8).
    bextr_op = bextr, true;
    /// BZHI — Zero High Bits Starting with Specified Bit Position (CF = the
    /// index in bits 7:0 is at least the operand width).
    bzhi_op = bzhi, true;
    /// PDEP — Parallel Bits Deposit
    pdep_op = pdep, false;
    /// PEXT — Parallel Bits Extract
    pext_op = pext, false;
}

/// ADCX/ADOX sum of two `size`-byte values and a carry: (sum, carry out).
fn add_with(size: u8, a: u64, b: u64, carry: bool) -> (u64, bool) {
    let sum = u128::from(a & mask(size)) + u128::from(b & mask(size)) + u128::from(carry);
    (sum as u64 & mask(size), sum >> (size as u32 * 8) != 0)
}

/// ADCX/ADOX: destination + source + the carry in `flag`, carry out to it.
fn add_carry(x: &mut Exec, ins: &Instruction, flag: u64) -> ExecResult {
    let size = x.osize(ins);
    let a = x.read_op(ins, 0)?;
    let b = x.read_op(ins, 1)?;
    let (r, c) = add_with(size, a, b, x.cpu.flags.test(flag));
    x.write_op(ins, 0, r)?;
    x.cpu.flags.assign(flag, c);
    Ok(())
}

/// ADCX — Unsigned Integer Addition of Two Operands with Carry Flag (only CF
/// changes).
fn adcx(x: &mut Exec, ins: &Instruction) -> ExecResult {
    add_carry(x, ins, CF)
}

/// ADOX — Unsigned Integer Addition of Two Operands with Overflow Flag (OF
/// is the carry; only OF changes).
fn adox(x: &mut Exec, ins: &Instruction) -> ExecResult {
    add_carry(x, ins, OF)
}

pub(crate) fn register(t: &mut TableBuilder) {
    let bt_undef = OF | SF | AF | PF;
    t.mnemonic(Mnemonic::Bt, bt, bt_undef);
    t.mnemonic(Mnemonic::Bts, bts, bt_undef);
    t.mnemonic(Mnemonic::Btr, btr, bt_undef);
    t.mnemonic(Mnemonic::Btc, btc, bt_undef);
    t.mnemonic(Mnemonic::Bsf, bsf, ARITH & !ZF);
    t.mnemonic(Mnemonic::Bsr, bsr, ARITH & !ZF);
    t.mnemonic(Mnemonic::Lzcnt, lzcnt, OF | SF | AF | PF);
    t.mnemonic(Mnemonic::Tzcnt, tzcnt, OF | SF | AF | PF);
    t.mnemonic(Mnemonic::Popcnt, popcnt, 0);
    t.vex(Mnemonic::Andn, andn_op, AF | PF);
    t.vex(Mnemonic::Blsi, blsi_op, AF | PF);
    t.vex(Mnemonic::Blsr, blsr_op, AF | PF);
    t.vex(Mnemonic::Blsmsk, blsmsk_op, AF | PF);
    t.vex(Mnemonic::Bextr, bextr_op, AF | SF | PF);
    t.vex(Mnemonic::Bzhi, bzhi_op, AF | PF);
    t.vex(Mnemonic::Pdep, pdep_op, 0);
    t.vex(Mnemonic::Pext, pext_op, 0);
    t.mnemonic(Mnemonic::Adcx, adcx, 0);
    t.mnemonic(Mnemonic::Adox, adox, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    #[test]
    fn bit_string_offsets() {
        // Positive offsets step by whole operands.
        assert_eq!(bit_string_target(0x1000, 0, 4, 8), (0x1000, 0));
        assert_eq!(bit_string_target(0x1000, 33, 4, 8), (0x1004, 1));
        assert_eq!(bit_string_target(0x1000, 64 * 3 + 5, 8, 8), (0x1018, 5));
        // Negative offsets round down: bit -1 is bit 31 of the dword below.
        assert_eq!(bit_string_target(0x1000, 0xffff_ffff, 4, 8), (0xffc, 31));
        assert_eq!(bit_string_target(0x1000, 0xffff_ffe0, 4, 8), (0xffc, 0));
        assert_eq!(bit_string_target(0x1000, 0xffff_ffdf, 4, 8), (0xff8, 31));
        assert_eq!(
            bit_string_target(0x1000, 0x8000, 2, 8),
            (0x1000 - 0x1000, 0)
        );
        assert_eq!(bit_string_target(0x10, 0xfff0, 2, 8), (0xe, 0));
        assert_eq!(bit_string_target(0, u64::MAX, 8, 8), (u64::MAX - 7, 63));
        // The sum wraps to the address size.
        assert_eq!(bit_string_target(0, 0xffff, 2, 2), (0xfffe, 15));
        assert_eq!(bit_string_target(0xfffe, 16, 2, 2), (0, 0));
        assert_eq!(bit_string_target(0, 0xffff_ffff, 4, 4), (0xffff_fffc, 31));
    }

    #[test]
    fn address_sizes() {
        let cases: [(u32, &[u8], u8); 6] = [
            (64, &[0x0f, 0xa3, 0x04, 0x25, 0, 0x10, 0, 0], 8),
            (64, &[0x67, 0x0f, 0xa3, 0x04, 0x25, 0, 0x10, 0, 0], 4),
            (64, &[0x0f, 0xa3, 0x05, 0, 0, 0, 0], 8),
            (32, &[0x0f, 0xa3, 0x05, 0, 0x10, 0, 0], 4),
            (32, &[0x67, 0x0f, 0xa3, 0x40, 0x10], 2),
            (16, &[0x0f, 0xa3, 0x06, 0, 0x10], 2),
        ];
        for (bits, bytes, want) in cases {
            let ins = Decoder::new(bits, bytes, DecoderOptions::NONE).decode();
            assert_eq!(addr_size(&ins), want, "{ins}");
        }
    }

    #[test]
    fn scans_and_counts() {
        assert_eq!(bit_scan(false, 0), (None, ZF | PF));
        assert_eq!(bit_scan(false, 0x80), (Some(7), 0));
        assert_eq!(bit_scan(true, 0x8000_0001), (Some(31), 0));
        assert_eq!(bit_scan(true, 0x30), (Some(5), PF));
        assert_eq!(count_bits(Mnemonic::Lzcnt, 2, 0), (16, CF));
        assert_eq!(count_bits(Mnemonic::Lzcnt, 4, 0x8000_0000), (0, ZF));
        assert_eq!(count_bits(Mnemonic::Lzcnt, 2, 0x0001_0001), (15, 0));
        assert_eq!(count_bits(Mnemonic::Tzcnt, 8, 0), (64, CF));
        assert_eq!(count_bits(Mnemonic::Tzcnt, 2, 0x1_0000), (16, CF));
        assert_eq!(count_bits(Mnemonic::Popcnt, 2, 0x1_0000), (0, ZF));
        assert_eq!(count_bits(Mnemonic::Popcnt, 8, u64::MAX), (64, 0));
    }

    #[test]
    fn bmi() {
        const I: Vendor = Vendor::Intel;
        assert_eq!(andn(4, 0xf0, 0xff, I), (0x0f, 0));
        assert_eq!(andn(4, u64::MAX, 0xff, I), (0, ZF));
        assert_eq!(blsi(4, 0b1100, 0, I), (0b100, CF));
        assert_eq!(blsi(4, 0, 0, I), (0, ZF));
        assert_eq!(blsr(8, 1 << 63, 0, I), (0, ZF));
        assert_eq!(blsr(4, 0, 0, I), (0, ZF | CF));
        assert_eq!(blsmsk(4, 0, 0, I), (0xffff_ffff, SF | CF));
        assert_eq!(blsmsk(8, 0b1000, 0, I), (0b1111, 0));
        assert_eq!(bextr(4, 0xabcd_ef01, 0x0804, I), (0xf0, 0));
        assert_eq!(bextr(4, 0xabcd_ef01, 0x0820, I), (0, ZF));
        assert_eq!(bextr(8, 1 << 63, 0xff00, I), (1 << 63, 0));
        assert_eq!(bextr(4, 0xffff_ffff, 0x0000, I), (0, ZF));
        assert_eq!(bzhi(4, 0xffff_ffff, 31, I), (0x7fff_ffff, 0));
        assert_eq!(bzhi(4, 0xffff_ffff, 32, I), (0xffff_ffff, SF | CF));
        assert_eq!(bzhi(8, u64::MAX, 0x100, I), (0, ZF));
        assert_eq!(bzhi(8, u64::MAX, 0xff, I), (u64::MAX, SF | CF));
        assert_eq!(pdep(4, 0b101, 0b1111_0000, I), (0b0101_0000, 0));
        assert_eq!(pdep(8, u64::MAX, 1 << 63 | 1, I), (1 << 63 | 1, 0));
        assert_eq!(pdep(4, 0b10, 0x1_0000_0003, I), (0b10, 0));
        assert_eq!(pext(4, 0b0101_0000, 0b1111_0000, I), (0b101, 0));
        assert_eq!(pext(8, 1 << 63, 1 << 63 | 1, I), (0b10, 0));
        assert_eq!(pext(4, u64::MAX, 0xffff_0000_ffff_0000, I), (0xffff, 0));
    }

    /// Values measured on an AMD EPYC (family 1Ah) where Intel's differ.
    #[test]
    fn amd_bmi_and_count_flags() {
        const A: Vendor = Vendor::Amd;
        assert_eq!(andn(4, 0xf0, 0xff, A), (0x0f, PF));
        assert_eq!(andn(4, u64::MAX, 0xff, A), (0, ZF | PF));
        assert_eq!(blsi(4, 0b1100, 0, A), (0b100, CF));
        assert_eq!(blsr(8, 0b1010, 0, A), (0b1000, 0));
        assert_eq!(blsmsk(8, 0b1000, 0, A), (0b1111, PF));
        assert_eq!(bextr(4, 0xabcd_ef01, 0x0804, A), (0xf0, AF | PF));
        assert_eq!(bextr(4, 0xabcd_ef01, 0x0820, A), (0, ZF | AF | PF));
        assert_eq!(bzhi(4, 0xffff_ffff, 32, A), (0xffff_ffff, SF | PF | CF));
        assert_eq!(count_writes(Mnemonic::Lzcnt, A), ARITH & !OF);
        assert_eq!(count_writes(Mnemonic::Tzcnt, Vendor::Intel), ARITH);
        assert_eq!(count_writes(Mnemonic::Popcnt, A), ARITH);
    }

    #[cfg(target_arch = "x86_64")]
    mod host {
        use super::super::*;
        use std::arch::asm;

        /// `(vendor, size, dest before, operand 1, operand 2, flags) -> (dest,
        /// flags)`.
        type Model = fn(Vendor, u8, u64, u64, u64, u64) -> (u64, u64);
        type Hw = fn(u64, u64, u64, u64) -> (u64, u64);

        macro_rules! hw {
            ($ins:expr) => {{
                fn f(d: u64, a: u64, b: u64, fl: u64) -> (u64, u64) {
                    let (mut d, mut fl) = (d, fl | 2);
                    // SAFETY: only registers and the flags change; the
                    // push/pop pair is balanced.
                    unsafe {
                        asm!("mov {a}, {a}", "mov {b}, {b}", "push {f}", "popfq", $ins,
                            "pushfq", "pop {f}",
                            d = inout(reg) d, f = inout(reg) fl, a = in(reg) a, b = in(reg) b);
                    }
                    (d, fl & ARITH)
                }
                f as Hw
            }};
        }

        /// `text kind, undefined flags, model;` lines to (text, size,
        /// undefined, model, host) forms: kind `ab` is `op d, a, b`, `a` is
        /// `op d, a`, `a16` has a 16-bit form too.
        macro_rules! forms {
            ($($m:literal $kind:ident, $u:expr, $model:expr;)*) => {{
                let mut v: Vec<(&str, u8, u64, Model, Hw)> = Vec::new();
                $(v.extend(forms!(@ $kind, $u, $model, $m));)*
                v
            }};
            (@ ab, $u:expr, $model:expr, $m:literal) => {
                forms!(@@ $u, $model, 4: concat!($m, " {d:e}, {a:e}, {b:e}"),
                    8: concat!($m, " {d}, {a}, {b}"))
            };
            (@ a, $u:expr, $model:expr, $m:literal) => {
                forms!(@@ $u, $model, 4: concat!($m, " {d:e}, {a:e}"), 8: concat!($m, " {d}, {a}"))
            };
            (@ a16, $u:expr, $model:expr, $m:literal) => {
                forms!(@@ $u, $model, 2: concat!($m, " {d:x}, {a:x}"),
                    4: concat!($m, " {d:e}, {a:e}"), 8: concat!($m, " {d}, {a}"))
            };
            (@@ $u:expr, $model:expr, $($size:literal: $ins:expr),+) => {{
                let m: Model = $model;
                [$(($ins, $size, $u, m, hw!($ins))),+]
            }};
        }

        /// A register write of `size` bytes, as `set_reg` does it.
        fn merge(size: u8, old: u64, v: u64) -> u64 {
            if size == 2 {
                (old & !0xffff) | (v & 0xffff)
            } else {
                v
            }
        }

        fn scan(m: Mnemonic, v: Vendor, size: u8, d: u64, a: u64, f: u64) -> (u64, u64) {
            let a = a & mask(size);
            if matches!(m, Mnemonic::Bsf | Mnemonic::Bsr) {
                let (i, f) = bit_scan(m == Mnemonic::Bsr, a);
                return (i.map_or(d, |i| merge(size, d, i)), f);
            }
            let (n, nf) = count_bits(m, size, a);
            let w = count_writes(m, v);
            (merge(size, d, n), (f & !w) | (nf & w))
        }

        /// BT* on a register: `a` is the bit offset.
        fn bt_reg(op: BitOp, size: u8, d: u64, a: u64, f: u64) -> (u64, u64) {
            let bit = a as u32 & (size as u32 * 8 - 1);
            let r = bit_apply(op, d & mask(size), bit).map_or(d, |r| merge(size, d, r));
            (r, (f & !CF) | (d >> bit) & 1)
        }

        fn adx(flag: u64, size: u8, d: u64, a: u64, f: u64) -> (u64, u64) {
            let (r, c) = add_with(size, d, a, f & flag != 0);
            (r, (f & !flag) | if c { flag } else { 0 })
        }

        fn forms() -> Vec<(&'static str, u8, u64, Model, Hw)> {
            use Mnemonic::*;
            let (ap, scan_undef) = (AF | PF, OF | SF | AF | PF);
            let bt_undef = OF | SF | AF | PF;
            forms! {
                "andn" ab, ap, |v, s, _, a, b, _| andn(s, a, b, v);
                "blsi" a, ap, |v, s, _, a, b, _| blsi(s, a, b, v);
                "blsr" a, ap, |v, s, _, a, b, _| blsr(s, a, b, v);
                "blsmsk" a, ap, |v, s, _, a, b, _| blsmsk(s, a, b, v);
                "bextr" ab, ap | SF, |v, s, _, a, b, _| bextr(s, a, b, v);
                "bzhi" ab, ap, |v, s, _, a, b, _| bzhi(s, a, b, v);
                "pdep" ab, 0, |v, s, _, a, b, f| (pdep(s, a, b, v).0, f);
                "pext" ab, 0, |v, s, _, a, b, f| (pext(s, a, b, v).0, f);
                // The destination is preloaded, so an unwritten one shows.
                "bsf" a16, ARITH & !ZF, |v, s, d, a, _, f| scan(Bsf, v, s, d, a, f);
                "bsr" a16, ARITH & !ZF, |v, s, d, a, _, f| scan(Bsr, v, s, d, a, f);
                "lzcnt" a16, scan_undef, |v, s, d, a, _, f| scan(Lzcnt, v, s, d, a, f);
                "tzcnt" a16, scan_undef, |v, s, d, a, _, f| scan(Tzcnt, v, s, d, a, f);
                "popcnt" a16, 0, |v, s, d, a, _, f| scan(Popcnt, v, s, d, a, f);
                "bt" a16, bt_undef, |_, s, d, a, _, f| bt_reg(BitOp::Test, s, d, a, f);
                "bts" a16, bt_undef, |_, s, d, a, _, f| bt_reg(BitOp::Set, s, d, a, f);
                "btr" a16, bt_undef, |_, s, d, a, _, f| bt_reg(BitOp::Reset, s, d, a, f);
                "btc" a16, bt_undef, |_, s, d, a, _, f| bt_reg(BitOp::Complement, s, d, a, f);
                "adcx" a, 0, |_, s, d, a, _, f| adx(CF, s, d, a, f);
                "adox" a, 0, |_, s, d, a, _, f| adx(OF, s, d, a, f);
            }
        }

        fn next(seed: &mut u64) -> u64 {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            match *seed % 6 {
                0 => 0,
                1 => (*seed >> 8) & 0x3f3f,
                2 => 1u64.rotate_left((*seed >> 8) as u32),
                3 => (*seed >> 8) & (*seed >> 20),
                _ => *seed,
            }
        }

        /// Compare softvm's `vendor` rules with the host; `undefined_too`
        /// selects whether the flags the manuals leave undefined are
        /// compared too.
        fn check(vendor: Vendor, undefined_too: bool) {
            let features = [
                std::is_x86_feature_detected!("bmi1"),
                std::is_x86_feature_detected!("bmi2"),
                std::is_x86_feature_detected!("lzcnt"),
                std::is_x86_feature_detected!("adx"),
            ];
            if features.contains(&false) {
                eprintln!("bits: host comparison skipped: the host lacks BMI1, BMI2, LZCNT or ADX");
                return;
            }
            let mut seed = 0x1234_5678_9abc_def1u64;
            for (text, size, undef, model, hw) in forms() {
                let def = if undefined_too { ARITH } else { ARITH & !undef };
                for _ in 0..5000 {
                    let (d, a, b) = (next(&mut seed), next(&mut seed), next(&mut seed));
                    let f = next(&mut seed) & ARITH;
                    let (r, nf) = model(vendor, size, d, a, b, f);
                    let (hr, hf) = hw(d, a, b, f);
                    let what = format!("{vendor:?} {text}: {d:#x} {a:#x} {b:#x} flags {f:#x}");
                    assert_eq!(r, hr, "{what}");
                    assert_eq!(nf & def, hf & def, "{what}");
                }
            }
        }

        #[test]
        fn defined_flags_match_host() {
            check(Vendor::Intel, false);
            check(Vendor::Amd, false);
        }

        /// Undefined flags as the host's vendor computes them.
        #[test]
        fn undefined_flags_match_host() {
            let vendor = Vendor::host();
            eprintln!("bits: undefined flags checked against this {vendor:?} host");
            check(vendor, true);
        }

        /// BT with a register offset on memory, offsets on both sides of the
        /// base, against the host's bit-string addressing.
        #[test]
        fn bt_memory_offsets_match_host() {
            let mut seed = 99u64;
            let buf: Vec<u8> = (0..512).map(|_| next(&mut seed) as u8).collect();
            let base = buf[256..].as_ptr();
            for off in -1500i64..1500 {
                let (c16, c32, c64): (u8, u8, u8);
                // SAFETY: BT only reads; every offset used stays within
                // `buf` (at most 1500 bits = 188 bytes + 8 on either side).
                unsafe {
                    asm!("bt word ptr [{p}], {o:x}", "setc {a}",
                        "bt dword ptr [{p}], {o:e}", "setc {b}",
                        "bt qword ptr [{p}], {o}", "setc {c}", p = in(reg) base, o = in(reg) off,
                        a = out(reg_byte) c16, b = out(reg_byte) c32, c = out(reg_byte) c64,
                        options(readonly, nostack));
                }
                for (size, hw) in [(2u8, c16), (4, c32), (8, c64)] {
                    let (addr, bit) = bit_string_target(base as u64, off as u64, size, 8);
                    let i = (addr - buf.as_ptr() as u64) as usize;
                    let mut v = [0u8; 8];
                    v[..size as usize].copy_from_slice(&buf[i..i + size as usize]);
                    let v = u64::from_le_bytes(v);
                    assert_eq!((v >> bit) as u8 & 1, hw, "bt{size} offset {off}");
                }
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[test]
    fn undefined_flags_match_host() {
        eprintln!("bits: host comparison skipped: not an x86-64 host");
    }
}
