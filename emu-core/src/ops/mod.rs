//! Instruction semantics, one file per family. Each family ends with a
//! `register` function listing the `Code`s it implements.

pub mod arith;
pub mod atomic;
pub mod bits;
pub mod control;
pub mod misc;
pub mod mov;
pub mod msr;
pub mod muldiv;
pub mod shift;
pub mod stack;
pub mod string;
pub mod system;

use crate::exec::table::TableBuilder;

pub(crate) fn register_all(t: &mut TableBuilder) {
    arith::register(t);
    atomic::register(t);
    bits::register(t);
    control::register(t);
    misc::register(t);
    mov::register(t);
    muldiv::register(t);
    shift::register(t);
    stack::register(t);
    string::register(t);
    system::register(t);
}
