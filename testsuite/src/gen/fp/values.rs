//! Random floating-point and packed-integer values, mixed with the
//! special values floating-point semantics get wrong: signed zeros,
//! infinities, quiet and signalling NaNs, denormals, the smallest and
//! largest normals, values at integer-conversion and rounding boundaries,
//! and for the 80-bit format the encodings only x87 has (pseudo-denormals,
//! unnormals, pseudo-NaNs and pseudo-infinities).

use crate::gen::Rng;
use iced_x86::MemorySize;

/// The element type of a register or memory operand, which decides how
/// its bytes are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    F64,
    F80,
    /// A packed integer of this many bytes (1, 2, 4, 8, 16).
    Int(usize),
    /// 18-digit packed BCD (FBLD/FBSTP).
    Bcd,
}

impl Elem {
    /// Bytes of one element.
    pub fn size(self) -> usize {
        match self {
            Elem::F32 => 4,
            Elem::F64 => 8,
            Elem::F80 | Elem::Bcd => 10,
            Elem::Int(n) => n,
        }
    }

    /// The element type iced gives a memory operand, if it is one of ours.
    pub fn of_memory(ms: MemorySize) -> Option<Elem> {
        use MemorySize as M;
        Some(match ms.element_type() {
            M::Float32 => Elem::F32,
            M::Float64 => Elem::F64,
            M::Float80 => Elem::F80,
            M::Bcd => Elem::Bcd,
            M::Unknown => return None,
            e => match e.size() {
                n @ (1 | 2 | 4 | 8 | 16) => Elem::Int(n),
                _ => return None,
            },
        })
    }
}

/// The bit pattern of a binary float with `ebits` exponent bits and
/// `mbits` fraction bits (f32: 8/23, f64: 11/52).
fn ieee(rng: &mut Rng, ebits: u32, mbits: u32) -> u64 {
    let sign = (rng.below(2)) << (ebits + mbits);
    let emax = (1u64 << ebits) - 1;
    let bias = emax >> 1;
    let fmask = (1u64 << mbits) - 1;
    let quiet = 1u64 << (mbits - 1);
    let any_frac = rng.next_u64() & fmask;
    let mag = match rng.below(100) {
        // Zeros, infinities and NaNs.
        0..=5 => 0,
        6..=11 => emax << mbits,
        12..=15 => (emax << mbits) | quiet | (any_frac & rng.pick(&[0, fmask])),
        16..=19 => (emax << mbits) | (any_frac & (quiet - 1)).max(1),
        // Denormals: the smallest, the largest, any.
        20..=21 => 1,
        22..=23 => fmask,
        24..=27 => any_frac.max(1),
        // The smallest and largest normals.
        28..=29 => 1 << mbits,
        30..=31 => ((emax - 1) << mbits) | fmask,
        // One, and powers of two at integer boundaries (2^15, 2^31, 2^63
        // and their neighbours) and at the precision limits.
        32..=35 => bias << mbits,
        36..=43 => {
            let e = rng.pick(&[-1i64, 0, 1, 7, 8, 15, 16, 23, 24, 31, 32, 52, 53, 63, 64]);
            let frac = rng.pick(&[0, fmask, 1, quiet]);
            ((bias as i64 + e) as u64) << mbits | frac
        }
        // Halves (rounding ties) and small integers.
        44..=51 => {
            let v = rng.below(64) as f64 + rng.pick(&[0.0, 0.5, 0.25, 0.75]);
            if mbits == 23 {
                u64::from((v as f32).to_bits())
            } else {
                v.to_bits()
            }
        }
        // Exponents near the underflow and overflow limits.
        52..=57 => {
            let e = rng.pick(&[1, 2, emax - 2, emax - 1]);
            (e << mbits) | any_frac
        }
        // A normal number of moderate size.
        58..=79 => {
            let e = bias as i64 + rng.range(-40, 40);
            ((e as u64) << mbits) | any_frac
        }
        _ => rng.next_u64() & ((emax << mbits) | fmask),
    };
    sign | mag
}

