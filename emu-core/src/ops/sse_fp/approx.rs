//! RCPPS, RCPSS, RSQRTPS, RSQRTSS: approximate reciprocals and reciprocal
//! square roots (relative error at most 1.5 * 2^-12).
//!
//! The exact values are the processor's own. softvm gives those of AMD
//! processors, measured on an AMD host (`approx_tables`), whatever the
//! CPU model's vendor: Intel processors use other tables, which cannot be
//! measured here; AMD's values meet the error bound Intel documents too,
//! so a guest on an Intel model sees correct approximations that differ
//! from an Intel processor's in the last bits.
//!
//! These instructions report no exception and ignore MXCSR: denormal
//! inputs read as zeros (giving infinities), results too small for a
//! normal single (inputs of 2^126 and above) are zeros, NaNs are quieted.

use super::approx_tables::{RCP, RSQRT};
use super::lanes::xmm_op;
use crate::exception::ExecResult;
use crate::exec::{Exec, Handler};
use iced_x86::{Code, Instruction};

const SIGN: u32 = 0x8000_0000;
const INF: u32 = 0x7f80_0000;
const QUIET: u32 = 0x0040_0000;
const DEFAULT_NAN: u32 = 0xffc0_0000;

/// RCPSS on one single.
pub(crate) fn rcp(a: u32) -> u32 {
    let sign = a & SIGN;
    let e = (a >> 23) & 0xff;
    let m = a & 0x7f_ffff;
    match e {
        0xff if m != 0 => a | QUIET,
        0xff => sign,
        0 => sign | INF,
        _ => {
            // 1/(1.m * 2^(e-127)) = RCP * 2^(126 - (e - 127)).
            let oe = 253 - e as i32;
            if oe <= 0 {
                sign
            } else {
                sign | ((oe as u32) << 23) | (u32::from(RCP[(m >> 11) as usize]) << 11)
            }
        }
    }
}

/// RSQRTSS on one single.
pub(crate) fn rsqrt(a: u32) -> u32 {
    let sign = a & SIGN;
    let e = (a >> 23) & 0xff;
    let m = a & 0x7f_ffff;
    match e {
        0xff if m != 0 => a | QUIET,
        0xff if sign == 0 => 0,
        0 => sign | INF,
        _ if sign != 0 => DEFAULT_NAN,
        0xff => DEFAULT_NAN,
        _ => {
            // An even power of two, and the table by the parity.
            let ue = e as i32 - 127;
            let (odd, half) = if ue & 1 == 0 {
                (0, ue / 2)
            } else {
                (4096, (ue - 1) / 2)
            };
            let sig = RSQRT[odd + (m >> 11) as usize];
            (((126 - half) as u32) << 23) | (u32::from(sig) << 11)
        }
    }
}

/// Apply `f` to the single lanes `0..n`.
fn lanes(x: &mut Exec, ins: &Instruction, n: usize, f: fn(u32) -> u32) -> ExecResult {
    xmm_op(x, ins, |_, a, b| {
        (0..n).fold(a, |r, i| {
            let sh = 32 * i;
            let v = f((b >> sh) as u32);
            (r & !(0xffff_ffffu128 << sh)) | (u128::from(v) << sh)
        })
    })
}

fn rcpps(x: &mut Exec, ins: &Instruction) -> ExecResult {
    lanes(x, ins, 4, rcp)
}

fn rcpss(x: &mut Exec, ins: &Instruction) -> ExecResult {
    lanes(x, ins, 1, rcp)
}

fn rsqrtps(x: &mut Exec, ins: &Instruction) -> ExecResult {
    lanes(x, ins, 4, rsqrt)
}

fn rsqrtss(x: &mut Exec, ins: &Instruction) -> ExecResult {
    lanes(x, ins, 1, rsqrt)
}

/// The forms of this file and their handlers.
pub(super) const FORMS: &[(Code, Handler)] = &[
    (Code::Rcpps_xmm_xmmm128, rcpps),
    (Code::Rcpss_xmm_xmmm32, rcpss),
    (Code::Rsqrtps_xmm_xmmm128, rsqrtps),
    (Code::Rsqrtss_xmm_xmmm32, rsqrtss),
];
