//! MMX, and the SSE..SSE4.2 instructions that are not floating-point
//! arithmetic: moves, logic, integer arithmetic, compares, packs and
//! shuffles, shifts, inserts and extracts, the string compares PCMPxSTRx
//! and CRC32.
//!
//! Each sub-family file writes its kernels once over `lanes` with the
//! operand width as a parameter and registers the MM and XMM forms onto
//! the same kernel; `operand` holds the register and memory access, the
//! CR0/CR4 checks, the alignment rule and the MMX transition every form
//! shares.

mod arith;
mod compare;
mod crc32;
mod decoded;
mod insert;
pub(crate) mod lanes;
mod logic;
mod moves;
mod mul;
pub(crate) mod operand;
mod pack;
mod shifts;
mod shuffle;
mod strcmp;
mod transfer;

#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) mod host;

use crate::exec::table::TableBuilder;

pub(crate) use decoded::decoded_form;

pub(crate) fn register(t: &mut TableBuilder) {
    arith::register(t);
    compare::register(t);
    crc32::register(t);
    insert::register(t);
    logic::register(t);
    moves::register(t);
    mul::register(t);
    pack::register(t);
    shifts::register(t);
    shuffle::register(t);
    strcmp::register(t);
    transfer::register(t);
}
