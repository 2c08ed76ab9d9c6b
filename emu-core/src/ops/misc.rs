//! Identification, time and counters: CPUID, RDTSC, RDTSCP, RDPMC; and
//! the opcodes defined to be invalid, UD0, UD1 and UD2.

use crate::cpu::state::{Mode, CR4_PCE, CR4_TSD};
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction, Mnemonic};

/// CPUID — CPU Identification (from the vCPU's table; see `cpuid.rs`).
fn cpuid(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    let f = x.cpu.gpr[0] as u32;
    let i = x.cpu.gpr[1] as u32;
    let mut r = x.sys.cpuid.lookup(f, i);
    if f == 1 {
        // OSXSAVE mirrors CR4; the APIC bit follows IA32_APIC_BASE.EN.
        if x.cpu.apic_base & (1 << 11) == 0 {
            r[3] &= !crate::cpuid::LEAF1_EDX_APIC;
        }
        r[2] &= !crate::cpuid::LEAF1_ECX_OSXSAVE;
        if x.cpu.cr4 & crate::cpu::state::CR4_OSXSAVE != 0 {
            r[2] |= crate::cpuid::LEAF1_ECX_OSXSAVE;
        }
    }
    for (k, v) in r.iter().enumerate() {
        let idx = [0, 3, 1, 2][k];
        x.set_gpr(idx, 4, u64::from(*v));
    }
    Ok(())
}

/// The guest's time-stamp counter.
pub fn tsc(x: &Exec) -> u64 {
    x.cpu
        .tsc_offset
        .wrapping_add(x.sys.clock.now_tsc(x.instret))
}

fn check_tsd(x: &Exec) -> ExecResult {
    if x.cpu.cr4 & CR4_TSD != 0 && x.cpu.cpl() != 0 {
        return Err(Exception::gp(0).into());
    }
    Ok(())
}

/// RDTSC — Read Time-Stamp Counter
fn rdtsc(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    check_tsd(x)?;
    let t = tsc(x);
    x.set_gpr(0, 4, t & 0xffff_ffff);
    x.set_gpr(2, 4, t >> 32);
    Ok(())
}

/// RDTSCP — Read Time-Stamp Counter and Processor ID
fn rdtscp(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    check_tsd(x)?;
    let t = tsc(x);
    x.set_gpr(0, 4, t & 0xffff_ffff);
    x.set_gpr(2, 4, t >> 32);
    x.set_gpr(1, 4, x.cpu.msrs.tsc_aux & 0xffff_ffff);
    Ok(())
}

/// RDPMC — Read Performance-Monitoring Counters. softvm models a
/// processor without performance counters: CPUID leaf 0xA reports none
/// (the table has no such leaf, so it reads as zeros), so no value of ECX
/// names a counter and every RDPMC that passes the privilege check
/// (CR4.PCE set, CPL 0 or real mode) raises #GP(0) for the counter index.
fn rdpmc(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    let privileged = x.cpu.cr4 & CR4_PCE != 0 || x.cpu.mode() == Mode::Real || x.cpu.cpl() == 0;
    if !privileged {
        return Err(Exception::gp(0).into());
    }
    // ECX never names a counter.
    Err(Exception::gp(0).into())
}

/// UD0, UD1, UD2 — Undefined Instruction: #UD, whatever the ModRM byte
/// says (a memory operand of UD0/UD1 is not accessed). AMD's decoder takes
/// UD0 without a ModRM byte; the gate picks the vendor's decoder.
fn ud2(_x: &mut Exec, _ins: &Instruction) -> ExecResult {
    Err(Exception::ud().into())
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.mnemonic(Mnemonic::Cpuid, cpuid, 0);
    t.mnemonic(Mnemonic::Rdtsc, rdtsc, 0);
    t.mnemonic(Mnemonic::Rdtscp, rdtscp, 0);
    t.add(Code::Rdpmc, rdpmc, 0);
    for code in [
        Code::Ud2,
        Code::Ud0,
        Code::Ud0_r16_rm16,
        Code::Ud0_r32_rm32,
        Code::Ud0_r64_rm64,
        Code::Ud1_r16_rm16,
        Code::Ud1_r32_rm32,
        Code::Ud1_r64_rm64,
    ] {
        t.add(code, ud2, 0);
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::model::CpuModel;
    use crate::cpuid::Cpuid;

    /// RDPMC's #GP for every counter relies on CPUID leaf 0xA reporting no
    /// architectural performance monitoring, for either vendor.
    #[test]
    fn leaf_0xa_reports_no_counters() {
        for spec in ["max", "max,vendor=AuthenticAMD", "Skylake-Server"] {
            let m = CpuModel::parse(spec).unwrap().model;
            assert_eq!(Cpuid::for_model(&m, 0, 1).lookup(0xa, 0), [0; 4], "{spec}");
        }
    }
}
