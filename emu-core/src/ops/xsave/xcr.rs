//! XGETBV and XSETBV: the extended control registers (XCR0, and XINUSE
//! as XCR1 for reading).

use super::{edx_eax, xinuse};
use crate::cpu::fpu::xcr0;
use crate::cpu::model::Feature;
use crate::cpu::state::CR4_OSXSAVE;
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction};

fn osxsave(x: &Exec) -> ExecResult {
    if x.cpu.cr4 & CR4_OSXSAVE == 0 {
        return Err(Exception::ud().into());
    }
    Ok(())
}

/// XGETBV — Get Value of Extended Control Register. ECX = 0 reads XCR0;
/// ECX = 1 (with the xgetbv1 feature) reads XCR0 AND XINUSE; any other
/// ECX is #GP(0). Allowed at every privilege level.
fn xgetbv(x: &mut Exec, _: &Instruction) -> ExecResult {
    osxsave(x)?;
    let v = match x.cpu.gpr[1] as u32 {
        0 => x.cpu.xcr0,
        1 if x.sys.gate.features.contains(Feature::Xgetbv1) => x.cpu.xcr0 & xinuse(x),
        _ => return Err(Exception::gp(0).into()),
    };
    x.set_gpr(0, 4, v & 0xffff_ffff);
    x.set_gpr(2, 4, v >> 32);
    Ok(())
}

/// XSETBV — Set Extended Control Register. #GP(0) at CPL > 0 (virtual-8086
/// mode included), for ECX other than 0, and for a value that clears bit
/// 0 (x87 state is always enabled), sets a bit CPUID leaf 0xD does not
/// report as supported, or enables AVX state without SSE state.
fn xsetbv(x: &mut Exec, _: &Instruction) -> ExecResult {
    osxsave(x)?;
    let gp = || Err(Exception::gp(0).into());
    if x.cpu.cpl() != 0 || x.cpu.gpr[1] as u32 != 0 {
        return gp();
    }
    let v = edx_eax(x);
    let leaf = x.sys.cpuid.lookup(0xd, 0);
    let supported = ((u64::from(leaf[3]) << 32) | u64::from(leaf[0])) & xcr0::SUPPORTED;
    if v & xcr0::X87 == 0 || v & !supported != 0 || v & 6 == 4 {
        return gp();
    }
    x.cpu.xcr0 = v;
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    t.add(Code::Xgetbv, xgetbv, 0);
    t.add(Code::Xsetbv, xsetbv, 0);
}
