//! The host's SSE unit as the reference: each function runs one scalar
//! instruction under a given MXCSR (every exception masked: an unmasked
//! one would trap) and returns the result and the MXCSR after it. The
//! caller's MXCSR is saved and restored inside the same asm block.

use std::arch::asm;

/// `asm!` with `$mx` (a local u32 holding the MXCSR to run under, and
/// receiving the MXCSR after) loaded around the instruction lines, the
/// caller's MXCSR saved and restored.
macro_rules! under_mxcsr {
    ($mx:ident, [$($line:expr),+], $($operands:tt)*) => {{
        let mut saved = 0u32;
        // SAFETY: the block touches only the registers its operands name
        // and the two local u32s it gets pointers to; it restores the
        // caller's MXCSR before it ends.
        unsafe {
            asm!(
                "stmxcsr [{saved}]",
                "ldmxcsr [{mx}]",
                $($line,)+
                "stmxcsr [{mx}]",
                "ldmxcsr [{saved}]",
                $($operands)*
                saved = in(reg) std::ptr::addr_of_mut!(saved),
                mx = in(reg) std::ptr::addr_of_mut!($mx),
            );
        }
    }};
}

/// A two-operand scalar instruction `ins xmm_a, xmm_b`; the result is the
/// low 64 bits of the destination.
macro_rules! binary {
    ($($name:ident $ins:literal),+) => {$(
        pub fn $name(a: u64, b: u64, mut mx: u32) -> (u64, u32) {
            let mut x = a;
            under_mxcsr!(mx, [concat!($ins, " {x}, {y}")], x = inout(xmm_reg) x, y = in(xmm_reg) b,);
            (x, mx)
        }
    )+};
}

binary!(
    addss "addss", subss "subss", mulss "mulss", divss "divss", minss "minss", maxss "maxss",
    sqrtss "sqrtss", addsd "addsd", subsd "subsd", mulsd "mulsd", divsd "divsd", minsd "minsd",
    maxsd "maxsd", sqrtsd "sqrtsd", cvtss2sd "cvtss2sd", cvtsd2ss "cvtsd2ss"
);

/// A conversion to an integer register: `ins r, xmm`.
macro_rules! to_int {
    ($($name:ident $ins:literal $reg:literal),+) => {$(
        pub fn $name(a: u64, mut mx: u32) -> (u64, u32) {
            let r: u64;
            under_mxcsr!(
                mx,
                ["xor {r:e}, {r:e}", concat!($ins, " ", $reg, ", {x}")],
                r = out(reg) r,
                x = in(xmm_reg) a,
            );
            (r, mx)
        }
    )+};
}

to_int!(
    cvtss2si32 "cvtss2si" "{r:e}", cvtss2si64 "cvtss2si" "{r}",
    cvttss2si32 "cvttss2si" "{r:e}", cvttss2si64 "cvttss2si" "{r}",
    cvtsd2si32 "cvtsd2si" "{r:e}", cvtsd2si64 "cvtsd2si" "{r}",
    cvttsd2si32 "cvttsd2si" "{r:e}", cvttsd2si64 "cvttsd2si" "{r}"
);

/// A conversion from an integer register: `ins xmm, r`.
macro_rules! from_int {
    ($($name:ident $ins:literal $reg:literal),+) => {$(
        pub fn $name(i: u64, mut mx: u32) -> (u64, u32) {
            let mut x = 0u64;
            under_mxcsr!(mx, [concat!($ins, " {x}, ", $reg)], x = inout(xmm_reg) x, r = in(reg) i,);
            (x, mx)
        }
    )+};
}

from_int!(
    cvtsi2ss32 "cvtsi2ss" "{r:e}", cvtsi2ss64 "cvtsi2ss" "{r}",
    cvtsi2sd32 "cvtsi2sd" "{r:e}", cvtsi2sd64 "cvtsi2sd" "{r}"
);

/// COMISS/UCOMISS/COMISD/UCOMISD: the RFLAGS image after the compare
/// (PUSHFQ/POP use the stack, which `asm!` allows without `nostack`).
macro_rules! compare {
    ($($name:ident $ins:literal),+) => {$(
        pub fn $name(a: u64, b: u64, mut mx: u32) -> (u64, u32) {
            let f: u64;
            under_mxcsr!(
                mx,
                [concat!($ins, " {x}, {y}"), "pushfq", "pop {f}"],
                x = in(xmm_reg) a,
                y = in(xmm_reg) b,
                f = out(reg) f,
            );
            (f, mx)
        }
    )+};
}

compare!(comiss "comiss", ucomiss "ucomiss", comisd "comisd", ucomisd "ucomisd");

/// ROUNDSS/ROUNDSD with immediate `I`.
macro_rules! round {
    ($($name:ident $ins:literal),+) => {$(
        pub fn $name<const I: u8>(a: u64, mut mx: u32) -> (u64, u32) {
            let mut x = a;
            under_mxcsr!(mx, [concat!($ins, " {x}, {x}, {i}")], x = inout(xmm_reg) x, i = const I,);
            (x, mx)
        }
    )+};
}

round!(roundss "roundss", roundsd "roundsd");

/// ROUNDSS/ROUNDSD with a run-time immediate (0..=15).
pub fn round_imm(double: bool, imm: u8, a: u64, mxcsr: u32) -> (u64, u32) {
    macro_rules! by_imm {
        ($($i:literal)*) => {
            match (double, imm) {
                $((false, $i) => roundss::<$i>(a, mxcsr), (true, $i) => roundsd::<$i>(a, mxcsr),)*
                _ => unreachable!("a four-bit immediate"),
            }
        };
    }
    by_imm!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
}
