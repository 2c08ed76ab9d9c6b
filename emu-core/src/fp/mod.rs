//! softvm's software floating point: IEEE 754 binary32, binary64 and the
//! x87's 80-bit extended format, with every rounding mode, the x87's
//! precision control, DAZ/FTZ, the six exception flags, the x87's C1
//! "rounded up", and x86's own NaN rules — the arithmetic both the x87 and
//! the SSE families compute with.
//!
//! # Why softvm has its own
//!
//! The result of every floating-point instruction must be bit-identical to
//! the hardware's, flags included, on any host (Arm and macOS included),
//! so the host FPU cannot be used. Berkeley SoftFloat 3 has what is needed,
//! but its Rust bindings cannot serve: `softfloat-sys` builds the C library
//! through CMake and its build script supports only x86-64 Linux,
//! `softfloat-rs` is x86-64 only as well; `rustc_apfloat` has no square
//! root, no precision control and no denormal flag; `simple-soft-float`
//! computes with big integers. What x86 needs is small: every operation
//! here forms its exact result (or the exact result's leading bits and a
//! sticky bit) in a `u128` and rounds once, in one routine (`round.rs`) — pure
//! Rust, no `unsafe`, no host floating point.
//!
//! # Using it
//!
//! An [`Fp`] carries an [`Env`] (built from MXCSR with [`Env::sse`] or
//! from the x87 control word with [`Env::x87`]) and accumulates the
//! exception [`Flags`] of the operations run through it, and whether a
//! rounding increased a magnitude (the x87's C1). Operations are generic
//! over the formats [`F32`], [`F64`] and [`F80`]:
//!
//! ```
//! use emu_core::fp::{Env, Flags, Fp, F32};
//! let mut fp = Fp::new(Env::sse(0x1f80));
//! let third: F32 = fp.div(F32(0x3f80_0000), F32(0x4040_0000));
//! assert_eq!(third, F32(0x3eaa_aaab));
//! assert_eq!(fp.flags, Flags::PE);
//! ```
//!
//! # Facts measured on the host
//!
//! Where the manuals leave a choice to the implementation or say nothing,
//! the behaviour here is what an AMD Zen processor does (the tests compare
//! with the host FPU where it is x86-64):
//! - an invalid operation or a zero divisor is reported instead of DE,
//!   not with it (`sqrt(-denormal)`: IE only; `denormal / 0`: ZE only);
//!   ROUNDSS, CVTSS2SI and the stores from the x87 registers (FST m32,
//!   FIST) raise no DE for a denormal source;
//! - FPREM/FPREM1 with an exponent difference `d >= 64` reduce by
//!   `32 + d mod 32` places;
//! - of two x87 NaNs with equal significands the positive one is returned;
//! - the reserved precision-control encoding 1 rounds to 64 bits;
//! - an unmasked overflow or underflow whose result is not written
//!   reports PE along with OE or UE when the result is inexact on SSE,
//!   never on the x87's stores to memory (for SSE this was measured with
//!   a `SIGFPE` handler reading MXCSR, outside these tests, which cannot
//!   trap);
//! - an x87 register result still out of range after the unmasked
//!   response's 24576 adjustment (FSCALE) becomes an infinity or a zero.

mod arith;
mod compare;
mod convert;
mod env;
mod format;
mod integral;
mod nan;
mod rem;
mod round;

#[cfg(test)]
mod tests;

pub use compare::{classify, Class, Cmp};
pub use env::{Env, Flags, Fp, NanRule, Precision, Round};
pub use format::{Float, F32, F64, F80};
pub use rem::Remainder;