/// A random single-precision value.
pub fn f32_bits(rng: &mut Rng) -> u32 {
    ieee(rng, 8, 23) as u32
}

/// A random double-precision value.
pub fn f64_bits(rng: &mut Rng) -> u64 {
    ieee(rng, 11, 52)
}

/// An 80-bit value: (sign and exponent, significand).
pub fn f80(rng: &mut Rng) -> (u16, u64) {
    const J: u64 = 1 << 63;
    let sign = if rng.chance(50) { 0x8000 } else { 0 };
    let any = rng.next_u64();
    let (e, m): (u16, u64) = match rng.below(100) {
        0..=5 => (0, 0),
        6..=10 => (0x7fff, J),
        // QNaN (the real indefinite among them) and SNaN.
        11..=14 => (
            0x7fff,
            J | (1 << 62) | (any & rng.pick(&[0, u64::MAX >> 2])),
        ),
        15..=17 => (0x7fff, J | (any >> 2).max(1)),
        // Denormal, pseudo-denormal, unnormal, pseudo-NaN/infinity: the
        // last three are invalid operands on every processor since the 387.
        18..=21 => (0, (any >> 1).max(1)),
        22 => (0, J | (any >> 1)),
        23 => (1 + rng.below(0x7ffe) as u16, any >> 1),
        24 => (0x7fff, any >> 1),
        // Smallest and largest normal, one.
        25..=26 => (1, J),
        27..=28 => (0x7ffe, u64::MAX),
        29..=31 => (0x3fff, J),
        // Exact images of f32/f64 values (so stores to memory can be exact).
        32..=41 => {
            let d = f64::from_bits(f64_bits(rng));
            let d = if rng.chance(40) {
                f64::from(d as f32)
            } else {
                d
            };
            return f64_to_f80(d);
        }
        // At integer boundaries: 2^15, 2^31, 2^63 and their neighbours,
        // halves for rounding.
        42..=53 => {
            let e = 0x3fff + rng.pick(&[0u16, 1, 14, 15, 16, 30, 31, 32, 62, 63, 64]);
            let m = rng.pick(&[J, u64::MAX, J | 1, J | (1 << 62), J | (any >> 1)]);
            (e, m)
        }
        54..=61 => {
            let v = rng.below(1 << 20) as f64 + rng.pick(&[0.0, 0.5, 0.25, 0.75]);
            let (se, m) = f64_to_f80(v);
            return (se | sign, m);
        }
        // Near the single and double underflow and overflow thresholds.
        62..=69 => {
            let e = rng.pick(&[
                0x3f80u16, 0x3f81, 0x3c00, 0x3c01, 0x407e, 0x407f, 0x43fe, 0x43ff,
            ]);
            (e, J | (any >> 1))
        }
        70..=89 => ((0x3fff + rng.range(-70, 70)) as u16, J | (any >> 1)),
        _ => (any as u16 & 0x7fff, rng.next_u64()),
    };
    (sign | e, m)
}

/// The exact 80-bit image of a double.
pub fn f64_to_f80(d: f64) -> (u16, u64) {
    let b = d.to_bits();
    let sign = ((b >> 63) as u16) << 15;
    let e = ((b >> 52) & 0x7ff) as i32;
    let f = b & ((1 << 52) - 1);
    if e == 0x7ff {
        return (sign | 0x7fff, (1 << 63) | (f << 11));
    }
    if e == 0 {
        if f == 0 {
            return (sign, 0);
        }
        // Denormal double: normalise.
        let shift = f.leading_zeros() - 11;
        let m = f << (11 + shift);
        let e80 = 0x3fff - 1022 - shift as i32;
        return (sign | e80 as u16, m);
    }
    (sign | (e - 1023 + 0x3fff) as u16, (1 << 63) | (f << 11))
}

/// An approximate f64 value of an 80-bit number (for tolerances only).
pub fn f80_to_f64(se: u16, m: u64) -> f64 {
    let e = i32::from(se & 0x7fff);
    let s = if se & 0x8000 != 0 { -1.0 } else { 1.0 };
    if e == 0x7fff {
        return if m << 1 == 0 {
            s * f64::INFINITY
        } else {
            f64::NAN
        };
    }
    let e = if e == 0 { 1 } else { e };
    s * ((m as f64) * 2f64.powi(-63)) * 2f64.powi(e - 0x3fff)
}

