//! The host CPU as the oracle of the kernel unit tests: each kernel is run
//! beside the real instruction on operands mixing random bytes with the
//! integer boundaries (0, 1, 0x7f, 0x80, 0xff in every byte position).

/// A native run: `(destination, source) -> destination`.
pub(crate) type Hw = fn(u128, u128) -> u128;

/// A small deterministic generator (xorshift64*).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A vector whose bytes are random or boundary values, half and half.
    pub(crate) fn vector(&mut self) -> u128 {
        const EDGES: [u8; 5] = [0x00, 0x01, 0x7f, 0x80, 0xff];
        let mut b = [0u8; 16];
        let kind = self.next() % 4;
        for i in 0..16 {
            let r = self.next();
            b[i] = match kind {
                // Whole-vector patterns make equal and zero lanes common.
                0 => EDGES[(r % 5) as usize],
                1 if i % 2 == 1 => b[i - 1],
                _ if r & 1 == 0 => EDGES[(r >> 1) as usize % 5],
                _ => (r >> 8) as u8,
            };
        }
        u128::from_le_bytes(b)
    }
}

/// Whether the host has every extension the oracle runs (SSSE3, SSE4.1,
/// SSE4.2); without them the host tests say so and pass without
/// comparing, rather than dying of SIGILL.
pub(crate) fn usable() -> bool {
    let ok = std::is_x86_feature_detected!("ssse3")
        && std::is_x86_feature_detected!("sse4.1")
        && std::is_x86_feature_detected!("sse4.2");
    if !ok {
        eprintln!("skipped: the host lacks SSSE3, SSE4.1 or SSE4.2");
    }
    ok
}

/// Cases per kernel.
pub(crate) const CASES: usize = 3000;

/// Compare `kernel` with `hw` on random operands of `w` bytes.
pub(crate) fn check(name: &str, w: usize, kernel: &dyn Fn(u128, u128) -> u128, hw: Hw) {
    if !usable() {
        return;
    }
    let mut rng = Rng::new(0x5eed ^ name.len() as u64 ^ (w as u64) << 8);
    let m = super::lanes::trunc(u128::MAX, w);
    for i in 0..CASES {
        let (mut a, mut b) = (rng.vector() & m, rng.vector() & m);
        if i % 7 == 0 {
            b = a;
        }
        if i % 11 == 0 {
            a = a.rotate_left(8) & m;
        }
        let want = hw(a, b) & m;
        let got = kernel(a, b) & m;
        assert_eq!(
            got, want,
            "{name} (w={w}) on {a:#034x}, {b:#034x}: got {got:#034x}, want {want:#034x}"
        );
    }
}

/// Run `text` (an instruction on xmm0 and xmm1) natively with xmm0 = `a`
/// and xmm1 = `b`; the value of xmm0 after it. Extra asm operands (an
/// imm8 `i = const I`) follow the text.
macro_rules! run_xmm {
    ($a:expr, $b:expr, $text:expr $(, $($extra:tt)*)?) => {{
        let mut r: u128 = $a;
        let b: u128 = $b;
        // SAFETY: the asm reads and writes only the two locals and
        // clobbers only the XMM registers it declares.
        unsafe {
            std::arch::asm!(
                "movdqu xmm0, [{r}]",
                "movdqu xmm1, [{b}]",
                $text,
                "movdqu [{r}], xmm0",
                r = in(reg) &mut r,
                b = in(reg) &b,
                $($($extra)*,)?
                out("xmm0") _,
                out("xmm1") _,
                options(nostack),
            );
        }
        r
    }};
}
pub(crate) use run_xmm;

/// [`run_xmm`] on mm0 and mm1 (the low quadwords), then EMMS, leaving the
/// x87 state empty as the compiler expects.
macro_rules! run_mm {
    ($a:expr, $b:expr, $text:expr $(, $($extra:tt)*)?) => {{
        let mut r = $a as u64;
        let b = $b as u64;
        // SAFETY: as for `run_xmm`; EMMS empties the x87 tags the MMX
        // instructions set.
        unsafe {
            std::arch::asm!(
                "movq mm0, [{r}]",
                "movq mm1, [{b}]",
                $text,
                "movq [{r}], mm0",
                "emms",
                r = in(reg) &mut r,
                b = in(reg) &b,
                $($($extra)*,)?
                out("mm0") _,
                out("mm1") _,
                options(nostack),
            );
        }
        u128::from(r)
    }};
}
pub(crate) use run_mm;

/// The native `ins xmm0, xmm1` as a [`Hw`].
macro_rules! hw_xmm {
    ($ins:literal) => {{
        fn f(a: u128, b: u128) -> u128 {
            $crate::ops::simd::host::run_xmm!(a, b, concat!($ins, " xmm0, xmm1"))
        }
        f as $crate::ops::simd::host::Hw
    }};
}
pub(crate) use hw_xmm;

