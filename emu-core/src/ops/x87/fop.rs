//! FOP, the x87's last-instruction opcode: the low three bits of the
//! first opcode byte (D8..DF) and the ModR/M byte, eleven bits in all
//! (Intel SDM Vol. 1, 8.1.10).
//!
//! iced-x86's `Instruction` does not keep the ModR/M byte, and it cannot
//! be rebuilt from the operands (a redundant SIB byte or prefix leaves the
//! same operands), so the decoder's caller records it from the raw bytes
//! ([`stash_fop`]) in the immediate field, which no x87 form uses.

use iced_x86::Instruction;

/// Whether `b` is a legacy prefix or (in 64-bit code) a REX prefix: the
/// bytes an x87 instruction may have before its escape opcode.
fn is_prefix(b: u8) -> bool {
    matches!(
        b,
        0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 | 0x40..=0x4f
    )
}

/// The FOP of the instruction encoded in `bytes`, if it is an x87 escape
/// (opcodes D8..DF) with its ModR/M byte.
pub fn fop_of(bytes: &[u8]) -> Option<u16> {
    let at = bytes.iter().position(|&b| !is_prefix(b))?;
    match bytes.get(at..at + 2) {
        Some(&[op @ 0xd8..=0xdf, modrm]) => Some((u16::from(op & 7) << 8) | u16::from(modrm)),
        _ => None,
    }
}

/// Record the FOP of an x87 instruction decoded from `bytes` in `ins`.
pub fn stash_fop(ins: &mut Instruction, bytes: &[u8]) {
    if let Some(f) = fop_of(bytes) {
        ins.set_immediate32(u32::from(f));
    }
}

/// The FOP recorded by [`stash_fop`].
pub(super) fn fop(ins: &Instruction) -> u16 {
    ins.immediate32() as u16 & 0x7ff
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::Decoder;

    #[test]
    fn fop_is_escape_low_bits_and_modrm() {
        // fadd dword [rax]; fld st(3) with REX and segment prefixes;
        // a redundant SIB byte (its ModR/M differs from the plain form's).
        assert_eq!(fop_of(&[0xd8, 0x00]), Some(0x000));
        assert_eq!(fop_of(&[0x2e, 0x41, 0xd9, 0xc3]), Some(0x1c3));
        assert_eq!(fop_of(&[0xd8, 0x04, 0x20]), Some(0x004));
        assert_eq!(fop_of(&[0x66, 0xdd, 0x30]), Some(0x530));
        assert_eq!(fop_of(&[0xdf, 0xe0]), Some(0x7e0));
        assert_eq!(fop_of(&[0x0f, 0x58, 0xc1]), None);
        assert_eq!(fop_of(&[0xd9]), None);
    }

    #[test]
    fn stashed_fop_survives_in_the_instruction() {
        let bytes = [0x67, 0xdc, 0x4c, 0x24, 0x08]; // fmul qword [esp+8]
        let mut ins = Decoder::new(64, &bytes, 0).decode();
        stash_fop(&mut ins, &bytes);
        assert_eq!(fop(&ins), 0x44c);
        assert_eq!(ins.code(), iced_x86::Code::Fmul_m64fp);
    }
}
