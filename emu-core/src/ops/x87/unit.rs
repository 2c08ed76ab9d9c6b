//! What every x87 instruction shares: the #NM/#MF checks, the
//! last-instruction pointers, the register stack with its overflow and
//! underflow faults, the memory operands, and posting an operation's
//! exception flags to the status word with the masked and unmasked
//! responses (Intel SDM Vol. 1, 8.1.8, 8.5).

use super::fop::fop;
use crate::cpu::fpu::{fsw, F80};
use crate::cpu::state::SegReg;
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::{Exec, Handler};
use crate::fp::{classify, Class, Env, Flags, Fp, F32, F64};
use iced_x86::{Instruction, OpKind};

/// The QNaN floating-point indefinite: the masked response to an invalid
/// operation and to a stack fault.
pub(super) const INDEFINITE: F80 = F80::new(0xffff, 0xc000_0000_0000_0000);

/// The exceptions that stop an instruction before it writes its result
/// when unmasked (the pre-computation exceptions, SDM Vol. 1, 8.5):
/// invalid operation, denormal operand and divide by zero.
const PRE: Flags = Flags(Flags::IE.0 | Flags::DE.0 | Flags::ZE.0);

/// Start a waiting x87 instruction: #NM if CR0.EM or CR0.TS, #MF if an
/// unmasked exception is pending; then the arithmetic environment of the
/// control word.
pub(super) fn begin(x: &Exec) -> ExecResult<Fp> {
    x.x87_check(true)?;
    Ok(Fp::new(Env::x87(x.cpu.fpu.fcw)))
}

/// Whether the instruction has a memory operand.
fn has_mem(ins: &Instruction) -> bool {
    (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory)
}

/// Record `ins` as the last non-control instruction: FIP and FCS (the
/// instruction's CS:rIP), FOP (its 11-bit opcode), and for an instruction
/// with a memory operand FDP and FDS (the operand's offset and segment
/// selector). Instructions without one leave FDP and FDS alone.
pub(super) fn mark(x: &mut Exec, ins: &Instruction) {
    let rip = x.cpu.rip;
    let cs = x.cpu.sreg(SegReg::Cs).selector;
    let mem = has_mem(ins).then(|| x.mem_loc(ins));
    let ds = mem.map(|(s, _)| x.cpu.sreg(s).selector);
    let f = &mut x.cpu.fpu;
    f.fip = rip;
    f.fcs = cs;
    f.fop = fop(ins);
    if let (Some((_, off)), Some(sel)) = (mem, ds) {
        f.fdp = off;
        f.fds = sel;
    }
}

/// Set or clear condition-code bits of FSW: the bits of `mask` take the
/// values of `bits`.
pub(super) fn set_cc(x: &mut Exec, mask: u16, bits: u16) {
    let f = &mut x.cpu.fpu;
    f.fsw = (f.fsw & !mask) | (bits & mask);
}

pub(super) fn set_c1(x: &mut Exec, on: bool) {
    set_cc(x, fsw::C1, if on { fsw::C1 } else { 0 });
}

/// OR exception flags into FSW; ES and B when one is unmasked.
pub(super) fn raise(x: &mut Exec, flags: Flags) {
    let f = &mut x.cpu.fpu;
    let bits = u16::from(flags.bits());
    f.fsw |= bits;
    if bits & !f.fcw & fsw::EXCEPTIONS != 0 {
        f.fsw |= fsw::ES | fsw::B;
    }
}

/// Whether `flags` are all masked by the control word.
pub(super) fn masked(x: &Exec, flags: Flags) -> bool {
    u16::from(flags.bits()) & !x.cpu.fpu.fcw == 0
}

/// A stack fault: IE with SF, C1 = 1 for an overflow (a push onto a
/// non-empty register) and 0 for an underflow (a read of an empty one).
/// Returns whether IE is masked, i.e. whether the masked response (the
/// indefinite written where the result would go) applies.
pub(super) fn stack_fault(x: &mut Exec, overflow: bool) -> bool {
    raise(x, Flags::IE);
    x.cpu.fpu.fsw |= fsw::SF;
    set_c1(x, overflow);
    masked(x, Flags::IE)
}

/// Post what an operation raised. An unmasked invalid-operation,
/// denormal or divide-by-zero exception stops the instruction before it
/// writes anything: only those flags are posted, and `false` returned.
/// Otherwise every flag is posted (an unmasked overflow, underflow or
/// precision exception is reported after the result is delivered).
pub(super) fn post(x: &mut Exec, fp: &Fp) -> bool {
    let pre = Flags(fp.flags.bits() & PRE.bits());
    if !masked(x, pre) {
        raise(x, pre);
        set_c1(x, false);
        return false;
    }
    raise(x, fp.flags);
    true
}

/// [`post`] for the arithmetic results: C1 says whether the result was
/// rounded up.
pub(super) fn post_arith(x: &mut Exec, fp: &Fp) -> bool {
    let done = post(x, fp);
    if done {
        set_c1(x, fp.rounded_up);
    }
    done
}

