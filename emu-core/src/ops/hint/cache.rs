//! Cache-line flushes and write-backs: CLFLUSH, CLFLUSHOPT, CLWB. softvm
//! has no caches, so only their faults are architectural: each checks its
//! operand as a one-byte read would (segment limit and type, canonical
//! form, a page walk with the read permission of the current privilege
//! level, setting the accessed bit like a read), then ends without
//! reading: a line of MMIO causes no device access.

use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction};
use softmmu::AccessKind;

/// CLFLUSH — Flush Cache Line; CLFLUSHOPT — Flush Cache Line Optimized;
/// CLWB — Cache Line Write Back.
fn flush_line(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let (seg, off) = x.mem_loc(ins);
    let la = x.linear(seg, off, 1, false)?;
    x.translate_la(la, AccessKind::Read)?;
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    t.add(Code::Clflush_m8, flush_line, 0);
    t.add(Code::Clflushopt_m8, flush_line, 0);
    t.add(Code::Clwb_m8, flush_line, 0);
}
