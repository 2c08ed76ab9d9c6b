//! SSE, SSE2, SSE3 and SSE4.1 floating-point arithmetic: the PS, PD, SS
//! and SD forms of ADD, SUB, MUL, DIV, SQRT, MIN, MAX; compares (CMPxx,
//! COMISx, UCOMISx); approximations (RCP, RSQRT); conversions among
//! singles, doubles, 32/64-bit integers and MMX registers; ADDSUB, HADD,
//! HSUB; ROUND; DPPS/DPPD; LDMXCSR/STMXCSR.
//!
//! Every value is computed by softvm's soft-float core ([`crate::fp`])
//! with the MXCSR's rounding, DAZ and FTZ; `mxcsr.rs` decides which flags
//! an instruction sets and whether it completes or raises #XM/#UD.
//! Bitwise operations, moves, shuffles, blends and inserts on floating-
//! point data are the SIMD family's.

mod approx;
mod approx_tables;
mod arith;
mod compare;
mod convert;
mod convert_mmx;
mod lanes;
mod mxcsr;
mod round;

#[cfg(test)]
mod tests;

use crate::exec::table::TableBuilder;
use crate::exec::Handler;
use iced_x86::Code;

/// Every form of the family, file by file.
const FORMS: [&[(Code, Handler)]; 7] = [
    approx::FORMS,
    arith::FORMS,
    compare::FORMS,
    convert::FORMS,
    convert_mmx::FORMS,
    mxcsr::FORMS,
    round::FORMS,
];

/// The family's forms.
fn forms() -> impl Iterator<Item = (Code, Handler)> {
    FORMS.into_iter().flatten().copied()
}

pub(crate) fn register(t: &mut TableBuilder) {
    for (code, h) in forms() {
        t.add(code, h, 0);
    }
}