/// The native `ins mm0, mm1` as a [`Hw`].
macro_rules! hw_mm {
    ($ins:literal) => {{
        fn f(a: u128, b: u128) -> u128 {
            $crate::ops::simd::host::run_mm!(a, b, concat!($ins, " mm0, mm1"))
        }
        f as $crate::ops::simd::host::Hw
    }};
}
pub(crate) use hw_mm;

/// `check_xmm!(kernel, "insn")`: the XMM form against the host.
macro_rules! check_xmm {
    ($k:expr, $ins:literal) => {
        $crate::ops::simd::host::check(
            $ins,
            16,
            &|a, b| $k(a, b, 16),
            $crate::ops::simd::host::hw_xmm!($ins),
        )
    };
}
pub(crate) use check_xmm;

/// `check_mm!(kernel, "insn")`: the MMX form against the host.
macro_rules! check_mm {
    ($k:expr, $ins:literal) => {
        $crate::ops::simd::host::check(
            $ins,
            8,
            &|a, b| $k(a, b, 8),
            $crate::ops::simd::host::hw_mm!($ins),
        )
    };
}
pub(crate) use check_mm;

/// `check_both!(kernel, "insn")`: the MMX and XMM forms against the host.
macro_rules! check_both {
    ($k:expr, $ins:literal) => {
        $crate::ops::simd::host::check_mm!($k, $ins);
        $crate::ops::simd::host::check_xmm!($k, $ins);
    };
}
pub(crate) use check_both;

/// A row of 16 instantiations `f::<{16 * hi + lo}>` as fn pointers `ty`.
macro_rules! imm_row {
    ($f:ident, $ty:ty, $hi:literal, [$($lo:literal)*]) => {
        [$($f::<{ 16 * $hi + $lo }> as $ty),*]
    };
}
pub(crate) use imm_row;

/// All 256 instantiations of a const-generic `fn f<const I: u8>(...)` as
/// fn pointers `ty` (default [`Hw`]), as `table[imm >> 4][imm & 15]`.
macro_rules! imm_table {
    ($f:ident) => {
        $crate::ops::simd::host::imm_table!($f, $crate::ops::simd::host::Hw)
    };
    ($f:ident, $ty:ty) => {
        [
            $crate::ops::simd::host::imm_row!($f, $ty, 0, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 1, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 2, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 3, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 4, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 5, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 6, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 7, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 8, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 9, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 10, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 11, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 12, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 13, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 14, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
            $crate::ops::simd::host::imm_row!($f, $ty, 15, [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]),
        ]
    };
}
pub(crate) use imm_table;

/// `check_imm!(kernel, "insn", xmm|mm)`: the form with every imm8 against
/// the host (fewer cases per immediate).
macro_rules! check_imm {
    ($k:expr, $ins:literal, xmm) => {{
        fn f<const I: u8>(a: u128, b: u128) -> u128 {
            $crate::ops::simd::host::run_xmm!(a, b, concat!($ins, " xmm0, xmm1, {i}"), i = const I)
        }
        let table = $crate::ops::simd::host::imm_table!(f);
        $crate::ops::simd::host::check_each_imm($ins, 16, &|a, b, i| $k(a, b, 16, i), &table);
    }};
    ($k:expr, $ins:literal, mm) => {{
        fn f<const I: u8>(a: u128, b: u128) -> u128 {
            $crate::ops::simd::host::run_mm!(a, b, concat!($ins, " mm0, mm1, {i}"), i = const I)
        }
        let table = $crate::ops::simd::host::imm_table!(f);
        $crate::ops::simd::host::check_each_imm($ins, 8, &|a, b, i| $k(a, b, 8, i), &table);
    }};
}
pub(crate) use check_imm;

/// [`check`] for every imm8, `CASES / 16` cases each.
pub(crate) fn check_each_imm(
    name: &str,
    w: usize,
    kernel: &dyn Fn(u128, u128, u8) -> u128,
    table: &[[Hw; 16]; 16],
) {
    if !usable() {
        return;
    }
    let mut rng = Rng::new(0x1337 ^ name.len() as u64);
    let m = super::lanes::trunc(u128::MAX, w);
    for imm in 0..=255u8 {
        let hw = table[usize::from(imm >> 4)][usize::from(imm & 15)];
        for i in 0..CASES / 16 {
            let (a, mut b) = (rng.vector() & m, rng.vector() & m);
            if i % 5 == 0 {
                b = a;
            }
            let want = hw(a, b) & m;
            let got = kernel(a, b, imm) & m;
            assert_eq!(
                got, want,
                "{name} (w={w}, imm {imm:#04x}) on {a:#034x}, {b:#034x}: got {got:#034x}, want {want:#034x}"
            );
        }
    }
}