/// 18 BCD digits and a sign byte: mostly valid, sometimes with a nibble
/// above 9 (which FBLD's result leaves undefined, so never used there).
pub fn bcd(rng: &mut Rng, valid: bool) -> [u8; 10] {
    let mut b = [0u8; 10];
    let digits = rng.pick(&[0usize, 1, 2, 9, 17, 18, 18]);
    for i in 0..digits {
        let d = if rng.chance(20) {
            9
        } else {
            rng.below(10) as u8
        };
        let byte = &mut b[i / 2];
        *byte |= d << (4 * (i % 2));
    }
    if !valid {
        let i = rng.below(9) as usize;
        b[i] |= (0xa + rng.below(6) as u8) << 4;
    }
    b[9] = if rng.chance(50) { 0x80 } else { 0 } | (rng.next_u64() as u8 & rng.pick(&[0, 0x7f]));
    b
}

/// Fills `out` with elements of type `e`.
pub fn fill(rng: &mut Rng, e: Elem, out: &mut [u8]) {
    let n = e.size();
    for chunk in out.chunks_mut(n) {
        let bytes: Vec<u8> = match e {
            Elem::F32 => f32_bits(rng).to_le_bytes().to_vec(),
            Elem::F64 => f64_bits(rng).to_le_bytes().to_vec(),
            Elem::F80 => {
                let (se, m) = f80(rng);
                let mut b = m.to_le_bytes().to_vec();
                b.extend_from_slice(&se.to_le_bytes());
                b
            }
            Elem::Bcd => bcd(rng, true).to_vec(),
            Elem::Int(16) => {
                let mut b = rng.edge(64).to_le_bytes().to_vec();
                b.extend_from_slice(&rng.edge(64).to_le_bytes());
                b
            }
            Elem::Int(k) => rng.edge(k as u32 * 8).to_le_bytes()[..k].to_vec(),
        };
        let k = chunk.len();
        chunk.copy_from_slice(&bytes[..k]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_images_are_exact() {
        for d in [1.0f64, -2.5, 0.1, f64::MIN_POSITIVE, 5e-324, 1e300] {
            let (se, m) = f64_to_f80(d);
            assert_eq!(f80_to_f64(se, m), d, "{d}");
        }
        assert_eq!(f64_to_f80(-0.0), (0x8000, 0));
        assert_eq!(f64_to_f80(f64::INFINITY), (0x7fff, 1 << 63));
        assert_eq!(f64_to_f80(1.0), (0x3fff, 1 << 63));
    }

    #[test]
    fn pools_reach_the_special_values() {
        let mut rng = Rng::new(3);
        let (mut nan, mut snan, mut den, mut inf, mut zero) = (0, 0, 0, 0, 0);
        for _ in 0..10_000 {
            let v = f32_bits(&mut rng);
            let (e, f) = ((v >> 23) & 0xff, v & 0x7f_ffff);
            match (e, f) {
                (0xff, 0) => inf += 1,
                (0xff, f) if f & 0x40_0000 == 0 => snan += 1,
                (0xff, _) => nan += 1,
                (0, 0) => zero += 1,
                (0, _) => den += 1,
                _ => {}
            }
        }
        for (n, what) in [
            (nan, "qnan"),
            (snan, "snan"),
            (den, "den"),
            (inf, "inf"),
            (zero, "0"),
        ] {
            assert!(n > 200, "{what}: {n}");
        }
    }

    #[test]
    fn bcd_digits_are_valid_unless_asked() {
        let mut rng = Rng::new(5);
        for _ in 0..1000 {
            let b = bcd(&mut rng, true);
            assert!(b[..9].iter().all(|x| x & 0xf < 10 && x >> 4 < 10));
            let b = bcd(&mut rng, false);
            assert!(b[..9].iter().any(|x| x & 0xf > 9 || x >> 4 > 9));
        }
    }
}
