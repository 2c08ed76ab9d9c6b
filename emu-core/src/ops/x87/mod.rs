//! The x87 floating-point unit: every instruction of the 387 and later
//! (with FCMOVcc/FCOMI of the P6 and FISTTP of SSE3), computed by softvm's
//! own soft-float core ([`crate::fp`]) with the 80-bit registers, the
//! precision and rounding controls, the tag word, the stack faults, and
//! the masked and unmasked exception responses of Intel SDM Vol. 1,
//! chapter 8.
//!
//! - `unit`: what every instruction shares (checks, pointers, stack,
//!   posting exceptions); `fop`: the last-instruction opcode.
//! - `load_store`, `bcd`: loads and stores of reals, integers and BCD.
//! - `arith`, `unary`, `compare`, `trans`: the arithmetic, comparisons
//!   and transcendentals.
//! - `consts`, `control`, `env`: constants, control and stack
//!   management, the environment and state images.
//!
//! An unmasked exception sets its flag and ES in the status word; the
//! #MF it calls for is taken at the next waiting x87 instruction (see
//! `exec/fpu_access.rs`: with CR0.NE clear the PC's FERR#/IGNNE# path is
//! not modelled).

mod arith;
mod bcd;
mod compare;
mod consts;
mod control;
mod env;
mod fop;
mod load_store;
mod trans;
mod unary;
mod unit;

pub use fop::{fop_of, stash_fop};

use crate::exec::table::TableBuilder;

pub(crate) fn register(t: &mut TableBuilder) {
    arith::register(t);
    bcd::register(t);
    compare::register(t);
    consts::register(t);
    control::register(t);
    load_store::register(t);
    trans::register(t);
    unary::register(t);
}
