//! Instructions that do nothing an interpreter can observe: the
//! reserved-NOP opcodes, prefetch hints and PAUSE.

use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction, Mnemonic};

/// The reserved-NOP space (0F 0D, 0F 18-0F 1F with the ModRM forms that
/// are not a defined instruction) and the prefetch hints PREFETCHh,
/// PREFETCH, PREFETCHW and AMD's reserved 0F 0D /3-/7 aliases: no
/// operation. The memory operand is an address, not an access: it is
/// neither translated nor checked against its segment, so these never
/// fault (SDM Vol. 2, PREFETCHh and NOP: no exceptions but #UD for LOCK,
/// which the decoder rejects). AMD processors raise #UD for the register
/// forms of 0F 0D; the instruction gate handles that before dispatch.
fn hint(_x: &mut Exec, _: &Instruction) -> ExecResult {
    Ok(())
}

/// PAUSE — Spin Loop Hint. Passed on to the host CPU: a guest spinning on
/// a lock another vCPU thread holds gives that thread's core its
/// resources, as PAUSE does between hyperthreads.
fn pause(_x: &mut Exec, _: &Instruction) -> ExecResult {
    std::hint::spin_loop();
    Ok(())
}

/// The prefetch forms. PREFETCHWT1 is not here: softvm does not advertise
/// it, and the gate runs it as the NOP processors without it execute.
const PREFETCHES: [Code; 11] = [
    Code::Prefetchnta_m8,
    Code::Prefetcht0_m8,
    Code::Prefetcht1_m8,
    Code::Prefetcht2_m8,
    Code::Prefetch_m8,
    Code::Prefetchw_m8,
    Code::Prefetchreserved3_m8,
    Code::Prefetchreserved4_m8,
    Code::Prefetchreserved5_m8,
    Code::Prefetchreserved6_m8,
    Code::Prefetchreserved7_m8,
];

pub(super) fn register(t: &mut TableBuilder) {
    t.mnemonic(Mnemonic::Reservednop, hint, 0);
    for code in PREFETCHES {
        t.add(code, hint, 0);
    }
    t.add(Code::Pause, pause, 0);
}
