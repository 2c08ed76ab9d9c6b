//! Instruction semantics, one file per family. Each family ends with a
//! `register` function listing the `Code`s it implements.

pub mod arith;
pub mod atomic;
pub mod bcd;
pub mod bits;
pub mod control;
pub mod desc;
pub mod far;
pub mod fastcall;
pub mod hint;
pub mod legacy;
pub mod misc;
pub mod mov;
pub mod msr;
pub mod muldiv;
pub mod random;
pub mod segload;
pub mod shift;
pub mod simd;
pub mod sse_fp;
pub mod stack;
pub mod string;
pub mod system;
pub mod xsave;

use crate::exec::table::TableBuilder;

pub(crate) fn register_all(t: &mut TableBuilder) {
    t.family("arith");
    arith::register(t);
    t.family("atomic");
    atomic::register(t);
    t.family("bits");
    bits::register(t);
    t.family("control");
    control::register(t);
    t.family("misc");
    misc::register(t);
    t.family("mov");
    mov::register(t);
    t.family("muldiv");
    muldiv::register(t);
    t.family("shift");
    shift::register(t);
    t.family("sse_fp");
    sse_fp::register(t);
    t.family("stack");
    stack::register(t);
    t.family("string");
    string::register(t);
    t.family("simd");
    simd::register(t);
    t.family("system");
    system::register(t);
    desc::register(t);
    far::register(t);
    fastcall::register(t);
    segload::register(t);
    t.family("bcd");
    bcd::register(t);
    t.family("legacy");
    legacy::register(t);
    t.family("hint");
    hint::register(t);
    t.family("random");
    random::register(t);
    t.family("xsave");
    xsave::register(t);
}
