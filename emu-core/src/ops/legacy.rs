//! Forms of the 16- and 32-bit architecture that 64-bit mode dropped (iced
//! decodes their opcodes as other instructions or as invalid there): BOUND,
//! ARPL and the undocumented SALC.

use crate::cpu::flags::{VM, ZF};
use crate::cpu::state::Mode;
use crate::exception::{vector, Exception, ExecResult};
use crate::exec::operand::Loc;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use crate::ops::mov::sext;
use iced_x86::{Code, Instruction};

/// BOUND — Check Array Index Against Bounds. The memory operand holds the
/// signed lower bound and, after it, the signed upper bound (each of the
/// operand size); an index outside `[lower, upper]` raises #BR (a fault:
/// the return address is the BOUND itself).
fn bound(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let (seg, off) = x.mem_loc(ins);
    let lower = x.read_seg(seg, off, usize::from(size))?;
    let upper = x.read_seg(seg, off.wrapping_add(u64::from(size)), usize::from(size))?;
    let index = sext(x.reg(ins.op0_register()), size) as i64;
    if index < sext(lower, size) as i64 || index > sext(upper, size) as i64 {
        return Err(Exception::new(vector::BR).into());
    }
    Ok(())
}

/// ARPL — Adjust RPL Field of Segment Selector: if the destination
/// selector's RPL is below the source's, raise it to the source's and set
/// ZF, else clear ZF (no other flag changes). #UD in real and virtual-8086
/// mode. A memory destination is written only when it changes (the SDM's
/// operation writes it only then), so ARPL on a read-only page that needs
/// no change does not fault. The 32-bit register form changes bits 0..=1
/// of the register only.
fn arpl(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if x.cpu.mode() == Mode::Real || x.cpu.flags.test(VM) {
        return Err(Exception::ud().into());
    }
    let src = x.reg(ins.op1_register()) & 3;
    let dest = match x.loc(ins, 0) {
        Loc::Reg(r) => x.reg(r),
        Loc::Mem(seg, off) => x.read_seg(seg, off, 2)?,
    };
    let raise = dest & 3 < src;
    if raise {
        let new = (dest & !3) | src;
        match x.loc(ins, 0) {
            Loc::Reg(r) => {
                // Keep bits 16..=31 of the 32-bit form (`set_reg` of a
                // 32-bit register would replace them).
                let (i, _, _) = crate::exec::operand::gpr_loc(r);
                x.set_gpr(i, 2, new);
            }
            Loc::Mem(seg, off) => x.write_seg(seg, off, 2, new)?,
        }
    }
    x.cpu.flags.assign(ZF, raise);
    Ok(())
}

/// SALC — Set AL from Carry (undocumented, opcode D6): AL = CF ? FFh : 0,
/// flags unchanged. Intel and AMD processors both execute it outside
/// 64-bit mode.
fn salc(x: &mut Exec, _: &Instruction) -> ExecResult {
    let v = if x.cpu.flags.cf() { 0xff } else { 0 };
    x.set_gpr(0, 1, v);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(Code::Bound_r16_m1616, bound, 0);
    t.add(Code::Bound_r32_m3232, bound, 0);
    t.add(Code::Arpl_rm16_r16, arpl, 0);
    t.add(Code::Arpl_r32m16_r32, arpl, 0);
    t.add(Code::Salc, salc, 0);
}
