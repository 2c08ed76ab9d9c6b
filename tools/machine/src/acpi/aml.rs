//! The little AML the DSDT needs: named packages of integers, such as the
//! sleep-state objects `_S3_` and `_S5_` whose first elements are the
//! SLP_TYP values an OS writes to PM1a_CNT (ACPI 6.x, 7.4.2 and 20.2).

/// `NameOp`.
const NAME_OP: u8 = 0x08;
/// `PackageOp`.
const PACKAGE_OP: u8 = 0x12;
/// `ZeroOp`, `OneOp` and the integer prefixes.
const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const BYTE_PREFIX: u8 = 0x0a;
const WORD_PREFIX: u8 = 0x0b;
const DWORD_PREFIX: u8 = 0x0c;
const QWORD_PREFIX: u8 = 0x0e;

/// An integer as its shortest AML data object.
pub fn integer(v: u64) -> Vec<u8> {
    match v {
        0 => vec![ZERO_OP],
        1 => vec![ONE_OP],
        _ if v <= 0xff => vec![BYTE_PREFIX, v as u8],
        _ if v <= 0xffff => [&[WORD_PREFIX][..], &(v as u16).to_le_bytes()].concat(),
        _ if v <= 0xffff_ffff => [&[DWORD_PREFIX][..], &(v as u32).to_le_bytes()].concat(),
        _ => [&[QWORD_PREFIX][..], &v.to_le_bytes()].concat(),
    }
}

/// A PkgLength for `rest` bytes that follow it: the encoded length counts
/// its own bytes. One byte up to 63; otherwise the low nibble in the lead
/// byte (whose bits 7:6 count the bytes that follow) and 8 bits a byte.
pub fn pkg_length(rest: usize) -> Vec<u8> {
    if rest < 0x3f {
        return vec![(rest + 1) as u8];
    }
    for n in 2..=4usize {
        let total = rest + n;
        if total < 1 << (4 + 8 * (n - 1)) {
            let mut out = vec![(((n - 1) << 6) | (total & 0xf)) as u8];
            for i in 0..n - 1 {
                out.push((total >> (4 + 8 * i)) as u8);
            }
            return out;
        }
    }
    // Beyond 2^28 bytes: AML cannot say it; no table here comes close.
    vec![0xff, 0xff, 0xff, 0xff]
}

/// `Name(NAME, Package() { values... })`. `name` is a 4-character
/// NameSeg (padded with `_` as AML requires).
pub fn name_package(name: &[u8; 4], values: &[u64]) -> Vec<u8> {
    let mut elems = vec![u8::try_from(values.len()).unwrap_or(u8::MAX)];
    for &v in values {
        elems.extend(integer(v));
    }
    let mut out = vec![NAME_OP];
    out.extend_from_slice(name);
    out.push(PACKAGE_OP);
    out.extend(pkg_length(elems.len()));
    out.extend(elems);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_package() {
        // Name (_S3_, Package (0x04) { One, One, Zero, Zero })
        assert_eq!(
            name_package(b"_S3_", &[1, 1, 0, 0]),
            [0x08, b'_', b'S', b'3', b'_', 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00]
        );
        assert_eq!(integer(5), [0x0a, 5]);
        assert_eq!(integer(0x1234), [0x0b, 0x34, 0x12]);
        assert_eq!(integer(0x1_0000), [0x0c, 0, 0, 1, 0]);
        assert_eq!(integer(1 << 40)[0], 0x0e);
    }

    #[test]
    fn package_lengths() {
        assert_eq!(pkg_length(5), [6]);
        assert_eq!(pkg_length(62), [63]);
        // 63 + 2 = 65 = 0x41: lead 0x41 (1 byte follows, nibble 1), 0x04.
        assert_eq!(pkg_length(63), [0x41, 0x04]);
        assert_eq!(pkg_length(0xffd), [0x4f, 0xff]);
        assert_eq!(pkg_length(0xffe), [0x81, 0x00, 0x01]);
    }
}
