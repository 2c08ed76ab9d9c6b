//! CRC32 — Accumulate CRC32 Value: the CRC-32C (Castagnoli) polynomial
//! 0x1EDC6F41 in its bit-reflected form, over the source's bytes from the
//! lowest. The result is 32 bits, zero-extended into a 64-bit destination.
//! No flags change, and as an SSE4.2 instruction on general registers it
//! makes none of the CR0/CR4 checks of the SSE state.

use super::operand::add_all;
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::Instruction;

/// 0x1EDC6F41 bit-reversed.
const POLY: u32 = 0x82f6_3b78;

/// The byte-at-a-time table, built at compile time.
const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The CRC after `bytes` bytes of `v` (lowest first), starting from `crc`.
fn crc32c(crc: u32, v: u64, bytes: usize) -> u32 {
    (0..bytes).fold(crc, |c, i| {
        let b = (v >> (8 * i)) as u8;
        (c >> 8) ^ TABLE[usize::from(c as u8 ^ b)]
    })
}

/// CRC32 r32/r64, r/m8/16/32/64
fn crc32(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let bytes = usize::from(x.op_size(ins, 1));
    let v = x.read_op(ins, 1)?;
    let d = ins.op0_register();
    let crc = crc32c(x.reg(d) as u32, v, bytes);
    x.set_reg(d, u64::from(crc));
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use iced_x86::Code::*;
    add_all(
        t,
        &[
            Crc32_r32_rm8,
            Crc32_r64_rm8,
            Crc32_r32_rm16,
            Crc32_r32_rm32,
            Crc32_r64_rm64,
        ],
        crc32,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_check_value() {
        // The CRC-32C check value: "123456789" with the usual pre- and
        // post-inversion.
        let crc = b"123456789"
            .iter()
            .fold(!0u32, |c, &b| crc32c(c, u64::from(b), 1));
        assert_eq!(!crc, 0xe306_9283);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn widths_match_the_host() {
        if !crate::ops::simd::host::usable() {
            return;
        }
        use crate::ops::simd::host::Rng;
        use std::arch::asm;
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let (c, v) = (rng.next(), rng.next());
            let (mut h8, mut h16, mut h32, mut h64) = (c, c, c, c);
            // SAFETY: register-only instructions.
            unsafe {
                asm!("crc32 {d:e}, {s:l}", d = inout(reg) h8, s = in(reg) v);
                asm!("crc32 {d:e}, {s:x}", d = inout(reg) h16, s = in(reg) v);
                asm!("crc32 {d:e}, {s:e}", d = inout(reg) h32, s = in(reg) v);
                asm!("crc32 {d}, {s}", d = inout(reg) h64, s = in(reg) v);
            }
            let c = c as u32;
            assert_eq!(u64::from(crc32c(c, v, 1)), h8);
            assert_eq!(u64::from(crc32c(c, v, 2)), h16);
            assert_eq!(u64::from(crc32c(c, v, 4)), h32);
            assert_eq!(u64::from(crc32c(c, v, 8)), h64);
        }
    }
}
