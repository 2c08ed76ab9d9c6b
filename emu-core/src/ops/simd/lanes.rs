//! Element-generic helpers: a 64-bit MMX or 128-bit XMM value is a `u128`
//! (an MMX value in the low half) split into lanes of one integer type.
//! Every kernel of the family is written once over these helpers and the
//! operand width `w` (8 or 16 bytes), so the MMX and XMM forms of an
//! instruction share one copy of its semantics.

/// An integer lane type: u8..u64 and i8..i64.
pub(crate) trait Lane: Copy {
    /// Width in bytes.
    const BYTES: usize;
    /// The low `BYTES` bytes of `v`.
    fn from_bits(v: u128) -> Self;
    /// The lane's bits, zero-extended.
    fn bits(self) -> u128;
}

macro_rules! lanes {
    ($($t:ty => $u:ty),* $(,)?) => {$(
        impl Lane for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn from_bits(v: u128) -> Self {
                v as $t
            }
            #[inline(always)]
            fn bits(self) -> u128 {
                u128::from(self as $u)
            }
        }
    )*};
}

lanes!(u8 => u8, u16 => u16, u32 => u32, u64 => u64, i8 => u8, i16 => u16, i32 => u32, i64 => u64);

/// Lane `i` of `v`.
#[inline(always)]
pub(crate) fn get<T: Lane>(v: u128, i: usize) -> T {
    T::from_bits(v >> (i * T::BYTES * 8))
}

/// `v` with lane `i` replaced by `x`.
#[inline(always)]
pub(crate) fn put<T: Lane>(v: u128, i: usize, x: T) -> u128 {
    let shift = i * T::BYTES * 8;
    let m = (u128::MAX >> (128 - T::BYTES * 8)) << shift;
    (v & !m) | (x.bits() << shift)
}

/// The number of `T` lanes in `w` bytes.
#[inline(always)]
pub(crate) const fn count<T: Lane>(w: usize) -> usize {
    w / T::BYTES
}

/// A vector of `n` lanes, lane `i` being `f(i)` (the other bits zero).
#[inline(always)]
pub(crate) fn build<T: Lane>(n: usize, f: impl Fn(usize) -> T) -> u128 {
    (0..n).fold(0u128, |acc, i| acc | (f(i).bits() << (i * T::BYTES * 8)))
}

/// Apply `f` to each `T` lane of `a` (in `w` bytes).
#[inline(always)]
pub(crate) fn map1<T: Lane>(a: u128, w: usize, f: impl Fn(T) -> T) -> u128 {
    build(count::<T>(w), |i| f(get(a, i)))
}

/// Apply `f` lane by lane to `a` and `b` (in `w` bytes).
#[inline(always)]
pub(crate) fn map2<T: Lane>(a: u128, b: u128, w: usize, f: impl Fn(T, T) -> T) -> u128 {
    build(count::<T>(w), |i| f(get(a, i), get(b, i)))
}

/// All ones in a lane where `c` holds (the compare instructions' result).
#[inline(always)]
pub(crate) fn all_ones<T: Lane>(c: bool) -> T {
    T::from_bits(if c { u128::MAX } else { 0 })
}

/// The sign bit of each `T` lane of `v` (in `w` bytes), lane 0 in bit 0:
/// MOVMSKPS/PD and PMOVMSKB.
#[inline(always)]
pub(crate) fn sign_mask<T: Lane>(v: u128, w: usize) -> u32 {
    (0..count::<T>(w)).fold(0u32, |m, i| {
        let top = (get::<T>(v, i).bits() >> (T::BYTES * 8 - 1)) as u32 & 1;
        m | (top << i)
    })
}

/// `v` truncated to `w` bytes.
#[inline(always)]
pub(crate) fn trunc(v: u128, w: usize) -> u128 {
    if w >= 16 {
        v
    } else {
        v & ((1u128 << (w * 8)) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_round_trip_and_sign_extend_nothing() {
        let v = 0x8081_8283_8485_8687_8889_8a8b_8c8d_8e8fu128;
        assert_eq!(get::<u8>(v, 0), 0x8f);
        assert_eq!(get::<i16>(v, 7), 0x8081u16 as i16);
        assert_eq!(get::<i32>(v, 1), 0x8889_8a8bu32 as i32);
        assert_eq!(build::<i8>(16, |i| get(v, i)), v);
        assert_eq!(build::<i64>(2, |i| get(v, i)), v);
        // Negative lanes do not spill into their neighbours.
        assert_eq!(build::<i16>(2, |_| -1), 0xffff_ffff);
    }

    #[test]
    fn widths() {
        let v = u128::MAX;
        assert_eq!(map1::<u16>(v, 8, |x| x), u64::MAX as u128);
        assert_eq!(sign_mask::<u8>(v, 8), 0xff);
        assert_eq!(sign_mask::<u8>(v, 16), 0xffff);
        assert_eq!(sign_mask::<u64>(1u128 << 127, 16), 0b10);
        assert_eq!(trunc(v, 8), u64::MAX as u128);
        assert_eq!(map2::<u32>(3, 4, 16, u32::wrapping_add), 7);
        assert_eq!(all_ones::<u16>(true), 0xffff);
        assert_eq!(put::<u16>(v, 1, 0), !0xffff_0000u128);
        assert_eq!(put::<i8>(0, 15, -1), 0xff << 120);
        assert_eq!(put::<u64>(0, 1, 5), 5 << 64);
    }
}
