//! Control instructions and stack management: FLDCW, FSTCW/FNSTCW,
//! FSTSW/FNSTSW, FCLEX/FNCLEX, FINIT/FNINIT, WAIT, FENI/FDISI/FSETPM,
//! and FFREE, FFREEP, FINCSTP, FDECSTP, FNOP.
//!
//! The control instructions (FLDCW, FSTCW, FSTSW, FCLEX, FINIT and the
//! environment ones in `env.rs`) do not change the last-instruction
//! pointers and opcode; the stack management ones do (Intel SDM Vol. 1,
//! 8.1.8). The no-wait forms (FNxxx) do not check for a pending unmasked
//! exception; their FWAIT-prefixed forms (FSTCW = WAIT + FNSTCW), which
//! iced-x86 decodes as two instructions but also has a `Code` for, run
//! WAIT's checks first.

use super::unit::{add_all, begin, mark, pop, set_c1, sti, write_mem};
use crate::cpu::fpu::{fcw, fsw};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction, Register};

/// The control word bits that hold state: the masks, precision and
/// rounding control, and the (387 and later: ignored) infinity control.
/// Bit 6 reads as 1, the others as 0 (as the host stores them back).
const FCW_BITS: u16 = 0x1f3f;
const FCW_ONES: u16 = 0x0040;

/// FSW.ES and FSW.B from the flags and masks: set while an unmasked
/// exception flag is set.
pub(super) fn update_es(x: &mut Exec) {
    let f = &mut x.cpu.fpu;
    if f.fsw & !f.fcw & fsw::EXCEPTIONS != 0 {
        f.fsw |= fsw::ES | fsw::B;
    } else {
        f.fsw &= !(fsw::ES | fsw::B);
    }
}

/// Load the control word (FLDCW, FLDENV, FRSTOR).
pub(super) fn load_fcw(x: &mut Exec, v: u16) {
    x.cpu.fpu.fcw = (v & FCW_BITS) | FCW_ONES;
    update_es(x);
}

/// FLDCW — Load x87 FPU Control Word. Unmasking a set flag makes its
/// exception pending (ES), masking every set flag clears ES.
fn fldcw(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.x87_check(true)?;
    let v = super::unit::read_mem(x, ins, 2)? as u16;
    load_fcw(x, v);
    Ok(())
}

/// FNSTCW — Store x87 FPU Control Word (no wait).
fn fnstcw(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.x87_check(false)?;
    let v = x.cpu.fpu.fcw;
    write_mem(x, ins, 2, u64::from(v))
}

/// FNSTSW — Store x87 FPU Status Word to m16 or AX (no wait).
fn fnstsw(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.x87_check(false)?;
    let v = u64::from(x.cpu.fpu.fsw);
    if ins.op0_register() == Register::AX {
        x.set_gpr(0, 2, v);
        Ok(())
    } else {
        write_mem(x, ins, 2, v)
    }
}

/// FNCLEX — Clear Exceptions: the flags, SF, ES and B.
fn fnclex(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    x.x87_check(false)?;
    x.cpu.fpu.fsw &= !(fsw::EXCEPTIONS | fsw::SF | fsw::ES | fsw::B);
    Ok(())
}

/// FNINIT — Initialize Floating-Point Unit: control word 0x37F, status
/// word 0, every register empty, pointers and opcode cleared.
fn fninit(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    x.x87_check(false)?;
    x.cpu.fpu.finit();
    debug_assert_eq!(x.cpu.fpu.fcw, fcw::DEFAULT);
    Ok(())
}

/// FNENI, FNDISI, FNSETPM: 8087 and 287 controls that every later
/// processor executes as a no-wait NOP.
fn legacy_nop(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    x.x87_check(false)
}

/// WAIT/FWAIT — Wait: #NM when CR0.MP and CR0.TS are both set, #MF for a
/// pending unmasked exception.
fn fwait(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    x.fwait_check()
}

/// The FWAIT-prefixed control forms: WAIT, then the no-wait form.
fn waiting<const F: u8>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.fwait_check()?;
    match F {
        STCW => fnstcw(x, ins),
        STSW => fnstsw(x, ins),
        CLEX => fnclex(x, ins),
        INIT => fninit(x, ins),
        STENV => super::env::store::<false>(x, ins),
        SAVE => super::env::store::<true>(x, ins),
        _ => legacy_nop(x, ins),
    }
}

const STCW: u8 = 0;
const STSW: u8 = 1;
const CLEX: u8 = 2;
const INIT: u8 = 3;
const STENV: u8 = 4;
const SAVE: u8 = 5;
const NOP: u8 = 6;

/// FFREE — Free Floating-Point Register (tag ST(i) empty); FFREEP — the
/// same, then pop.
fn ffree<const POP: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    begin(x)?;
    mark(x, ins);
    x.cpu.fpu.free_st(sti(ins, 0));
    if POP {
        pop(x);
    }
    Ok(())
}

/// FINCSTP — Increment Stack-Top Pointer; FDECSTP — Decrement: TOP
/// alone (tags and contents unchanged), C1 cleared.
fn step_top<const UP: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    begin(x)?;
    mark(x, ins);
    let f = &mut x.cpu.fpu;
    let top = if UP { f.top() + 1 } else { f.top() + 7 };
    f.set_top(top);
    set_c1(x, false);
    Ok(())
}

/// FNOP — No Operation (but an x87 instruction: checks and pointers).
fn fnop(x: &mut Exec, ins: &Instruction) -> ExecResult {
    begin(x)?;
    mark(x, ins);
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    use Code::*;
    add_all(
        t,
        &[
            (Fldcw_m2byte, fldcw),
            (Fnstcw_m2byte, fnstcw),
            (Fstcw_m2byte, waiting::<STCW>),
            (Fnstsw_m2byte, fnstsw),
            (Fnstsw_AX, fnstsw),
            (Fstsw_m2byte, waiting::<STSW>),
            (Fstsw_AX, waiting::<STSW>),
            (Fnclex, fnclex),
            (Fclex, waiting::<CLEX>),
            (Fninit, fninit),
            (Finit, waiting::<INIT>),
            (Fnstenv_m14byte, super::env::store::<false>),
            (Fnstenv_m28byte, super::env::store::<false>),
            (Fstenv_m14byte, waiting::<STENV>),
            (Fstenv_m28byte, waiting::<STENV>),
            (Fnsave_m94byte, super::env::store::<true>),
            (Fnsave_m108byte, super::env::store::<true>),
            (Fsave_m94byte, waiting::<SAVE>),
            (Fsave_m108byte, waiting::<SAVE>),
            (Fldenv_m14byte, super::env::load::<false>),
            (Fldenv_m28byte, super::env::load::<false>),
            (Frstor_m94byte, super::env::load::<true>),
            (Frstor_m108byte, super::env::load::<true>),
            (Fneni, legacy_nop),
            (Feni, waiting::<NOP>),
            (Fndisi, legacy_nop),
            (Fdisi, waiting::<NOP>),
            (Fnsetpm, legacy_nop),
            (Fsetpm, waiting::<NOP>),
            (Wait, fwait),
            (Ffree_sti, ffree::<false>),
            (Ffreep_sti, ffree::<true>),
            (Fincstp, step_top::<true>),
            (Fdecstp, step_top::<false>),
            (Fnop, fnop),
        ],
    );
}