/// Whether ST(i) is empty.
pub(super) fn empty(x: &Exec, i: usize) -> bool {
    x.cpu.fpu.st_empty(i)
}

pub(super) fn st(x: &Exec, i: usize) -> F80 {
    x.cpu.fpu.st(i)
}

pub(super) fn set_st(x: &mut Exec, i: usize, v: F80) {
    x.cpu.fpu.set_st(i, v);
}

/// Push `v`; the caller has checked that ST(7) is empty.
pub(super) fn push(x: &mut Exec, v: F80) {
    let f = &mut x.cpu.fpu;
    f.set_top(f.top().wrapping_sub(1));
    f.set_st(0, v);
}

/// Pop: ST(0) tagged empty, TOP incremented.
pub(super) fn pop(x: &mut Exec) {
    let f = &mut x.cpu.fpu;
    f.free_st(0);
    f.set_top(f.top() + 1);
}

/// Push `v` with the overflow check: a non-empty ST(7) is a stack
/// overflow, whose masked response pushes the indefinite instead.
pub(super) fn push_checked(x: &mut Exec, v: F80) {
    if !empty(x, 7) {
        if stack_fault(x, true) {
            push(x, INDEFINITE);
        }
        return;
    }
    push(x, v);
}

/// The index `i` of an ST(i) operand.
pub(super) fn sti(ins: &Instruction, n: u32) -> usize {
    ins.op_register(n).number() & 7
}

/// Read `size` bytes (2, 4 or 8) of the memory operand.
pub(super) fn read_mem(x: &mut Exec, ins: &Instruction, size: usize) -> ExecResult<u64> {
    let (s, o) = x.mem_loc(ins);
    x.read_seg(s, o, size)
}

/// Write `size` bytes (2, 4 or 8) of the memory operand.
pub(super) fn write_mem(x: &mut Exec, ins: &Instruction, size: usize, v: u64) -> ExecResult {
    let (s, o) = x.mem_loc(ins);
    x.write_seg(s, o, size, v)
}

/// The ten-byte memory operand.
pub(super) fn read_m80(x: &mut Exec, ins: &Instruction) -> ExecResult<[u8; 10]> {
    let (s, o) = x.mem_loc(ins);
    let mut b = [0u8; 10];
    x.read_bytes(s, o, &mut b)?;
    Ok(b)
}

pub(super) fn write_m80(x: &mut Exec, ins: &Instruction, b: &[u8; 10]) -> ExecResult {
    let (s, o) = x.mem_loc(ins);
    x.write_bytes(s, o, b)
}

/// A memory source operand of an arithmetic or compare instruction, as
/// the F80 it converts to exactly. A NaN keeps its kind (an SNaN is not
/// quieted here: the operation's NaN rule must see it), and a denormal
/// single or double is remembered, since it becomes a normal F80 but
/// still raises the denormal-operand exception.
#[derive(Clone, Copy, Debug)]
pub(super) struct Source {
    pub value: F80,
    pub denormal: bool,
}

impl Source {
    pub fn reg(value: F80) -> Source {
        Source {
            value,
            denormal: false,
        }
    }

    pub fn f32(bits: u32) -> Source {
        Source {
            value: crate::fp::widen(F32(bits)),
            denormal: bits & 0x7f80_0000 == 0 && bits & 0x007f_ffff != 0,
        }
    }

    pub fn f64(bits: u64) -> Source {
        Source {
            value: crate::fp::widen(F64(bits)),
            denormal: bits & 0x7ff0_0000_0000_0000 == 0 && bits & 0x000f_ffff_ffff_ffff != 0,
        }
    }

    /// An integer operand (exact in F80).
    pub fn int(fp: &mut Fp, v: i64) -> Source {
        Source::reg(fp.from_int(v))
    }
}

/// Whether an F80 value is a NaN or an encoding the x87 does not
/// support (both make an operation's result a NaN before any denormal
/// check).
pub(super) fn nan_like(v: F80) -> bool {
    matches!(classify(v), Class::Nan | Class::Unsupported)
}

/// The denormal-operand exception of a single or double memory operand
/// that is a denormal: raised when the operation gets as far as checking
/// operands (neither operand a NaN) and, for a division, the divisor is
/// not zero.
pub(super) fn source_denormal(fp: &mut Fp, a: F80, b: Source, divisor: Option<F80>) {
    let zero_divisor = divisor.is_some_and(|d| classify(d) == Class::Zero);
    if b.denormal && !nan_like(a) && !nan_like(b.value) && !zero_divisor {
        fp.flags |= Flags::DE;
    }
}

/// Register each `(Code, handler)` pair (no x87 instruction leaves an
/// RFLAGS bit undefined).
pub(super) fn add_all(t: &mut TableBuilder, forms: &[(iced_x86::Code, Handler)]) {
    for &(code, h) in forms {
        t.add(code, h, 0);
    }
}
