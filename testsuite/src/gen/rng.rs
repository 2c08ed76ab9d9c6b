//! A small reproducible PRNG (xoshiro256**, seeded through splitmix64) with
//! helpers biased toward the values instruction semantics get wrong.

/// xoshiro256** — fast, good enough for test inputs, fully reproducible.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        Rng {
            s: [
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
            ],
        }
    }

    /// A generator for one case: depends only on the run seed, the Code and
    /// the case index, so any case can be regenerated on its own.
    pub fn for_case(seed: u64, code: u32, index: u32) -> Rng {
        let mut x = seed ^ (u64::from(code) << 32) ^ u64::from(index);
        let mixed = splitmix64(&mut x);
        Rng::new(mixed ^ seed.rotate_left(17))
    }

    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi as i128 - lo as i128 + 1) as u64;
        lo.wrapping_add(self.below(span) as i64)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// A value of `bits` (8, 16, 32, 64) bits, zero-extended, biased toward
    /// 0, 1, -1, the sign boundary, width boundaries and small numbers.
    pub fn edge(&mut self, bits: u32) -> u64 {
        let mask = width_mask(bits);
        let sign = 1u64 << (bits - 1);
        let v = match self.below(16) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => sign,
            4 => sign - 1,
            5 => sign.wrapping_add(1),
            6 => u64::MAX - 1,
            7 => {
                let b = self.pick(&[0x7fu64, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff]);
                let b2 = self.pick(&[0x1_0000u64, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]);
                let b3 = self.pick(&[0x1_0000_0000u64, 0x1_0000_0001, 0x8000_0000_0000_0001]);
                self.pick(&[b, b2, b3])
            }
            8 | 9 => self.below(64),
            10 => (self.below(64) as i64 - 64) as u64,
            11 => 1u64 << self.below(64),
            _ => self.next_u64(),
        };
        v & mask
    }

    /// A full 64-bit register value whose low `bits` bits are `edge(bits)`
    /// and whose upper bits are random, zero or all ones.
    pub fn reg_value(&mut self, bits: u32) -> u64 {
        let low = self.edge(bits);
        if bits == 64 {
            return low;
        }
        let high = match self.below(4) {
            0 => 0,
            1 => u64::MAX,
            _ => self.next_u64(),
        };
        (high & !width_mask(bits)) | low
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// All ones in the low `bits` bits.
pub fn width_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible() {
        let a: Vec<u64> = (0..8).map(|_| Rng::new(42).next_u64()).collect();
        assert!(a.iter().all(|v| *v == a[0]));
        let mut r = Rng::for_case(1, 2, 3);
        let mut s = Rng::for_case(1, 2, 3);
        assert_eq!(r.next_u64(), s.next_u64());
        assert_ne!(
            Rng::for_case(1, 2, 3).next_u64(),
            Rng::for_case(1, 2, 4).next_u64()
        );
    }

    #[test]
    fn helpers_stay_in_range() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let v = r.range(-5, 5);
            assert!((-5..=5).contains(&v));
            assert!(r.edge(8) <= 0xff);
            assert!(r.edge(16) <= 0xffff);
        }
        assert_eq!(width_mask(64), u64::MAX);
        assert_eq!(width_mask(32), 0xffff_ffff);
    }
}
